"""The cost view on both stores: known traffic (direct sends, a campaign, app events, and last month's traffic that
must not count) gives exact usage and exact amounts at Pinpoint's prices and at the operator's, through the
ClarionGetCosts extension and `clarion costs`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from conftest import ADMIN, REGION, RunningServer
from test_event_streams import drive_campaigns

from clarion.analytics.config import CostSettings, ProviderPrices
from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings
from clarion.channels.sms.parts import message_parts
from clarion.clock import iso_millis
from clarion.config import Settings
from clarion.queue.config import QueueSettings
from clarion.store import events as event_store
from clarion.store import messages as message_store
from clarion.store.events import EventRow
from clarion.store.messages import MessageRow

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

LONG_GSM = "Your parcel is on its way. " * 7  # 189 GSM characters: two parts
UNICODE = "Grüße aus Köln 🎉"  # an emoji: UCS-2, one part


@pytest.mark.parametrize(
    ("body", "parts"),
    [
        ("", 1),
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("x" * 306, 2),
        ("x" * 307, 3),
        ("€" * 80, 1),  # extension characters take two places
        ("€" * 81, 2),
        ("é" * 160, 1),  # in the GSM alphabet
        ("ç" * 70, 1),  # not in it (only Ç is): UCS-2
        ("ç" * 71, 2),
        ("🎉" * 35, 1),  # two UTF-16 units each
        ("🎉" * 36, 2),
    ],
)
def test_sms_parts_follow_gsm_and_ucs2_limits(body: str, parts: int) -> None:
    assert message_parts(body) == parts


def cost_settings(settings: Settings) -> Settings:
    prices = CostSettings(
        provider=ProviderPrices(
            currency="EUR",
            email=Decimal("0.0002"),
            push=Decimal("0"),
            sms={"US": Decimal("0.0075"), "default": Decimal("0.05")},
        ),
        pinpoint_sms={"US": Decimal("0.00581")},
    )
    return settings.model_copy(
        update={
            "costs": prices,
            "delivery": DeliverySettings(dry_run=True),
            "queue": QueueSettings(workers=0),
            "campaigns": CampaignSettings(scheduler=False, batch_size=10),
        }
    )


def send(client: Any, app_id: str, addresses: dict[str, str], sms: str = "Hi") -> None:
    client.send_messages(
        ApplicationId=app_id,
        MessageRequest={
            "Addresses": {address: {"ChannelType": channel} for address, channel in addresses.items()},
            "MessageConfiguration": {
                "EmailMessage": {
                    "FromAddress": "shop@example.com",
                    "SimpleEmail": {"Subject": {"Data": "Order"}, "TextPart": {"Data": "Hi"}},
                },
                "SMSMessage": {"Body": sms, "MessageType": "TRANSACTIONAL"},
            },
        },
    )


def last_month(app_id: str, now: datetime) -> tuple[MessageRow, EventRow]:
    """An email and an app event of the month before: other months never count."""
    then = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(minutes=1)
    at = iso_millis(then)
    message = MessageRow(
        "old-1", app_id, None, None, None, "EMAIL", "x@example.com", None, None, None, None, "SUCCESSFUL", 200, "",
        at, "{}",
    )  # fmt: skip
    millis = int(then.timestamp() * 1000)
    event = EventRow(app_id, "phone", "old-event", "app.open", millis, millis, None, '{"EventType": "app.open"}')
    return message, event


def test_a_months_usage_is_priced_at_pinpoints_and_the_providers_prices(settings: Settings) -> None:
    with RunningServer(cost_settings(settings)) as server:
        client = server.client()
        shop, blog = (
            client.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
            for name in ("shop", "blog")
        )
        # Direct sends: two emails, SMS to the US (1 part, then 2 parts) and Germany (1 part, UCS-2).
        send(client, shop, {"ana@example.com": "EMAIL", "bo@example.com": "EMAIL", "+14255550100": "SMS"})
        send(client, shop, {"+14255550101": "SMS"}, sms=LONG_GSM)
        send(client, shop, {"+4915112345678": "SMS"}, sms=UNICODE)
        client.update_email_channel(
            ApplicationId=shop, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
        )
        # A campaign to three endpoints (email, SMS to the US, push) makes the monthly targeted audience.
        client.update_endpoints_batch(
            ApplicationId=shop,
            EndpointBatchRequest={
                "Item": [
                    {"Id": "mail-1", "ChannelType": "EMAIL", "Address": "cy@example.com"},
                    {"Id": "sms-1", "ChannelType": "SMS", "Address": "+14255550102"},
                    {"Id": "push-1", "ChannelType": "GCM", "Address": "token-1"},
                ]
            },
        )
        segment_id = client.create_segment(ApplicationId=shop, WriteSegmentRequest={"Name": "all"})["SegmentResponse"][
            "Id"
        ]
        client.create_campaign(
            ApplicationId=shop,
            WriteCampaignRequest={
                "Name": "news",
                "SegmentId": segment_id,
                "Schedule": {"StartTime": "IMMEDIATE"},
                "MessageConfiguration": {
                    "EmailMessage": {"Title": "News", "Body": "Hello"},
                    "SMSMessage": {"Body": "News"},
                    "GCMMessage": {"Title": "News", "Body": "Hello", "Action": "OPEN_APP"},
                },
            },
        )
        drive_campaigns(server)
        # Four app events; the sends above recorded server events, which are not collected events.
        now = server.clock.now()
        events = {
            f"e{n}": {"EventType": "app.open", "Timestamp": iso_millis(now - timedelta(days=40))} for n in range(4)
        }
        client.put_events(
            ApplicationId=shop,
            EventsRequest={"BatchItem": {"phone": {"Endpoint": {}, "Events": events}}},
        )
        send(client, blog, {"dee@example.com": "EMAIL"})
        old_message, old_event = last_month(shop, now)

        def write_old(tx: Any) -> None:
            message_store.insert(tx, [old_message])
            event_store.append(tx, [old_event])

        server.run(lambda services: services.db.write(write_old))

        month = f"{now:%Y-%m}"
        status, answer = server.signed_request("GET", f"/v1/clarion/costs?month={month}", {})
        _, only_blog = server.signed_request("GET", f"/v1/clarion/costs?month={month}&application-id={blog}", {})
        bad_status, bad = server.signed_request("GET", "/v1/clarion/costs?month=2026-13", {})
        table = cli(server, "--month", month)
        as_json = cli(server, "--month", month, "--json")

    assert status == 200, answer
    assert (answer["Month"], answer["Start"][:10]) == (month, f"{month}-01")
    shop_costs, blog_costs = answer["Projects"]
    assert (shop_costs["ApplicationId"], shop_costs["Name"], blog_costs["Name"]) == (shop, "shop", "blog")
    assert shop_costs["Usage"] == {
        "Messages": {"EMAIL": 3, "GCM": 1, "SMS": 4},
        "Sms": [
            {"Country": "DE", "PartsPerMessage": 1, "Messages": 1, "Parts": 1},
            {"Country": "US", "PartsPerMessage": 1, "Messages": 2, "Parts": 2},
            {"Country": "US", "PartsPerMessage": 2, "Messages": 1, "Parts": 2},
        ],
        "MonthlyTargetedAudience": 3,
        "EndpointsMessaged": 3,
        "EventsCollected": 4,  # arrived this month, whatever their own timestamps say
    }
    # Per project: before Pinpoint's free tiers (they belong to the account).
    assert shop_costs["Pinpoint"] == {
        "Currency": "USD",
        "Lines": [
            {"Meter": "MonthlyTargetedAudience", "Quantity": 3, "UnitPrice": "0.0012", "Amount": "0.0036"},
            {"Meter": "Events", "Quantity": 4, "UnitPrice": "0.000001", "Amount": "0.000004"},
            {"Meter": "Email", "Quantity": 3, "UnitPrice": "0.0001", "Amount": "0.0003"},
            {"Meter": "Push", "Quantity": 1, "UnitPrice": "0.000001", "Amount": "0.000001"},
            {"Meter": "SMS", "Quantity": 1, "Country": "DE", "Unpriced": True},
            {"Meter": "SMS", "Quantity": 4, "Country": "US", "UnitPrice": "0.00581", "Amount": "0.02324"},
        ],
        "Total": "0.027145",
        "Complete": False,
    }
    assert shop_costs["Provider"] == {
        "Currency": "EUR",
        "Lines": [
            {"Meter": "Email", "Quantity": 3, "UnitPrice": "0.0002", "Amount": "0.0006"},
            {"Meter": "Push", "Quantity": 1, "UnitPrice": "0", "Amount": "0"},
            {"Meter": "Voice", "Quantity": 0, "UnitPrice": "0", "Amount": "0"},
            {"Meter": "Custom", "Quantity": 0, "UnitPrice": "0", "Amount": "0"},
            {"Meter": "SMS", "Quantity": 1, "Country": "DE", "UnitPrice": "0.05", "Amount": "0.05"},
            {"Meter": "SMS", "Quantity": 4, "Country": "US", "UnitPrice": "0.0075", "Amount": "0.03"},
        ],
        "Total": "0.0806",
        "Complete": True,
    }
    assert blog_costs["Usage"]["Messages"] == {"EMAIL": 1} and blog_costs["Provider"]["Total"] == "0.0002"
    # The account: usage added up, Pinpoint's free tiers taken off once.
    total = answer["Total"]
    assert total["Usage"]["Messages"] == {"EMAIL": 4, "GCM": 1, "SMS": 4}
    free = {"Billable": 0, "Amount": "0"}
    assert total["Pinpoint"]["Lines"][:4] == [
        {"Meter": "MonthlyTargetedAudience", "Quantity": 3, "Free": 3, "UnitPrice": "0.0012", **free},
        {"Meter": "Events", "Quantity": 4, "Free": 4, "UnitPrice": "0.000001", **free},
        {"Meter": "Email", "Quantity": 4, "UnitPrice": "0.0001", "Amount": "0.0004"},
        {"Meter": "Push", "Quantity": 1, "Free": 1, "UnitPrice": "0.000001", **free},
    ]
    assert total["Pinpoint"]["Total"] == "0.02364" and total["Provider"]["Total"] == "0.0808"
    assert [project["Name"] for project in only_blog["Projects"]] == ["blog"]
    assert only_blog["Total"]["Usage"] == blog_costs["Usage"]
    assert (bad_status, bad["__type"]) == (400, "BadRequestException") and "month must be" in bad["Message"]

    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == answer
    assert table.returncode == 0, table.stderr
    assert "shop" in table.stdout and "0.027145 + unpriced" in table.stdout and "0.0806" in table.stdout
    assert "SMS by country" in table.stdout


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ADMIN.access_key_id,
        "AWS_SECRET_ACCESS_KEY": ADMIN.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "clarion", "costs", "--endpoint-url", server.url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_no_traffic_costs_nothing(settings: Settings) -> None:
    with RunningServer(cost_settings(settings)) as server:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "quiet"})["ApplicationResponse"]["Id"]
        status, answer = server.signed_request("GET", f"/v1/clarion/costs?application-id={app_id}", {})
    assert status == 200
    assert answer["Month"] == f"{datetime.now(UTC):%Y-%m}"
    [project] = answer["Projects"]
    assert project["Usage"] == {
        "Messages": {},
        "Sms": [],
        "MonthlyTargetedAudience": 0,
        "EndpointsMessaged": 0,
        "EventsCollected": 0,
    }
    assert project["Pinpoint"]["Total"] == "0" and project["Pinpoint"]["Complete"] is True
