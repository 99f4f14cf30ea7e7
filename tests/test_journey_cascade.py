"""The re-engagement cascade end to end: `clarion journeys create-cascade` makes it from its blueprint, real users
enter on the "active users" segment, and the push (an FCM stand-in over TLS and HTTP/2), the email (an SMTP
server) and the SMS (an HTTP gateway) arrive only for those who did not open or click the message before. The
engine is driven and the clock moved, so the day and the two days pass at once; `clarion journeys watch` follows
it to the end. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from conftest import ADMIN, REGION, RunningServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from processes import clean_env
from push_stubs import FcmStub, H2Stub, OAuthStub, oauth_server, server_context
from smtp_relay import Relay
from web_recorder import WebRecorder

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import ProviderReport
from clarion.config import Settings
from clarion.journeys.config import JourneySettings
from clarion.outbound.config import OutboundSettings
from clarion.queue.config import QueueSettings


class Fcm:
    """FCM and Google's token endpoint on an event loop of their own (the server's loop must not serve them)."""

    def __init__(self, ca: trustme.CA, key: rsa.RSAPrivateKey) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.stub = FcmStub("clarion-test")
        self.h2 = H2Stub(self.stub, server_context(ca.issue_cert("localhost")))
        self.oauth = oauth_server(OAuthStub(key.public_key(), self.stub))
        self.url = self._run(self.h2.start())
        self.token_uri = self._run(self.oauth.__aenter__())

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=20)

    def close(self) -> None:
        self._run(self.oauth.__aexit__(None, None, None))
        self._run(self.h2.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[tuple[Fcm, WebRecorder, str, str]]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    service = {
        "type": "service_account",
        "project_id": "clarion-test",
        "private_key_id": "key-1",
        "private_key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "client_email": "push@clarion-test.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    fcm = Fcm(ca, key)
    gateway = WebRecorder(lambda body: (202, {"messages": [{"id": f"gw-{body['to']}"}]}))
    try:
        yield fcm, gateway, str(ca_file), json.dumps(service)
    finally:
        gateway.close()
        fcm.close()


@pytest.fixture
def cascade_server(
    settings: Settings, relay: tuple[Relay, int], sinks: tuple[Fcm, WebRecorder, str, str]
) -> Iterator[RunningServer]:
    fcm, gateway, ca_file, _ = sinks
    delivery = DeliverySettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": relay[1], "security": "none"},
            "sms": {
                "provider": "http",
                "http": {"url": gateway.url + "/send", "body": {"to": "{to}", "text": "{body}"}},
            },
            "push": {"fcm_url": fcm.url, "fcm_token_uri": fcm.token_uri, "ca_file": ca_file},
        }
    )
    tuned = settings.model_copy(
        update={
            "queue": QueueSettings(workers=0),
            "max_clock_skew_seconds": 40 * 86_400,
            "campaigns": CampaignSettings(scheduler=False),
            "journeys": JourneySettings(engine=False),
            "delivery": delivery,
            "outbound": OutboundSettings(allow_networks=["127.0.0.0/8"]),  # where the providers listen
        }
    )
    with RunningServer(tuned) as running:
        yield running


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        AWS_ENDPOINT_URL_PINPOINT=server.url,
        AWS_ACCESS_KEY_ID=ADMIN.access_key_id,
        AWS_SECRET_ACCESS_KEY=ADMIN.secret_access_key,
        AWS_DEFAULT_REGION=REGION,
    )
    return subprocess.run(
        [sys.executable, "-m", "clarion", "journeys", *args], capture_output=True, text=True, timeout=60, env=env
    )


def message_of(server: RunningServer, endpoint_id: str) -> str:
    def read(tx: Any) -> str:
        return tx.scalar(
            "SELECT message_id FROM messages WHERE endpoint_id = ? AND journey_id IS NOT NULL", (endpoint_id,)
        )

    return server.run(lambda services: services.db.read(read))


def test_the_re_engagement_cascade_reaches_each_user_once_on_the_next_channel(
    cascade_server: RunningServer, relay: tuple[Relay, int], sinks: tuple[Fcm, WebRecorder, str, str]
) -> None:
    smtp, _ = relay
    fcm, gateway, _, service_json = sinks
    pinpoint = cascade_server.client()
    app_id = pinpoint.create_app(CreateApplicationRequest={"Name": "cascade"})["ApplicationResponse"]["Id"]
    pinpoint.update_gcm_channel(ApplicationId=app_id, GCMChannelRequest={"ServiceJson": service_json, "Enabled": True})
    pinpoint.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "hello@example.com", "Identity": "example.com"}
    )
    pinpoint.update_sms_channel(ApplicationId=app_id, SMSChannelRequest={"Enabled": True, "SenderId": "SHOP"})
    items = []
    for n in range(1, 5):
        user = {"UserId": f"user-{n}"}
        items += [
            {"Id": f"phone-{n}", "ChannelType": "GCM", "Address": f"device-token-{n}", "User": user},
            {"Id": f"mail-{n}", "ChannelType": "EMAIL", "Address": f"user{n}@example.org", "User": user},
            {"Id": f"sms-{n}", "ChannelType": "SMS", "Address": f"+4915112345{n:03d}", "User": user},
        ]
    pinpoint.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sessions = {
        f"phone-{n}": {"Endpoint": {}, "Events": {"s": {"EventType": "_session.start", "Timestamp": now}}}
        for n in range(1, 4)
    }
    pinpoint.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": sessions})  # user-4 is not a real user

    created = cli(cascade_server, "create-cascade", app_id, "--activate")
    assert created.returncode == 0, created.stderr
    journey_id = created.stdout.split()[1]
    assert "re-engagement-cascade" in created.stdout and "ACTIVE" in created.stdout

    def tick() -> None:
        cascade_server.run(lambda services: services.journey_engine.tick())

    tick()
    pushes = {request.json()["message"]["token"]: request.json()["message"] for request in fcm.stub.delivered}
    assert sorted(pushes) == ["device-token-1", "device-token-2", "device-token-3"]
    assert pushes["device-token-1"]["notification"]["title"] == "We kept your place"
    assert pushes["device-token-1"]["android"]["ttl"] == "43200s"  # the blueprint's PUSH.MessageConfig.TimeToLive
    # user-1's app reports that the notification was opened, naming the journey as its push data did.
    data = pushes["device-token-1"]["data"]
    opened = {
        "EventType": "_journey.opened_notification",
        "Timestamp": now,
        "Attributes": {
            name: data[f"pinpoint.{name}"] for name in ("journey_id", "journey_activity_id", "journey_run_id")
        },
    }
    pinpoint.put_events(
        ApplicationId=app_id, EventsRequest={"BatchItem": {"phone-1": {"Endpoint": {}, "Events": {"o": opened}}}}
    )
    cascade_server.clock.offset += timedelta(days=1, minutes=1)
    tick()
    assert sorted(smtp.recipients()) == ["user2@example.org", "user3@example.org"]  # user-1 opened the push
    click = ProviderReport(
        "_email.click", "EMAIL", message_id=message_of(cascade_server, "mail-2"), attributes={"url": "https://x"}
    )
    cascade_server.run(lambda services: services.record_outcomes([click]))
    cascade_server.clock.offset += timedelta(days=2, minutes=1)
    tick()
    assert [body["to"] for _, _, body in gateway.requests] == ["+4915112345003"]  # only user-3 clicked nothing
    tick()
    assert len(fcm.stub.delivered) == 3 and len(smtp.received) == 2 and len(gateway.requests) == 1

    journey = pinpoint.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]
    assert journey["State"] == "COMPLETED"
    metrics = pinpoint.get_journey_execution_metrics(ApplicationId=app_id, JourneyId=journey_id)
    assert metrics["JourneyExecutionMetricsResponse"]["Metrics"] == {
        "ENDPOINT_ACTIVE": "0",
        "ENDPOINT_ENTERED": "3",
        "ENDPOINT_LEFT": "3",
    }
    watched = cli(cascade_server, "watch", app_id, journey_id, "--interval", "0.1")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "journey COMPLETED" in watched.stdout and "pushOpened Branch_1=1 Branch_2=2" in watched.stdout
