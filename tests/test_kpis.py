"""KPIs on both stores: known traffic (direct sends, two campaigns, a journey's sends, PutEvents and provider
reports) and the exact value of every kpi-name of the three operations, from the DuckDB replica (through the API)
and from SQL on the row store (the same domain function with the row-store runner); Pinpoint's date rules, shape
and paging.

Traffic goes through Clarion's own paths: SendMessages and campaign runs through the log transport
(`delivery.dry_run`), reports through `Services.record_outcomes` as provider webhooks and tracking links record them, a
push open through PutEvents as the mobile SDKs send it. A send refused before the transport (an email without a
subject, an SMS without a body) is a sent-and-rejected message, as Pinpoint counts them. Journey messages carry
their journey and activity ids in the message Context, as the journey engine's sends record them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError
from conftest import RunningServer, migrated_postgres, running
from pyroaring import BitMap
from test_event_streams import drive_campaigns

from clarion.analytics import kpi_duckdb, kpi_rollups, kpis
from clarion.analytics.replica import Replica, Round
from clarion.analytics.staging import JsonLines
from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import ProviderReport
from clarion.channels.sms.generic_webhooks import reports_from
from clarion.channels.sms.parts import message_parts
from clarion.config import Settings
from clarion.errors import BadRequest
from clarion.journeys.config import JourneySettings
from clarion.queue.config import QueueSettings
from clarion.store import events as event_store
from clarion.store import kpi_rollup, kpi_sql
from clarion.store.database import POSTGRESQL, Transaction, connect_postgres

D0 = datetime.now(UTC).replace(microsecond=0)
D1 = D0 - timedelta(days=1)
TODAY, YESTERDAY = D0.date().isoformat(), D1.date().isoformat()
WINDOW = {"StartTime": D0 - timedelta(days=3), "EndTime": D0 + timedelta(hours=1)}
EMAIL = {"FromAddress": "shop@example.com", "SimpleEmail": {"Subject": {"Data": "Hi"}, "TextPart": {"Data": "Hi"}}}
NO_SUBJECT = {"FromAddress": "shop@example.com", "SimpleEmail": {"TextPart": {"Data": "Hi"}}}
LONG_SMS = "x" * 200  # 2 parts of GSM-7


@pytest.fixture
def kpi_server(migrated_settings: Settings) -> Iterator[RunningServer]:
    quiet = migrated_settings.model_copy(
        update={
            "delivery": DeliverySettings(dry_run=True),
            "queue": QueueSettings(workers=0),
            "campaigns": CampaignSettings(scheduler=False, batch_size=10),
            "journeys": JourneySettings(engine=False),  # journeys step when a test ticks the engine
        }
    )
    with running(quiet) as server:
        yield server


def send(client: Any, app_id: str, request: dict[str, Any]) -> dict[str, str]:
    """MessageId by address or endpoint id."""
    response = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]
    found = {address: item["MessageId"] for address, item in response.get("Result", {}).items()}
    found |= {endpoint: item["MessageId"] for endpoint, item in response.get("EndpointResult", {}).items()}
    return found


def report(kind: str, channel: str, message_id: str, at: datetime, **extra: Any) -> ProviderReport:
    return ProviderReport(kind, channel, message_id=message_id, occurred_at=at, **extra)


def build_traffic(server: RunningServer) -> dict[str, str]:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "kpis"})["ApplicationResponse"]["Id"]
    endpoints = [
        ("e1", "EMAIL", "a@example.com"),
        ("e2", "EMAIL", "b@example.com"),
        ("e3", "EMAIL", "c@example.com"),
        ("s1", "SMS", "+4915112345678"),
        ("s2", "SMS", "+14255550100"),
        ("p1", "GCM", "token-1"),
    ]
    client.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={"Item": [{"Id": i, "ChannelType": c, "Address": a} for i, c, a in endpoints]},
    )
    reports: list[ProviderReport] = []

    # Transactional email: five sent, one refused (no subject).
    first = send(
        client,
        app_id,
        {
            "Endpoints": {"e1": {}, "e2": {}},
            "Addresses": {"x@example.com": {"ChannelType": "EMAIL"}},
            "MessageConfiguration": {"EmailMessage": EMAIL},
        },
    )
    again = send(client, app_id, {"Endpoints": {"e1": {}}, "MessageConfiguration": {"EmailMessage": EMAIL}})
    send(
        client,
        app_id,
        {
            "Addresses": {"y@example.com": {"ChannelType": "EMAIL"}},
            "MessageConfiguration": {"EmailMessage": NO_SUBJECT},
        },
    )
    m1, m2, mx, m1b = first["e1"], first["e2"], first["x@example.com"], again["e1"]
    reports += [
        report("_email.delivered", "EMAIL", m1, D0),
        report("_email.open", "EMAIL", m1, D0),
        report("_email.click", "EMAIL", m1, D0, distinct_by="a", attributes={"url": "https://example.com/a"}),
        report("_email.click", "EMAIL", m1, D1, distinct_by="b", attributes={"url": "https://example.com/b"}),
        report("_email.complaint", "EMAIL", m1, D0),
        report("_email.open", "EMAIL", m2, D1),
        report("_email.click", "EMAIL", m2, D0, distinct_by="a", attributes={"url": "https://example.com/a"}),
        report("_email.softbounce", "EMAIL", m2, D0),
        report("_email.hardbounce", "EMAIL", mx, D0),
        report("_email.open", "EMAIL", mx, D0),
        report("_email.open", "EMAIL", m1b, D0),
    ]

    # Transactional SMS: DE 1 part, US 1 part, DE 2 parts, and one refused (no body) to DE.
    sms = send(
        client, app_id, {"Endpoints": {"s1": {}, "s2": {}}, "MessageConfiguration": {"SMSMessage": {"Body": "1234"}}}
    )
    long = send(
        client,
        app_id,
        {
            "Addresses": {"+4915112345679": {"ChannelType": "SMS"}},
            "MessageConfiguration": {"SMSMessage": {"Body": LONG_SMS}},
        },
    )
    send(
        client,
        app_id,
        {"Addresses": {"+4915112345670": {"ChannelType": "SMS"}}, "MessageConfiguration": {"SMSMessage": {}}},
    )
    price = "price_in_millicents_usd"
    reports += [
        report("_SMS.SUCCESS", "SMS", sms["s1"], D0, attributes={"record_status": "DELIVERED"}, metrics={price: 645}),
        report("_SMS.FAILURE", "SMS", sms["s2"], D1, attributes={"record_status": "UNREACHABLE"}, metrics={price: 300}),
        report("_SMS.SUCCESS", "SMS", long["+4915112345679"], D0, metrics={price: 1290}),
    ]

    # A journey's emails: activity JA1 to two addresses, JA2 to one plus one refused.
    def journey_send(addresses: list[str], activity: str, message: dict[str, Any]) -> dict[str, str]:
        return send(
            client,
            app_id,
            {
                "Addresses": {address: {"ChannelType": "EMAIL"} for address in addresses},
                "Context": {"journey_id": journey_id, "journey_activity_id": activity},
                "MessageConfiguration": {"EmailMessage": message},
            },
        )

    journey = client.create_journey(ApplicationId=app_id, WriteJourneyRequest={"Name": "welcome"})
    journey_id = journey["JourneyResponse"]["Id"]
    ja1 = journey_send(["j1@example.com", "j2@example.com"], "JA1", EMAIL)
    ja2 = journey_send(["j3@example.com"], "JA2", EMAIL)
    journey_send(["j4@example.com"], "JA2", NO_SUBJECT)
    j1, j2, j3 = ja1["j1@example.com"], ja1["j2@example.com"], ja2["j3@example.com"]
    reports += [
        report("_email.open", "EMAIL", j1, D0),
        report("_email.click", "EMAIL", j1, D0, distinct_by="a", attributes={"url": "https://example.com/a"}),
        report("_email.unsubscribe", "EMAIL", j1, D0, opt_out=True),
        report("_email.hardbounce", "EMAIL", j2, D0),
        report("_email.complaint", "EMAIL", j2, D0),
        report("_email.softbounce", "EMAIL", j3, D0),
    ]

    # Two campaigns: C1 to every endpoint (email, SMS, push), C2 email only.
    segment_id = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"][
        "Id"
    ]
    base = {"SegmentId": segment_id, "Schedule": {"StartTime": "IMMEDIATE"}}
    c1 = client.create_campaign(
        ApplicationId=app_id,
        WriteCampaignRequest={
            **base,
            "Name": "c1",
            "MessageConfiguration": {
                "EmailMessage": {"Title": "News", "Body": "Hello", "FromAddress": "shop@example.com"},
                "SMSMessage": {"Body": "News"},
                "GCMMessage": {"Title": "News", "Body": "Hello", "Action": "OPEN_APP"},
            },
        },
    )["CampaignResponse"]["Id"]
    emails = {"Demographic": {"Channel": {"DimensionType": "INCLUSIVE", "Values": ["EMAIL"]}}}
    email_segment = client.create_segment(
        ApplicationId=app_id, WriteSegmentRequest={"Name": "email", "Dimensions": emails}
    )["SegmentResponse"]["Id"]
    c2 = client.create_campaign(
        ApplicationId=app_id,
        WriteCampaignRequest={
            **base,
            "SegmentId": email_segment,
            "Name": "c2",
            "MessageConfiguration": {
                "EmailMessage": {"Title": "More", "Body": "Hi", "FromAddress": "shop@example.com"}
            },
        },
    )["CampaignResponse"]["Id"]
    drive_campaigns(server)

    def campaign_messages() -> dict[tuple[str, str], str]:
        async def work(services: Any) -> dict[tuple[str, str], str]:
            from clarion.store import messages as message_store

            rows = await services.db.read(lambda tx: message_store.recent(tx, app_id, 1000))
            return {(row.campaign_id, row.endpoint_id): row.message_id for row in rows if row.campaign_id}

        return server.run(work)

    by_campaign = campaign_messages()
    assert len(by_campaign) == 9, by_campaign  # C1: six endpoints, C2: three email endpoints
    activity = client.get_campaign_activities(ApplicationId=app_id, CampaignId=c1)["ActivitiesResponse"]["Item"][0]
    reports += [
        report("_email.open", "EMAIL", by_campaign[(c1, "e1")], D0),
        report("_email.click", "EMAIL", by_campaign[(c1, "e1")], D0, distinct_by="a"),
        report("_email.click", "EMAIL", by_campaign[(c1, "e1")], D0, distinct_by="b"),
        report("_email.hardbounce", "EMAIL", by_campaign[(c1, "e2")], D0),
        report("_SMS.SUCCESS", "SMS", by_campaign[(c1, "s1")], D0, metrics={price: 500}),
        report("_SMS.FAILURE", "SMS", by_campaign[(c1, "s2")], D0, metrics={price: 200}),
        report("_email.open", "EMAIL", by_campaign[(c2, "e1")], D0),
    ]
    server.run(lambda services: services.record_outcomes(reports))
    opened = {
        "EventType": "_campaign.opened_notification",
        "Timestamp": D1.isoformat(),
        "Attributes": {"campaign_id": c1, "campaign_activity_id": activity["Id"], "treatment_id": "0"},
    }
    client.put_events(
        ApplicationId=app_id,
        EventsRequest={"BatchItem": {"p1": {"Endpoint": {}, "Events": {"open": opened}}}},
    )
    return {"app_id": app_id, "c1": c1, "c2": c2, "a1": activity["Id"], "j1": journey_id}


def expected(ids: dict[str, str]) -> dict[str, dict[str, list[tuple[str | None, float]]]]:
    """Every kpi-name's rows as (group value, value), worked out by hand from build_traffic."""
    c1, c2, a1 = ids["c1"], ids["c2"], ids["a1"]
    app: dict[str, list[tuple[str | None, float]]] = {
        # Campaigns: C1 six sends, C2 three, one hard bounce (C1 to e2); opens C1 e1, C2 e1; one push open.
        "successful-delivery-rate": [(None, 8 / 9)],
        "successful-delivery-rate-grouped-by-date": [(TODAY, 8 / 9)],
        "email-open-rate": [(None, 2 / 5)],
        "email-open-rate-grouped-by-campaign": sorted([(c1, 1 / 2), (c2, 1 / 3)]),
        "unique-deliveries": [(None, 6)],
        "unique-deliveries-grouped-by-campaign": sorted([(c1, 6), (c2, 3)]),
        "unique-deliveries-grouped-by-date": [(TODAY, 6)],
        "successful-deliveries-grouped-by-campaign": sorted([(c1, 5), (c2, 3)]),
        "push-open-rate": [(None, 1.0)],
        "push-open-rate-grouped-by-campaign": [(c1, 1.0)],
        # Transactional email: sent 5 (4 + 1 refused), soft 1, hard 1, rejected 1 -> delivered 2.
        "txn-emails-sent": [(None, 5)],
        "txn-emails-sent-grouped-by-date": [(TODAY, 5)],
        "txn-emails-delivered": [(None, 2)],
        "txn-emails-delivered-grouped-by-date": [(TODAY, 2)],
        "txn-emails-delivery-rate": [(None, 2 / 5)],
        "txn-emails-delivery-rate-grouped-by-date": [(TODAY, 2 / 5)],
        "txn-emails-opened": [(None, 4)],
        "txn-emails-opened-grouped-by-date": [(YESTERDAY, 1), (TODAY, 3)],
        "txn-emails-unique-opens": [(None, 3)],
        "txn-emails-unique-opens-grouped-by-date": [(YESTERDAY, 1), (TODAY, 2)],
        "txn-emails-clicked": [(None, 3)],
        "txn-emails-clicked-grouped-by-date": [(YESTERDAY, 1), (TODAY, 2)],
        "txn-emails-unique-clicks": [(None, 2)],
        "txn-emails-unique-clicks-grouped-by-date": [(YESTERDAY, 1), (TODAY, 2)],
        "txn-emails-hard-bounced": [(None, 1)],
        "txn-emails-hard-bounced-grouped-by-date": [(TODAY, 1)],
        "txn-emails-soft-bounced": [(None, 1)],
        "txn-emails-soft-bounced-grouped-by-date": [(TODAY, 1)],
        "txn-emails-with-complaints": [(None, 1)],
        "txn-emails-with-complaints-grouped-by-date": [(TODAY, 1)],
        "txn-emails-complaint-rate": [(None, 1 / 5)],
        "txn-emails-complaint-rate-grouped-by-date": [(TODAY, 1 / 5)],
        # Transactional SMS: DE 1 + 2 parts + 1 refused, US 1 part; delivered DE 1 and 2 parts; US failed.
        "txn-sms-sent": [(None, 4)],
        "txn-sms-sent-grouped-by-date": [(TODAY, 4)],
        "txn-sms-sent-grouped-by-country": [("DE", 3), ("US", 1)],
        "txn-sms-sent-by-parts": [(None, 5)],
        "txn-sms-sent-by-parts-grouped-by-country": [("DE", 4), ("US", 1)],
        "txn-sms-delivered": [(None, 2)],
        "txn-sms-delivered-grouped-by-date": [(TODAY, 2)],
        "txn-sms-delivered-grouped-by-country": [("DE", 2)],
        "txn-sms-delivered-by-parts": [(None, 3)],
        "txn-sms-delivered-by-parts-grouped-by-country": [("DE", 3)],
        "txn-sms-delivery-rate": [(None, 2 / 4)],
        "txn-sms-delivery-rate-grouped-by-date": [(TODAY, 2 / 4)],
        "txn-sms-error-distribution": [("PERMANENT_FAILURE", 1), ("UNREACHABLE", 1)],
        "txn-sms-average-price-grouped-by-country": [("DE", (645 + 1290) / 3), ("US", 300)],
        "txn-sms-average-price-by-parts-grouped-by-country": [("DE", (645 + 1290) / 4), ("US", 300)],
        "txn-sms-total-price-grouped-by-country": [("DE", 645 + 1290), ("US", 300)],
    }
    campaign: dict[str, list[tuple[str | None, float]]] = {
        # C1: six sends (3 email, 2 SMS, 1 push), all handed over; e2's email hard-bounced.
        "hard-bounce-rate": [(None, 1 / 3)],
        "hard-bounce-rate-grouped-by-campaign-activity": [(a1, 1 / 3)],
        "successful-delivery-rate": [(None, 5 / 6)],
        "successful-delivery-rate-grouped-by-campaign-activity": [(a1, 5 / 6)],
        "successful-delivery-rate-grouped-by-date": [(TODAY, 5 / 6)],
        "email-open-rate": [(None, 1 / 2)],
        "email-open-rate-grouped-by-campaign-activity": [(a1, 1 / 2)],
        "direct-email-opens-grouped-by-campaign-activity": [(a1, 1)],
        "unique-deliveries": [(None, 6)],
        "unique-deliveries-grouped-by-campaign-activity": [(a1, 6)],
        "unique-deliveries-grouped-by-date": [(TODAY, 6)],
        "clicks-grouped-by-campaign-activity": [(a1, 2)],
        "successful-deliveries-grouped-by-campaign-activity": [(a1, 5)],
        "attempted-deliveries-grouped-by-campaign-activity": [(a1, 6)],
        "push-open-rate": [(None, 1.0)],
        "push-open-rate-grouped-by-campaign-activity": [(a1, 1.0)],
        "direct-push-opens-grouped-by-campaign-activity": [(a1, 1)],
        "sms-spend": [(None, 700)],
    }
    # The journey: JA1 sent 2 (j2 hard-bounced and complained; j1 opened, clicked, unsubscribed), JA2 sent 2 (j3
    # soft-bounced, j4 refused).
    journey: dict[str, list[tuple[str | None, float]]] = {
        "journey-emails-sent": [(None, 4)],
        "journey-emails-delivered": [(None, 1)],
        "journey-emails-opened": [(None, 1)],
        "journey-emails-clicked": [(None, 1)],
        "journey-emails-hardbounced": [(None, 1)],
        "journey-emails-softbounced": [(None, 1)],
        "journey-emails-complained": [(None, 1)],
        "journey-emails-rejected": [(None, 1)],
        "journey-emails-unsubscribed": [(None, 1)],
        "emails-sent-grouped-by-journey-activity": [("JA1", 2), ("JA2", 2)],
        "emails-delivered-grouped-by-journey-activity": [("JA1", 1), ("JA2", 0)],
        "emails-opened-grouped-by-journey-activity": [("JA1", 1)],
        "emails-clicked-grouped-by-journey-activity": [("JA1", 1)],
        "emails-hardbounced-grouped-by-journey-activity": [("JA1", 1)],
        "emails-softbounced-grouped-by-journey-activity": [("JA2", 1)],
        "emails-complained-grouped-by-journey-activity": [("JA1", 1)],
        "emails-rejected-grouped-by-journey-activity": [("JA2", 1)],
        "emails-unsubscribed-grouped-by-journey-activity": [("JA1", 1)],
    }
    return {"app": app, "campaign": campaign, "journey": journey}


def rows_of(result: dict[str, Any]) -> list[tuple[str | None, float]]:
    """(group value, value) per row, checking the wire shape on the way: strings, Double values, one group."""
    found = []
    for row in result["Rows"]:
        [value] = row["Values"]
        assert value["Type"] == "Double" and isinstance(value["Value"], str)
        assert all(group["Type"] == "String" for group in row["GroupedBys"])
        found.append((row["GroupedBys"][0]["Value"] if row["GroupedBys"] else None, float(value["Value"])))
    return found


def api_kpi(client: Any, level: str, ids: dict[str, str], name: str, **window: Any) -> dict[str, Any]:
    common = {"ApplicationId": ids["app_id"], "KpiName": name, **window}
    if level == "app":
        return client.get_application_date_range_kpi(**common)["ApplicationDateRangeKpiResponse"]
    if level == "campaign":
        return client.get_campaign_date_range_kpi(CampaignId=ids["c1"], **common)["CampaignDateRangeKpiResponse"]
    return client.get_journey_date_range_kpi(JourneyId=ids["j1"], **common)["JourneyDateRangeKpiResponse"]


def store_kpi(server: RunningServer, level: str, ids: dict[str, str], name: str) -> dict[str, Any]:
    """The same KPI computed by SQL on the row store."""

    async def work(services: Any) -> dict[str, Any]:
        def run(query: kpi_sql.KpiQuery) -> Any:
            return services.db.read(lambda tx: kpi_rollup.run(tx, query))

        request = kpis.KpiRequest(ids["app_id"], name, WINDOW["StartTime"], WINDOW["EndTime"])
        scope = {"app": None, "campaign": ids["c1"], "journey": ids["j1"]}[level]
        return await kpis.date_range_kpi(services.db, run, level, request, services.clock.now(), scope)

    return server.run(work)


def test_every_kpi_matches_the_traffic_sent_on_both_engines(kpi_server: RunningServer) -> None:
    ids = build_traffic(kpi_server)
    client = kpi_server.client()
    wanted = expected(ids)
    assert {level: set(names) for level, names in wanted.items()} == {
        level: set(names) for level, names in kpis.KPIS.items()
    }
    for level, names in wanted.items():
        for name, rows in names.items():
            answer = api_kpi(client, level, ids, name, **WINDOW)
            assert answer["KpiName"] == name
            assert rows_of(answer["KpiResult"]) == rows, (level, name)
            computed = store_kpi(kpi_server, level, ids, name)
            assert rows_of(computed["KpiResult"]) == rows, ("row store", level, name)
        assert answer.get("CampaignId", ids["c1"]) == ids["c1"]


def test_date_rules_shape_and_paging(kpi_server: RunningServer) -> None:
    client = kpi_server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "empty"})["ApplicationResponse"]["Id"]
    ids = {"app_id": app_id, "c1": "none"}
    # Nothing sent: Rows is empty; the default range is the 31 days before the call.
    answer = api_kpi(client, "app", ids, "txn-emails-sent")
    assert answer["KpiResult"] == {"Rows": []}
    assert answer["EndTime"] - answer["StartTime"] == timedelta(days=31)
    assert abs(answer["EndTime"] - datetime.now(UTC)) < timedelta(minutes=5)

    def refused(**window: Any) -> str:
        with pytest.raises(ClientError) as raised:
            api_kpi(client, "app", ids, window.pop("name", "txn-emails-sent"), **window)
        assert raised.value.response["Error"]["Code"] == "BadRequestException"
        return str(raised.value.response["Error"]["Message"])

    now = datetime.now(UTC)
    assert "31 days" in refused(StartTime=now - timedelta(days=32), EndTime=now)
    assert "90 days" in refused(StartTime=now - timedelta(days=91), EndTime=now - timedelta(days=80))
    assert "StartTime" in refused(StartTime=now, EndTime=now - timedelta(days=1))
    assert "KpiName" in refused(name="txn-emails-sent-grouped-by-campaign")
    assert "PageSize" in refused(PageSize="0")
    with pytest.raises(ClientError) as raised:
        client.get_campaign_date_range_kpi(ApplicationId=app_id, CampaignId="nope", KpiName="sms-spend")
    assert raised.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as raised:
        client.get_journey_date_range_kpi(ApplicationId=app_id, JourneyId="nope", KpiName="journey-emails-sent")
    assert raised.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as raised:
        client.get_application_date_range_kpi(ApplicationId="no-such-app", KpiName="txn-sms-sent")
    assert raised.value.response["Error"]["Code"] == "NotFoundException"

    # Two days of opens, one row per page.
    sent = send(
        client,
        app_id,
        {
            "Addresses": {"a@example.com": {"ChannelType": "EMAIL"}, "b@example.com": {"ChannelType": "EMAIL"}},
            "MessageConfiguration": {"EmailMessage": EMAIL},
        },
    )
    reports = [
        report("_email.open", "EMAIL", sent["a@example.com"], D1),
        report("_email.open", "EMAIL", sent["b@example.com"], D0),
    ]
    kpi_server.run(lambda services: services.record_outcomes(reports))
    first = api_kpi(client, "app", ids, "txn-emails-opened-grouped-by-date", PageSize="1", **WINDOW)
    assert rows_of(first["KpiResult"]) == [(YESTERDAY, 1.0)] and first["NextToken"]
    second = api_kpi(
        client, "app", ids, "txn-emails-opened-grouped-by-date", PageSize="1", NextToken=first["NextToken"], **WINDOW
    )
    assert rows_of(second["KpiResult"]) == [(TODAY, 1.0)] and "NextToken" not in second
    assert first["KpiResult"]["Rows"][0]["GroupedBys"] == [{"Key": "Date", "Type": "String", "Value": YESTERDAY}]
    assert first["KpiResult"]["Rows"][0]["Values"][0]["Key"] == "TxnEmailsOpened"


def test_sms_parts_follow_the_alphabet() -> None:
    assert message_parts("x" * 160) == 1
    assert message_parts("x" * 161) == 2
    assert message_parts("x" * 306) == 2 and message_parts("x" * 307) == 3
    assert message_parts("€" * 80) == 1 and message_parts("€" * 81) == 2  # extension characters take two septets
    assert message_parts("ж" * 70) == 1 and message_parts("ж" * 71) == 2  # UCS-2
    assert message_parts("😀" * 35) == 1 and message_parts("😀" * 36) == 2  # a surrogate pair is two units


def test_a_gateway_reports_the_price_it_charged() -> None:
    status = {"type": "status", "message_id": "m-1", "status": "DELIVERED", "price_in_millicents_usd": 645}
    [delivered] = reports_from(status)
    assert delivered.metrics == {"price_in_millicents_usd": 645.0}
    with pytest.raises(ValueError, match="price_in_millicents_usd"):
        reports_from({**status, "price_in_millicents_usd": "cheap"})


def test_times_at_the_edge_of_the_calendar_are_bad_requests() -> None:
    now = datetime.now(UTC)
    for start, end in ((None, datetime.min), (datetime.max, None), (datetime.min, datetime.max)):
        with pytest.raises(BadRequest):
            kpis.date_range(start, end, now)


HOUR_MS = 3_600_000


def rollup_events(base: int, count: int, spacing: int) -> list[dict[str, Any]]:
    """`count` events from `base` on, `spacing` ms apart: campaign and direct sends and their outcomes on three
    channels, endpoints and bare addresses seen again and again, some without a campaign or a success."""
    kinds = ["_campaign.send", "_email.open", "_SMS.SUCCESS", "_SMS.FAILURE", "_email.send", "_email.click"]
    events = []
    for n in range(count):
        attributes = {
            "campaign_id": f"c{n % 3}" if n % 4 else None,
            # campaign sends stored before named their run ActivityId, as the Context does; now Pinpoint's name
            "campaign_activity_id" if n % 2 else "ActivityId": f"a{n % 5}",
            "delivery_status": "SUCCESSFUL" if n % 7 else "PERMANENT_FAILURE",
            "channel_type": ["EMAIL", "SMS", "GCM"][n % 3],
            "iso_country_code": ["DE", "US"][n % 2],
            "number_of_message_parts": str(1 + n % 3),
            "destination": f"user{n % 40}@example.com",
        }
        events.append(
            {
                "app_id": "app",
                "endpoint_id": f"E{n % 50}" if n % 9 else "",  # a send without an endpoint: its address counts
                "event_type": kinds[n % len(kinds)],
                "event_at": base + n * spacing + n % 997,
                "arrival_at": base + n * spacing,
                "session_id": None,
                "change_seq": 1,
                "seq": n,
                "doc": {
                    "Attributes": {k: v for k, v in attributes.items() if v is not None},
                    "Metrics": {"price_in_millicents_usd": float(n % 11)},
                },
            }
        )
    return events


def apply_events(round_: Round, events: list[dict[str, Any]]) -> None:
    """One batch of the replica's events feed, as the sync hands it over."""
    with JsonLines() as rows:
        rows.write([json.dumps(event) for event in events])
        round_.events(rows)


def rollup_counters() -> tuple[tuple[kpi_sql.Counter, ...], tuple[kpi_sql.Counter, ...]]:
    """Every counter of the campaign and application KPIs: those that count and sum, and those of distinct
    recipients (unique deliveries, opens, clicks)."""
    every = {
        counter
        for kpi in (*kpis.KPIS["app"].values(), *kpis.KPIS["campaign"].values())
        for counter in kpi.metric.counters
    }
    counted = tuple(sorted((c for c in every if c.aggregate is not kpi_sql.Aggregate.RECIPIENTS), key=repr))
    distinct = tuple(sorted((c for c in every if c.aggregate is kpi_sql.Aggregate.RECIPIENTS), key=repr))
    assert len(distinct) == 3
    return counted, distinct


def answered_as_scanned(replica: Replica, ranges: list[tuple[int, int]], with_counts: bool = True) -> int:
    """Runs KPI queries of every scope and group a rollup answers over each range, checks each gives exactly the
    rows of a scan of every event, and answers how many had rows."""
    counted, distinct = rollup_counters()
    cases = [
        (kpi_sql.Scope.CAMPAIGNS, kpi_sql.Group.DATE, distinct, kpi_duckdb.RecipientSetColumns),
        (kpi_sql.Scope.CAMPAIGNS, kpi_sql.Group.CAMPAIGN, distinct, kpi_duckdb.RecipientSetColumns),
        (kpi_sql.Scope.TRANSACTIONAL, None, distinct, kpi_duckdb.RecipientSetColumns),
        (kpi_sql.Scope.CAMPAIGN, kpi_sql.Group.ACTIVITY, distinct, kpi_duckdb.RecipientSetColumns),
        (kpi_sql.Scope.CAMPAIGN, None, distinct, kpi_duckdb.RecipientSetColumns),
    ]
    if with_counts:
        cases += [
            (kpi_sql.Scope.CAMPAIGNS, kpi_sql.Group.DATE, counted, kpi_duckdb.RollupColumns),
            (kpi_sql.Scope.TRANSACTIONAL, kpi_sql.Group.COUNTRY, counted, kpi_duckdb.RollupColumns),
            (kpi_sql.Scope.CAMPAIGN, kpi_sql.Group.ACTIVITY, counted, kpi_duckdb.RollupColumns),
        ]
    con = replica.cursor()
    answered = 0
    for start, end in ranges:
        for scope, group, counters, rollup in cases:
            query = kpi_sql.KpiQuery("app", start, end, scope, "c1", group, counters)
            assert isinstance(kpi_duckdb.columns_for(query), rollup)
            rolled = sorted(kpi_duckdb.run(con, query))
            sql, params = kpi_sql.compile_kpi(query, kpi_duckdb.ReplicaColumns())
            scanned = sorted(tuple(row) for row in con.execute(sql, params).fetchall())
            assert rolled == scanned, (start, end, scope, group)
            answered += any(any(value for value in row[group is not None :]) for row in rolled)
    con.close()
    return answered


def test_the_hourly_rollups_answer_exactly_what_the_events_do() -> None:
    """Ranges that start and end anywhere inside an hour: the rollups (whole hours) plus the edge hours' events give
    the figures a scan of every event gives, counts and sums as well as distinct recipients (endpoints, and the
    addresses of sends without one, seen in several hours and batches)."""
    base = (int(datetime.now(UTC).timestamp() * 1000) // HOUR_MS - 30) * HOUR_MS
    events = rollup_events(base, 600, 173_000)
    replica = Replica(None)
    with replica.round() as round_:
        apply_events(round_, events[:250])
        apply_events(round_, events[250:])  # a second batch adds to the same hours
    ranges = [
        (base + 1, base + 10 * HOUR_MS - 1),
        (base + 90_001, base + 29 * HOUR_MS + 5),
        (base + 865_000, base + 865_010),
    ]
    assert answered_as_scanned(replica, ranges) >= 14
    replica.close()


def test_day_sets_of_recipients_answer_exactly_what_the_events_do() -> None:
    """Ranges over several days read the recipients' day sets for the days wholly inside them and hour sets and
    events around: the distinct counts are those of a scan, across rounds, events arriving late for a day already
    rolled up, and a prune that cuts a day in two."""
    day = 24 * HOUR_MS
    base = (int(datetime.now(UTC).timestamp() * 1000) // day - 6) * day
    events = rollup_events(base, 900, 500_000)  # 5.2 days
    replica = Replica(None)
    for batch in (events[:300], events[300:800], events[800:], events[100:200:3]):  # the last: late, again
        with replica.round() as round_:
            apply_events(round_, [{**event, "seq": n} for n, event in enumerate(batch)])
    con = replica.cursor()
    [(days, numbered, distinct)] = con.execute(
        "SELECT count(*) FILTER (WHERE hours = 24), (SELECT count(*) FROM kpi_recipient_ids), "
        "(SELECT count(DISTINCT id) FROM kpi_recipient_ids) FROM kpi_recipients"
    ).fetchall()
    con.close()
    recipients = {
        event["endpoint_id"].lower() or "@" + event["doc"]["Attributes"]["destination"]
        for event in events
        if event["event_type"] in kpi_rollups.RECIPIENT_EVENT_TYPES
    }
    assert days >= 5 and numbered == distinct == len(recipients)  # each recipient numbered once
    ranges = [
        (base, base + 5 * day - 1),  # whole days
        (base + 7 * HOUR_MS + 12_345, base + 4 * day + 3 * HOUR_MS + 1),  # days, hours and edges
        (base + day + 1, base + 3 * day - 1),
        (base + 2 * day - HOUR_MS, base + 2 * day + HOUR_MS),
    ]
    assert answered_as_scanned(replica, ranges, with_counts=False) >= 16
    with replica.round() as round_:
        round_.prune_events(base + day + 5 * HOUR_MS)
    assert answered_as_scanned(replica, [(base + day + 5 * HOUR_MS, base + 4 * day)], with_counts=False) >= 3
    replica.close()


HOURLY_KEYS = ", ".join(("app_id", "hour", "event_type", *kpi_sql.ROLLUP_KEYS))
HOURLY_TOTALS = (
    f"SELECT {HOURLY_KEYS}, sum(n), sum(parts), sum(price) FROM kpi_hourly "
    f"GROUP BY {HOURLY_KEYS} ORDER BY {HOURLY_KEYS}"
)


def postgres_answered_as_scanned(conn: Any, ranges: list[tuple[int, int]]) -> int:
    """Runs KPI queries the PostgreSQL rollups answer over each range, checks each gives exactly the rows of a scan of
    the events, and answers how many had rows."""
    tx = Transaction(conn, POSTGRESQL)
    counted, distinct = rollup_counters()
    answered = 0
    for start, end in ranges:
        for scope, group, counters in (
            (kpi_sql.Scope.CAMPAIGNS, kpi_sql.Group.DATE, counted),
            (kpi_sql.Scope.TRANSACTIONAL, kpi_sql.Group.COUNTRY, counted),
            (kpi_sql.Scope.CAMPAIGN, kpi_sql.Group.ACTIVITY, counted),
            (kpi_sql.Scope.TRANSACTIONAL, kpi_sql.Group.ERROR, counted),
            (kpi_sql.Scope.CAMPAIGNS, kpi_sql.Group.DATE, distinct),
            (kpi_sql.Scope.CAMPAIGN, kpi_sql.Group.ACTIVITY, distinct),
            (kpi_sql.Scope.TRANSACTIONAL, None, distinct),
        ):
            query = kpi_sql.KpiQuery("app", start, end, scope, "c1", group, counters)
            assert not isinstance(kpi_rollup.columns_for(query, POSTGRESQL), kpi_sql.RowStoreColumns)
            with conn.transaction():
                rolled = sorted(kpi_rollup.run(tx, query), key=repr)
                sql, params = kpi_sql.compile_kpi(query, kpi_sql.RowStoreColumns(POSTGRESQL))
                scanned = sorted((tuple(row) for row in tx.fetchall(sql, params)), key=repr)
            assert rolled == scanned, (start, end, scope, group)
            answered += bool(rolled)
    return answered


def store_rows(events: list[dict[str, Any]]) -> list[event_store.EventRow]:
    return [
        event_store.EventRow(
            e["app_id"],
            e["endpoint_id"],
            f"ev-{e['seq']}",
            e["event_type"],
            e["event_at"],
            e["arrival_at"],
            None,
            json.dumps(e["doc"]),
        )
        for e in events
    ]


def test_retention_forgets_the_recipients_whose_events_are_gone() -> None:
    """A recipient's number, and the endpoint id or address it stands for, goes with the last kept event or set that
    holds it: after a prune that cuts inside an hour, the numbers kept are exactly those kept events and sets hold,
    the recipients seen only before the cut are gone, and one seen again is numbered afresh and counted once."""
    day = 24 * HOUR_MS
    base = (int(datetime.now(UTC).timestamp() * 1000) // day - 6) * day
    events = rollup_events(base, 900, 500_000)  # 5.2 days
    for event in events[:300]:  # the first 42 hours' recipients are seen then only
        event["endpoint_id"] = event["endpoint_id"] and "early-" + event["endpoint_id"]
        event["doc"]["Attributes"]["destination"] = "early-" + event["doc"]["Attributes"]["destination"]
    replica = Replica(None)
    with replica.round() as round_:
        apply_events(round_, events)

    def numbers() -> tuple[set[str], set[int], set[int]]:
        """Recipients numbered (by name), and the numbers kept events and kept sets hold."""
        con = replica.cursor()
        numbered = {
            name: number for name, number in con.execute("SELECT recipient, id FROM kpi_recipient_ids").fetchall()
        }
        assert len(set(numbered.values())) == len(numbered)  # one number each
        in_events = {
            n for (n,) in con.execute("SELECT recipient_id FROM events WHERE recipient_id IS NOT NULL").fetchall()
        }
        in_sets: set[int] = set()
        for (stored,) in con.execute("SELECT recipients FROM kpi_recipients").fetchall():
            in_sets |= set(BitMap.deserialize(stored))
        con.close()
        assert set(numbered.values()) == in_events | in_sets  # none held by nothing, none missing
        return set(numbered), in_events, in_sets

    before, _, _ = numbers()
    cut = base + day + 5 * HOUR_MS + 1_800_000  # half an hour into an hour whose set stays
    with replica.round() as round_:
        round_.prune_events(cut)
    after, in_events, in_sets = numbers()
    gone = before - after
    assert gone and all(name.startswith(("early-", "@early-")) for name in gone)
    assert in_sets - in_events  # the cut hour's set holds recipients whose events there are pruned
    assert answered_as_scanned(replica, [(cut, base + 4 * day)], with_counts=False) >= 3
    again = [
        {**event, "seq": 1000 + n, "event_at": event["event_at"] + 4 * day, "arrival_at": event["arrival_at"] + 4 * day}
        for n, event in enumerate(events[:40])
    ]
    with replica.round() as round_:
        apply_events(round_, again)
    returned, _, _ = numbers()
    assert gone & returned
    assert answered_as_scanned(replica, [(cut, base + 6 * day)], with_counts=False) >= 3
    replica.close()


def test_the_postgresql_rollups_answer_exactly_what_the_events_do(postgres_url: str) -> None:
    """On PostgreSQL the trigger's rollups (rows appended by each insert, added up by the query), with the edge
    hours' events, give what a scan of the events gives, for ranges over days and hours; a retried insert (rows ON
    CONFLICT skips) adds nothing, and the events stored before the migration are rolled up by it."""
    migrated_postgres(postgres_url)
    conn = connect_postgres(postgres_url)
    tx = Transaction(conn, POSTGRESQL)
    day = 24 * HOUR_MS
    base = (int(datetime.now(UTC).timestamp() * 1000) // day - 4) * day
    rows = store_rows(rollup_events(base, 700, 450_000))  # 3.6 days
    for batch in (rows[:300], rows[300:], rows[250:350]):  # the last a retry: every row already stored
        with conn.transaction():
            event_store.append(tx, batch)
    ranges = [
        (base + 1, base + 3 * day - 1),
        (base + 5 * HOUR_MS + 7, base + 2 * day + 3 * HOUR_MS + 11),
        (base + 865_000, base + 865_010),
    ]
    assert postgres_answered_as_scanned(conn, ranges) >= 15
    with conn.transaction():  # what the migration does for a store that has events already
        before = tx.fetchall(HOURLY_TOTALS)
        tx.execute("DELETE FROM kpi_hourly")
        backfill = kpi_rollup.MIGRATION[-2]
        assert callable(backfill)
        tx.execute(backfill(POSTGRESQL))
        assert tx.fetchall(HOURLY_TOTALS) == before
    conn.close()


def test_merging_the_postgresql_rollups_under_concurrent_inserts(postgres_url: str) -> None:
    """The background merge folds each ended hour's appended rows into one row per key while inserts go on: an
    insert into an hour being merged does not wait for the merge, a KPI read meanwhile sees the rows before or after
    it, and once merged every hour holds one row per key with the figures (and answers) of the events."""
    migrated_postgres(postgres_url)
    conn, writer = connect_postgres(postgres_url), connect_postgres(postgres_url)
    tx, writes = Transaction(conn, POSTGRESQL), Transaction(writer, POSTGRESQL)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    base = (now_ms // HOUR_MS - 30) * HOUR_MS
    rows = store_rows(rollup_events(base, 900, 110_000))  # 27.5 hours, all ended
    early, late = rows[:400], rows[400:]
    for start in range(0, len(early), 7):  # five inserts an hour: several appended rows per hour and key
        with conn.transaction():
            event_store.append(tx, early[start : start + 7])
    ranges = [(base + 1, base + 28 * HOUR_MS), (base + 5 * HOUR_MS + 7, base + 20 * HOUR_MS + 11)]

    # An insert into the hour a merge is folding, while the merge's transaction is open, goes through at once.
    with conn.transaction():
        assert kpi_rollup.merge_next(tx, now_ms) > 0
        hour = tx.scalar("SELECT min(hour) FROM kpi_hourly WHERE merged")
        writer.execute("SET lock_timeout = '5s'")  # waiting would fail the insert
        doc = json.dumps({"Attributes": {"campaign_id": "c1", "delivery_status": "SUCCESSFUL"}})
        with writer.transaction():
            event_store.append(
                writes, [event_store.EventRow("app", "E1", "ev-x", "_campaign.send", hour * HOUR_MS + 5, 0, None, doc)]
            )
        assert postgres_answered_as_scanned(writer, ranges[:1]) >= 5  # the rows before the merge: the same answers

    done = threading.Event()

    def insert_the_rest() -> None:
        for start in range(0, len(late), 25):
            with writer.transaction():
                event_store.append(writes, late[start : start + 25])
        done.set()

    thread = threading.Thread(target=insert_the_rest)
    thread.start()
    merged_while_writing = 0
    while not done.is_set():
        with conn.transaction():
            folded = kpi_rollup.merge_next(tx, now_ms)
        merged_while_writing += folded is not None
    thread.join()
    while True:  # what is left once the writes are over
        with conn.transaction():
            if kpi_rollup.merge_next(tx, now_ms) is None:
                break
    assert merged_while_writing > 0
    with conn.transaction():
        assert tx.scalar("SELECT count(*) FROM kpi_hourly WHERE NOT merged") == 0
        assert tx.scalar("SELECT count(*) FROM kpi_recipients WHERE NOT merged") == 0
        recipient = ", ".join(("app_id", "hour", "event_type", *kpi_sql.RECIPIENT_KEYS, "recipient"))
        for table, key in (("kpi_hourly", HOURLY_KEYS), ("kpi_recipients", recipient)):
            twice = f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY {key} HAVING count(*) > 1) d"
            assert tx.scalar(twice) == 0, table
    assert postgres_answered_as_scanned(conn, ranges) >= 10
    with conn.transaction():
        merged_totals = tx.fetchall(HOURLY_TOTALS)
        tx.execute("DELETE FROM kpi_hourly")  # the figures of every event, rolled up at once
        tx.execute(kpi_rollup.roll_up_sql("events")[0])
        assert tx.fetchall(HOURLY_TOTALS) == merged_totals
        raise psycopg.Rollback
    conn.close()
    writer.close()


def test_journey_kpis_count_what_the_journey_engine_sends(kpi_server: RunningServer) -> None:
    client = kpi_server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "journeys"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    client.create_email_template(TemplateName="kpi-welcome", EmailTemplateRequest={"Subject": "Hi", "TextPart": "Hi"})
    items = [{"Id": f"ep-{n}", "ChannelType": "EMAIL", "Address": f"ep-{n}@example.org"} for n in range(3)]
    client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    segment_id = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"][
        "Id"
    ]
    body = {
        "Name": "welcome",
        "Activities": {"mail": {"EMAIL": {"TemplateName": "kpi-welcome"}}},
        "StartActivity": "mail",
        "State": "ACTIVE",
        "StartCondition": {"SegmentStartCondition": {"SegmentId": segment_id}},
    }
    journey_id = client.create_journey(ApplicationId=app_id, WriteJourneyRequest=body)["JourneyResponse"]["Id"]
    kpi_server.run(lambda services: services.journey_engine.tick())

    def sent(tx: Any) -> dict[str, str]:
        rows = tx.fetchall("SELECT endpoint_id, message_id FROM messages WHERE journey_id = ?", (journey_id,))
        return dict(rows)

    messages = kpi_server.run(lambda services: services.db.read(sent))
    assert sorted(messages) == ["ep-0", "ep-1", "ep-2"]
    now = datetime.now(UTC)
    reports = [
        report("_email.open", "EMAIL", messages["ep-0"], now),
        report("_email.hardbounce", "EMAIL", messages["ep-1"], now),
    ]
    kpi_server.run(lambda services: services.record_outcomes(reports))
    ids = {"app_id": app_id, "j1": journey_id}
    figures = {
        "journey-emails-sent": [(None, 3.0)],
        "journey-emails-delivered": [(None, 2.0)],
        "journey-emails-opened": [(None, 1.0)],
        "journey-emails-hardbounced": [(None, 1.0)],
        "journey-emails-clicked": [],
        "emails-sent-grouped-by-journey-activity": [("mail", 3.0)],
        "emails-opened-grouped-by-journey-activity": [("mail", 1.0)],
    }
    for name, rows in figures.items():
        assert rows_of(api_kpi(client, "journey", ids, name, **WINDOW)["KpiResult"]) == rows, name
