"""Push and custom-channel delivery against local providers: TLS HTTP/2 servers playing APNs and FCM (push_stubs),
an OAuth token endpoint and a webhook receiver on aiohttp. Each checks requests as the provider documents them.
Every transport sends through the guarded client, which reaches these local servers only because the tests'
settings allow the loopback network."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import jwt
import msgspec
import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from push_stubs import ApnsStub, FcmStub, H2Stub, Handler, OAuthStub, StubResponse, oauth_server, server_context

from clarion.channels import custom
from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import CustomContent, DeliveryStatus, Outbound, PushContent
from clarion.channels.push import OPENERS, apns, fcm
from clarion.clock import FixedClock
from clarion.outbound.client import OutboundClient, Tls
from clarion.outbound.config import OutboundSettings

T = TypeVar("T")
START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TEAM_ID = "TEAM123456"
KEY_ID = "KEY7654321"
BUNDLE = "com.example.clarion"


def run(work: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(work(), 60))


def pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def device(prefix: str = "f") -> str:
    """A random 64-hex-digit token; the default prefix never selects an error answer from ApnsStub."""
    return (prefix + uuid.uuid4().hex + uuid.uuid4().hex)[:64]


def push(address: str, content: PushContent | None = None, channel: str = "APNS", **context: str) -> Outbound:
    return Outbound(
        channel=channel,
        address=address,
        message_id=str(uuid.uuid4()),
        app_id="app1",
        content=content or PushContent(title="Hello", body="World"),
        context=context,
    )


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def outbound() -> Iterator[OutboundClient]:
    """The guarded client, allowed onto the loopback network where the local providers listen."""
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8", "::1/128"]))
    yield client
    asyncio.run(client.close())


@pytest.fixture(scope="module")
def apns_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@asynccontextmanager
async def h2_stub(ca: trustme.CA, handler: Handler, **options: Any) -> AsyncIterator[tuple[H2Stub, str]]:
    stub = H2Stub(handler, server_context(ca.issue_cert("localhost")), **options)
    url = await stub.start()
    try:
        yield stub, url
    finally:
        await stub.close()


def apns_settings(url: str, ca_file: str) -> DeliverySettings:
    return DeliverySettings.model_validate(
        {"push": {"apns_url": url, "apns_sandbox_url": url + "/unused", "ca_file": ca_file}}
    )


def token_channel(key: ec.EllipticCurvePrivateKey, platform: str = "APNS") -> dict[str, Any]:
    return {
        "Platform": platform,
        "TokenKey": pem(key),
        "TokenKeyId": KEY_ID,
        "TeamId": TEAM_ID,
        "BundleId": BUNDLE,
        "DefaultAuthenticationMethod": "TOKEN",
    }


def apns_stub(key: ec.EllipticCurvePrivateKey) -> ApnsStub:
    return ApnsStub(key.public_key(), KEY_ID, TEAM_ID, BUNDLE)


# --- APNs ---------------------------------------------------------------------------------------------------------


def test_apns_token_auth_sends_what_apple_documents(
    ca: trustme.CA, ca_file: str, apns_key: Any, outbound: OutboundClient
) -> None:
    stub = apns_stub(apns_key)
    clock = FixedClock(START)

    async def scenario() -> None:
        async with h2_stub(ca, stub) as (server, url):
            transport = apns.open_transport(apns_settings(url, ca_file), token_channel(apns_key), outbound, clock)
            content = PushContent(
                title="Sale",
                body="50% off",
                sound="default",
                badge=3,
                category="OFFER",
                thread_id="offers",
                data={"offer": "42"},
                action="DEEP_LINK",
                url="app://offers/42",
                time_to_live=3600,
                collapse_key="offers",
            )
            campaign = {"CampaignId": "c1", "TreatmentId": "0", "ActivityId": "run-1"}
            messages = [push(device(), content, **campaign) for _ in range(3)]
            results = [await transport.send(message) for message in messages]
            await transport.close()
            assert server.connections == 1

        assert [result.status for result in results] == [DeliveryStatus.SUCCESSFUL] * 3
        assert [result.provider_message_id for result in results] == [m.message_id for m in messages]
        assert len(set(stub.tokens_seen)) == 1  # one provider token, reused
        first = stub.delivered[0]
        assert first.path == f"/3/device/{messages[0].address}"
        assert first.headers["apns-topic"] == BUNDLE
        assert first.headers["apns-push-type"] == "alert"
        assert first.headers["apns-priority"] == "10"
        assert first.headers["apns-expiration"] == str(int(START.timestamp()) + 3600)
        assert first.headers["apns-collapse-id"] == "offers"
        assert first.headers["apns-id"] == messages[0].message_id
        claims = jwt.decode(stub.tokens_seen[0], apns_key.public_key(), algorithms=["ES256"])
        assert claims == {"iss": TEAM_ID, "iat": int(START.timestamp())}
        assert first.json() == {
            "aps": {
                "alert": {"title": "Sale", "body": "50% off"},
                "sound": "default",
                "badge": 3,
                "category": "OFFER",
                "thread-id": "offers",
            },
            "offer": "42",
            "data": {
                "pinpoint": {
                    "CampaignId": "c1",
                    "TreatmentId": "0",
                    "ActivityId": "run-1",
                    # where Pinpoint's iOS SDKs find the campaign to record the open against
                    "campaign": {"campaign_id": "c1", "treatment_id": "0", "campaign_activity_id": "run-1"},
                    "deeplink": "app://offers/42",
                }
            },
        }

    run(scenario)


def test_apns_silent_voip_and_raw_payloads(
    ca: trustme.CA, ca_file: str, apns_key: Any, outbound: OutboundClient
) -> None:
    stub = apns_stub(apns_key)

    async def scenario() -> None:
        async with h2_stub(ca, stub) as (_, url):
            settings = apns_settings(url, ca_file)
            transport = apns.open_transport(settings, token_channel(apns_key), outbound, FixedClock(START))
            silent = await transport.send(push(device(), PushContent(silent_push=True, data={"sync": "1"})))
            raw = await transport.send(push(device(), PushContent(raw_content='{"aps":{"alert":"raw"},"x":1}')))
            media = await transport.send(push(device(), PushContent(body="pic", media_url="https://m/p.jpg")))
            await transport.close()
            voip_stub_topic = stub.topic
            stub.topic = BUNDLE + ".voip"
            voip_transport = apns.open_transport(
                settings, token_channel(apns_key, "APNS_VOIP"), outbound, FixedClock(START)
            )
            voip = await voip_transport.send(push(device(), PushContent(body="ring")))
            await voip_transport.close()
            stub.topic = voip_stub_topic
        assert {silent.status, raw.status, media.status, voip.status} == {DeliveryStatus.SUCCESSFUL}

    run(scenario)
    silent, raw, media, voip = stub.delivered
    assert silent.headers["apns-push-type"] == "background"
    assert silent.headers["apns-priority"] == "5"  # Apple requires 5 for background pushes
    assert silent.json() == {"aps": {"content-available": 1}, "sync": "1"}
    assert raw.body == b'{"aps":{"alert":"raw"},"x":1}'
    assert media.json()["aps"] == {"alert": {"body": "pic"}, "mutable-content": 1}
    assert media.json()["data"] == {"media-url": "https://m/p.jpg"}
    assert voip.headers["apns-push-type"] == "voip"
    assert voip.headers["apns-topic"] == BUNDLE + ".voip"


def test_apns_provider_token_refreshes_by_age_and_on_expired_provider_token(
    ca: trustme.CA, ca_file: str, apns_key: Any, outbound: OutboundClient
) -> None:
    stub = apns_stub(apns_key)
    clock = FixedClock(START)

    async def scenario() -> list[Any]:
        async with h2_stub(ca, stub) as (_, url):
            transport = apns.open_transport(apns_settings(url, ca_file), token_channel(apns_key), outbound, clock)
            signer = transport.signer
            results = [await transport.send(push(device()))]
            clock.at = START + timedelta(minutes=49)
            results.append(await transport.send(push(device())))
            assert signer.signed == 1  # still young enough
            clock.at = START + timedelta(minutes=50)
            results.append(await transport.send(push(device())))
            assert signer.signed == 2  # refreshed before Apple's hour is up
            stub.expired_tokens.add(stub.tokens_seen[-1])
            results.append(await transport.send(push(device())))
            assert signer.signed == 3  # re-signed at once after ExpiredProviderToken, and the send retried
            await transport.close()
            return results

    results = run(scenario)
    assert [result.status for result in results] == [DeliveryStatus.SUCCESSFUL] * 4
    assert len(stub.delivered) == 4
    assert len(set(stub.tokens_seen)) == 3
    assert jwt.decode(stub.tokens_seen[-1], apns_key.public_key(), algorithms=["ES256"])["iat"] == int(
        (START + timedelta(minutes=50)).timestamp()
    )


def test_apns_sends_a_batch_at_once_each_with_its_own_id_and_one_provider_token(
    ca: trustme.CA, ca_file: str, apns_key: Any, outbound: OutboundClient
) -> None:
    """A campaign batch goes to APNs as one `send_many` on `post_many`: every notification with its own path and
    apns-id, one provider token for all; a token Apple calls expired is signed anew once and only the refused go
    again; a bad device token costs its own message only."""
    stub = apns_stub(apns_key)
    clock = FixedClock(START)

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        async with h2_stub(ca, stub) as (_, url):
            transport = apns.open_transport(apns_settings(url, ca_file), token_channel(apns_key), outbound, clock)
            content = PushContent(title="Sale", body="now")
            first = [push(device(), content, CampaignId="c1") for _ in range(4)]
            first[1] = push("not-a-token", content)
            results = await transport.send_many(first)
            stub.expired_tokens.add(stub.tokens_seen[-1])
            second = [push(device(), content) for _ in range(3)]
            again = await transport.send_many(second)
            assert transport.signer.signed == 2
            await transport.close()
            return first, results, again

    first, results, again = run(scenario)
    assert [result.status for result in results] == [
        DeliveryStatus.SUCCESSFUL,
        DeliveryStatus.PERMANENT_FAILURE,
        DeliveryStatus.SUCCESSFUL,
        DeliveryStatus.SUCCESSFUL,
    ]
    assert "BadDeviceToken" in results[1].message
    assert [result.status for result in again] == [DeliveryStatus.SUCCESSFUL] * 3
    delivered = stub.delivered
    assert len(delivered) == 6  # the three refused with the expired token are not counted as delivered
    sent = [message for n, message in enumerate(first) if n != 1]
    assert sorted((d.path, d.headers["apns-id"]) for d in delivered[:3]) == sorted(
        (f"/3/device/{m.address}", m.message_id) for m in sent
    )
    assert [r.provider_message_id for r in results if r.status is DeliveryStatus.SUCCESSFUL] == [
        m.message_id for m in sent
    ]
    assert all(d.json()["aps"]["alert"] == {"title": "Sale", "body": "now"} for d in delivered)
    assert len(set(stub.tokens_seen[:3])) == 1


def apple_style_certificate(issuer: trustme.CA) -> tuple[str, str]:
    """A client certificate shaped like Apple's: the bundle id in the subject UID, signed by `issuer`."""
    issuer_key = serialization.load_pem_private_key(issuer.private_key_pem.bytes(), password=None)
    issuer_cert = x509.load_pem_x509_certificate(issuer.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, BUNDLE),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {BUNDLE}"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), pem(key)


def test_apns_certificate_auth_presents_the_channel_certificate(
    ca: trustme.CA, ca_file: str, outbound: OutboundClient
) -> None:
    stub = ApnsStub(topic=BUNDLE)  # no provider token: TLS checks the client
    client_ca = trustme.CA()
    certificate, private_key = apple_style_certificate(client_ca)
    # No BundleId: the topic comes from the certificate's UID, as with Apple's certificates.
    channel = {"Platform": "APNS_SANDBOX", "Certificate": certificate, "PrivateKey": private_key}

    async def scenario() -> tuple[Any, Any]:
        context = server_context(ca.issue_cert("localhost"), client_ca=client_ca)
        stub_server = H2Stub(stub, context)
        url = await stub_server.start()
        try:
            settings = DeliverySettings.model_validate(
                {"push": {"apns_sandbox_url": url, "apns_url": "https://production.invalid", "ca_file": ca_file}}
            )
            transport = apns.open_transport(settings, channel, outbound, FixedClock(START))
            accepted = await transport.send(push(device()))
            await transport.close()
            anonymous = apns.open_transport(
                settings, {**channel, "Certificate": None, "PrivateKey": None}, outbound, FixedClock(START)
            )
            return accepted, await anonymous.send(push(device()))
        finally:
            await stub_server.close()

    accepted, anonymous = run(scenario)
    assert accepted.status == DeliveryStatus.SUCCESSFUL
    request = stub.delivered[0]
    assert "authorization" not in request.headers
    assert request.headers["apns-topic"] == BUNDLE
    assert request.peer_certificate is not None
    assert (("userId", BUNDLE),) in request.peer_certificate["subject"]
    assert anonymous.status == DeliveryStatus.PERMANENT_FAILURE
    assert "neither a token key nor a Certificate" in anonymous.message


def test_apns_answers_map_to_pinpoint_statuses(
    ca: trustme.CA, ca_file: str, apns_key: Any, outbound: OutboundClient
) -> None:
    stub = apns_stub(apns_key)

    async def scenario() -> dict[str, Any]:
        async with h2_stub(ca, stub) as (_, url):
            transport = apns.open_transport(
                apns_settings(url, ca_file), token_channel(apns_key), outbound, FixedClock(START)
            )
            results = {prefix: await transport.send(push(device(prefix))) for prefix in ("410", "400", "429", "503")}
            results["not-hex"] = await transport.send(push("not a token"))
            await transport.close()
            return results

    results = run(scenario)
    assert (results["410"].status, results["410"].status_code) == (DeliveryStatus.PERMANENT_FAILURE, 410)
    assert "Unregistered" in results["410"].message
    assert (results["400"].status, results["400"].message) == (
        DeliveryStatus.PERMANENT_FAILURE,
        "APNs 400 BadDeviceToken",
    )
    assert (results["429"].status, results["429"].status_code) == (DeliveryStatus.THROTTLED, 429)
    assert (results["503"].status, results["503"].status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 503)
    assert results["not-hex"].status == DeliveryStatus.PERMANENT_FAILURE
    assert len(stub.delivered) == 0


def test_many_concurrent_streams_stay_within_the_server_limit_on_few_connections(
    ca: trustme.CA, ca_file: str, apns_key: Any, outbound: OutboundClient
) -> None:
    stub = apns_stub(apns_key)
    servers: list[H2Stub] = []

    async def held_until_the_limit_is_open(request: Any) -> StubResponse:
        """Answers wait until the server has seen its limit of streams open at once (or 30 s), so the streams
        overlap fully however busy the machine is."""
        deadline = asyncio.get_running_loop().time() + 30
        while servers[0].peak_concurrent_streams < 40 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        return await stub(request)

    async def scenario() -> tuple[list[Any], H2Stub]:
        async with h2_stub(ca, held_until_the_limit_is_open, max_concurrent_streams=40) as (server, url):
            servers.append(server)
            transport = apns.open_transport(
                apns_settings(url, ca_file), token_channel(apns_key), outbound, FixedClock(START)
            )
            results = await asyncio.gather(*(transport.send(push(device())) for _ in range(200)))
            await transport.close()
            return results, server

    results, server = run(scenario)
    assert [result for result in results if result.status != DeliveryStatus.SUCCESSFUL] == []
    # libcurl multiplexes up to the server's limit on a connection and opens another for the streams beyond it.
    assert server.connections <= 200 // 40
    assert server.peak_concurrent_streams == 40  # as many as allowed on a connection, never more
    assert len(stub.delivered) == 200


def test_goaway_mid_flight_retries_unprocessed_streams_on_a_new_connection_exactly_once(
    ca: trustme.CA, ca_file: str, apns_key: Any, outbound: OutboundClient
) -> None:
    stub = apns_stub(apns_key)
    stub.delay = 0.02

    async def scenario() -> tuple[list[Any], list[Outbound], H2Stub]:
        async with h2_stub(ca, stub, goaway_after=10) as (server, url):
            transport = apns.open_transport(
                apns_settings(url, ca_file), token_channel(apns_key), outbound, FixedClock(START)
            )
            messages = [push(device()) for _ in range(60)]
            results = await asyncio.gather(*(transport.send(message) for message in messages))
            await transport.close()
            return results, messages, server

    results, messages, server = run(scenario)
    assert server.goaway_sent
    assert [result for result in results if result.status != DeliveryStatus.SUCCESSFUL] == []
    delivered = [request.path.removeprefix("/3/device/") for request in stub.delivered]
    assert sorted(delivered) == sorted(message.address for message in messages)  # each exactly once
    by_connection = [request.connection for request in stub.delivered]
    assert by_connection.count(1) == 10  # answered after the GOAWAY on the old connection
    assert by_connection.count(2) == 50
    assert server.connections == 2


def test_a_provider_that_does_not_answer_in_time_is_a_temporary_failure_and_the_next_send_goes_on(
    ca: trustme.CA, ca_file: str, apns_key: Any, outbound: OutboundClient
) -> None:
    stub = apns_stub(apns_key)

    async def slow_then_fast(request: Any) -> Any:
        if not request.path.endswith("f" * 8):
            await asyncio.sleep(5)  # never answered in time
        return await stub(request)

    async def scenario() -> tuple[Any, Any]:
        async with h2_stub(ca, slow_then_fast) as (_, url):
            settings = DeliverySettings.model_validate(
                {"push": {"apns_url": url, "ca_file": ca_file, "request_timeout": 0.3}}
            )
            transport = apns.open_transport(settings, token_channel(apns_key), outbound, FixedClock(START))
            late = await transport.send(push(device("0")))
            on_time = await transport.send(push("f" * 64))
            return late, on_time

    late, on_time = run(scenario)
    assert (late.status, late.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 504)
    assert late.message == "APNs: localhost did not answer within 0.3s"
    assert on_time.status == DeliveryStatus.SUCCESSFUL


# --- FCM ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def google_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_json(key: rsa.RSAPrivateKey) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "clarion-test",
            "private_key_id": "key-1",
            "private_key": pem(key),
            "client_email": "push@clarion-test.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


@asynccontextmanager
async def fcm_world(
    ca: trustme.CA, ca_file: str, key: rsa.RSAPrivateKey, clock: FixedClock, outbound: OutboundClient
) -> AsyncIterator[tuple[Any, FcmStub, OAuthStub]]:
    fcm_stub = FcmStub("clarion-test")
    oauth = OAuthStub(key.public_key(), fcm_stub)
    async with oauth_server(oauth) as token_uri, h2_stub(ca, fcm_stub) as (_, url):
        settings = DeliverySettings.model_validate(
            {"push": {"fcm_url": url, "fcm_token_uri": token_uri, "ca_file": ca_file}}
        )
        transport = fcm.open_transport(settings, {"Platform": "GCM", "ServiceJson": service_json(key)}, outbound, clock)
        try:
            yield transport, fcm_stub, oauth
        finally:
            await transport.close()


def test_fcm_sends_v1_messages_with_a_cached_oauth_token(
    ca: trustme.CA, ca_file: str, google_key: Any, outbound: OutboundClient
) -> None:
    clock = FixedClock(START)

    async def scenario() -> tuple[list[Any], FcmStub, OAuthStub]:
        async with fcm_world(ca, ca_file, google_key, clock, outbound) as (transport, fcm_stub, oauth):
            content = PushContent(
                title="Hi",
                body="There",
                image_url="https://img/x.png",
                sound="chime",
                icon_reference="ic_stat",
                data={"k": "v"},
                action="URL",
                url="https://example.com",
                priority="high",
                time_to_live=600,
                collapse_key="news",
                restricted_package_name="com.example.app",
            )
            campaign = {"CampaignId": "c9", "TreatmentId": "1", "ActivityId": "run-9"}
            results = [await transport.send(push("device-a", content, "GCM", **campaign))]
            results.append(await transport.send(push("device-b", PushContent(silent_push=True, data={"s": "1"}))))
            results.append(
                await transport.send(push("device-c", PushContent(raw_content='{"message":{"data":{"r":"1"}}}')))
            )
            return results, fcm_stub, oauth

    results, fcm_stub, oauth = run(scenario)
    assert [result.status for result in results] == [DeliveryStatus.SUCCESSFUL] * 3
    assert results[0].provider_message_id.startswith("projects/clarion-test/messages/")
    assert len(oauth.issued) == 1  # one token for all three sends
    assertion = oauth.assertions[0]
    assert assertion["iss"] == "push@clarion-test.iam.gserviceaccount.com"
    assert assertion["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert assertion["kid"] == "key-1"
    assert assertion["exp"] - assertion["iat"] == 3600
    first, silent, raw = fcm_stub.delivered
    assert first.headers["authorization"] == "Bearer ya29.test-0"
    assert first.json() == {
        "message": {
            "token": "device-a",
            "notification": {"title": "Hi", "body": "There", "image": "https://img/x.png"},
            "data": {
                "k": "v",
                "pinpoint.url": "https://example.com",
                "pinpoint.CampaignId": "c9",
                "pinpoint.TreatmentId": "1",
                "pinpoint.ActivityId": "run-9",
                # Amplify Android takes a push for Pinpoint's, and records its open, only with these
                "pinpoint.campaign.campaign_id": "c9",
                "pinpoint.campaign.treatment_id": "1",
                "pinpoint.campaign.campaign_activity_id": "run-9",
            },
            "android": {
                "notification": {"icon": "ic_stat", "sound": "chime"},
                "priority": "HIGH",
                "ttl": "600s",
                "collapse_key": "news",
                "restricted_package_name": "com.example.app",
            },
        }
    }
    assert silent.json() == {"message": {"token": "device-b", "data": {"s": "1"}}}
    assert raw.json() == {"message": {"data": {"r": "1"}, "token": "device-c"}}


def test_fcm_token_refreshed_on_expiry_and_on_401(
    ca: trustme.CA, ca_file: str, google_key: Any, outbound: OutboundClient
) -> None:
    clock = FixedClock(START)

    async def scenario() -> tuple[list[Any], FcmStub, OAuthStub]:
        async with fcm_world(ca, ca_file, google_key, clock, outbound) as (transport, fcm_stub, oauth):
            results = [await transport.send(push("d1", channel="GCM"))]
            clock.at = START + timedelta(minutes=58)
            results.append(await transport.send(push("d2", channel="GCM")))
            assert len(oauth.issued) == 1
            clock.at = START + timedelta(minutes=59, seconds=1)  # within a minute of expiry: fetch anew
            results.append(await transport.send(push("d3", channel="GCM")))
            assert len(oauth.issued) == 2
            fcm_stub.valid_tokens.clear()  # revoked: FCM answers 401 UNAUTHENTICATED
            results.append(await transport.send(push("d4", channel="GCM")))
            return results, fcm_stub, oauth

    results, fcm_stub, oauth = run(scenario)
    assert [result.status for result in results] == [DeliveryStatus.SUCCESSFUL] * 4
    assert len(oauth.issued) == 3
    assert fcm_stub.unauthorized == 1
    assert fcm_stub.delivered[-1].headers["authorization"] == "Bearer ya29.test-2"


def test_fcm_sends_a_batch_at_once_with_one_token_and_resends_only_what_a_revoked_token_lost(
    ca: trustme.CA, ca_file: str, google_key: Any, outbound: OutboundClient
) -> None:
    """A campaign batch goes out as one `send_many`: one token, every message its own result in order; a token
    revoked mid-way costs one fetch and one more try of the messages FCM refused, not of the batch's others."""

    async def scenario() -> tuple[list[Any], list[Any], FcmStub, OAuthStub]:
        async with fcm_world(ca, ca_file, google_key, FixedClock(START), outbound) as (transport, fcm_stub, oauth):
            tokens = ["ok-0", "unregistered-1", "ok-2", "quota-3", "ok-4"]
            first = await transport.send_many([push(token, channel="GCM") for token in tokens])
            fcm_stub.valid_tokens.clear()  # revoked: each post of the next batch is answered 401
            second = await transport.send_many([push(f"again-{n}", channel="GCM") for n in range(3)])
            return first, second, fcm_stub, oauth

    first, second, fcm_stub, oauth = run(scenario)
    assert [result.status for result in first] == [
        DeliveryStatus.SUCCESSFUL,
        DeliveryStatus.PERMANENT_FAILURE,
        DeliveryStatus.SUCCESSFUL,
        DeliveryStatus.THROTTLED,
        DeliveryStatus.SUCCESSFUL,
    ]
    assert first[3].retry_after == 30.0 and "UNREGISTERED" in first[1].message
    assert all(result.provider_message_id.startswith("projects/clarion-test/messages/") for result in first[::2])
    assert [result.status for result in second] == [DeliveryStatus.SUCCESSFUL] * 3
    assert len(oauth.issued) == 2 and fcm_stub.unauthorized == 3
    delivered = [
        (request.json()["message"]["token"], request.headers["authorization"]) for request in fcm_stub.delivered
    ]
    assert sorted(delivered) == sorted(
        [(f"ok-{n}", "Bearer ya29.test-0") for n in (0, 2, 4)]
        + [(f"again-{n}", "Bearer ya29.test-1") for n in range(3)]
    )


def test_a_journey_push_names_its_journey_where_the_sdks_look() -> None:
    """FCM data values are strings, so the journey is a JSON object in `pinpoint.journey`; APNs nests it under
    `data.pinpoint.journey`. A direct send names neither a campaign nor a journey."""
    context = {
        "journey_id": "j1",
        "journey_run_id": "r1",
        "journey_activity_id": "push-1",
        "journey_activity_type": "PUSH",
    }
    journey = {"journey_id": "j1", "journey_run_id": "r1", "journey_activity_id": "push-1"}
    content = PushContent(title="Hi", body="There")
    data = fcm.fcm_message("token", content, context)["message"]["data"]
    assert json.loads(data["pinpoint.journey"]) == journey
    assert not any(key.startswith("pinpoint.campaign.") for key in data)
    assert json.loads(apns.apns_payload(content, context))["data"]["pinpoint"]["journey"] == journey
    assert "data" not in fcm.fcm_message("token", content, {})["message"]
    assert "data" not in json.loads(apns.apns_payload(content, {}))


def test_fcm_batch_bodies_encoded_once_are_each_messages_own_encoding() -> None:
    """A batch sharing one content and context encodes its body once and puts each token in: the bytes are what
    the message encoded alone gives, whatever the token holds; RawContent and a body holding the mark are encoded
    whole."""
    shared = PushContent(title="Hi \u2028", body='"quoted"', data={"k": "v"}, action="OPEN_APP")
    context = {"CampaignId": "c1", "odd": "\u00e9"}
    contents = [shared, PushContent(body="mark", data={"m": "\x00clarion-fcm-token\x00"})]
    contents.append(PushContent(raw_content='{"data": {"a": "b"}}'))
    bodies = fcm._Bodies()
    for content in contents:
        for token in ("plain", 'with "quotes"', "\u00fcnicode\u2028", "back\\slash"):
            expected = msgspec.json.encode(fcm.fcm_message(token, content, context))
            assert bodies.body(token, content, context) == expected
    assert json.loads(bodies.body("t", shared, context))["message"]["token"] == "t"


def test_fcm_errors_map_to_pinpoint_statuses(
    ca: trustme.CA, ca_file: str, google_key: Any, outbound: OutboundClient
) -> None:
    async def scenario() -> dict[str, Any]:
        async with fcm_world(ca, ca_file, google_key, FixedClock(START), outbound) as (transport, _, _):
            return {
                prefix: await transport.send(push(prefix + "-token", channel="GCM"))
                for prefix in ("unregistered", "invalid", "quota", "unavailable")
            }

    results = run(scenario)
    assert (results["unregistered"].status, results["unregistered"].status_code) == (
        DeliveryStatus.PERMANENT_FAILURE,
        404,
    )
    assert "UNREGISTERED" in results["unregistered"].message
    assert results["invalid"].status == DeliveryStatus.PERMANENT_FAILURE
    assert (results["quota"].status, results["quota"].retry_after) == (DeliveryStatus.THROTTLED, 30.0)
    assert results["unavailable"].status == DeliveryStatus.TEMPORARY_FAILURE


def test_gcm_channel_with_only_a_legacy_api_key_fails_permanently_with_advice(outbound: OutboundClient) -> None:
    transport = OPENERS["GCM"](DeliverySettings(), {"Platform": "GCM", "ApiKey": "AIzaLegacy"}, outbound)
    result = run(lambda: transport.send(push("token", channel="GCM")))
    assert result.status == DeliveryStatus.PERMANENT_FAILURE
    assert "ServiceJson" in result.message and "shut down" in result.message
    broken = OPENERS["GCM"](DeliverySettings(), {"Platform": "GCM", "ServiceJson": '{"project_id": "p"}'}, outbound)
    assert "lacks client_email, private_key" in run(lambda: broken.send(push("t", channel="GCM"))).message


# --- Custom channel webhooks --------------------------------------------------------------------------------------


def local_webhooks() -> OutboundClient:
    """The receivers run on 127.0.0.1, which tenant URLs reach only where the operator allows it."""
    return OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))


def test_webhook_is_signed_and_retried_until_it_succeeds() -> None:
    secret = "whsec-test"
    received: list[tuple[dict[str, str], bytes]] = []
    answers = [503, 429, 200]
    clock = FixedClock(START)
    sleeps: list[float] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=answers[len(received) - 1], text="ok")

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def scenario() -> Any:
        app = web.Application()
        app.router.add_post("/hook", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        settings = DeliverySettings.model_validate({"webhook": {"signing_secret": secret, "backoff_base": 0.5}})
        outbound = local_webhooks()
        transport = custom.WebhookTransport(settings.webhook, outbound, clock, sleep=record_sleep)
        message = Outbound(
            channel="CUSTOM",
            address=f"http://127.0.0.1:{port}/hook",
            message_id="msg-1",
            app_id="app1",
            content=CustomContent(data="hello", endpoint={"ChannelType": "CUSTOM", "Address": "user-7"}),
            endpoint_id="endpoint-7",
            context={"CampaignId": "camp", "TreatmentId": "0", "Other": "x"},
        )
        try:
            return await transport.send(message)
        finally:
            await transport.close()
            await outbound.close()
            await runner.cleanup()

    result = run(scenario)
    assert result.status == DeliveryStatus.SUCCESSFUL
    assert len(received) == 3
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0  # full jitter, doubling
    for headers, body in received:
        timestamp, signature = (part.split("=", 1)[1] for part in headers["X-Clarion-Signature"].split(","))
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected)
        assert int(timestamp) == int(START.timestamp())
        assert headers["X-Clarion-Message-Id"] == "msg-1"
    assert json.loads(received[0][1]) == {
        "Message": {},
        "Data": "hello",
        "ApplicationId": "app1",
        "CampaignId": "camp",
        "TreatmentId": "0",
        "Endpoints": {"endpoint-7": {"ChannelType": "CUSTOM", "Address": "user-7"}},
    }


def test_webhook_gives_up_on_client_errors_and_bounds_retries() -> None:
    calls: list[int] = []

    async def receive(request: web.Request) -> web.Response:
        calls.append(1)
        return web.Response(status=400 if request.path == "/bad" else 500)

    async def no_sleep(seconds: float) -> None:
        return None

    async def scenario() -> tuple[Any, Any, Any]:
        app = web.Application()
        app.router.add_post("/bad", receive)
        app.router.add_post("/down", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        settings = DeliverySettings.model_validate({"webhook": {"max_attempts": 3}})
        outbound = local_webhooks()
        transport = custom.WebhookTransport(settings.webhook, outbound, FixedClock(START), sleep=no_sleep)

        def to(url: str) -> Outbound:
            return Outbound("CUSTOM", url, "m", "app1", CustomContent("d"), endpoint_id="e")

        try:
            bad = await transport.send(to(f"http://127.0.0.1:{port}/bad"))
            down = await transport.send(to(f"http://127.0.0.1:{port}/down"))
            arn = await transport.send(to("arn:aws:lambda:us-east-1:123:function:f"))
            return bad, down, arn
        finally:
            await transport.close()
            await outbound.close()
            await runner.cleanup()

    bad, down, arn = run(scenario)
    assert (bad.status, bad.status_code) == (DeliveryStatus.PERMANENT_FAILURE, 400)
    assert (down.status, down.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 500)
    assert len(calls) == 1 + 3
    assert arn.status == DeliveryStatus.PERMANENT_FAILURE and "Lambda" in arn.message


def test_bodies_larger_than_the_http2_flow_control_window_go_whole(
    ca: trustme.CA, ca_file: str, outbound: OutboundClient
) -> None:
    async def measure(request: Any) -> Any:
        return StubResponse(200, {"x-length": str(len(request.body))}, hashlib.sha256(request.body).digest())

    bodies = [bytes([n]) * (200_000 + n) for n in range(4)]  # each over the 65,535-byte initial window

    async def scenario() -> list[Any]:
        async with h2_stub(ca, measure) as (_, url):
            tls = Tls(ca_file=ca_file)
            return await asyncio.gather(
                *(
                    outbound.request("POST", f"{url}/big", body=body, timeout=30, max_bytes=1000, tls=tls)
                    for body in bodies
                )
            )

    responses = run(scenario)
    assert [response.headers["x-length"] for response in responses] == [str(len(body)) for body in bodies]
    assert [response.body for response in responses] == [hashlib.sha256(body).digest() for body in bodies]
