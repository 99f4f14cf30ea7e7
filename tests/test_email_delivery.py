"""Email delivery against real local services: an aiosmtpd relay (plain, STARTTLS with a trustme certificate,
AUTH), a local HTTP server speaking SendGrid's documented v3 contract, signed event webhooks, and the MJML/CSS
step of email templates."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dkim
import msgspec
import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from botocore.exceptions import ClientError
from conftest import RunningServer, free_port
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dkim.canonicalization import CanonicalizationPolicy
from smtp_relay import Relay, start_relay

from clarion.channels.config import DeliverySettings, DkimSettings, EmailApiSettings, SmtpSettings
from clarion.channels.delivery import DeliveryStatus, EmailContent, Outbound
from clarion.channels.email import open_transport as open_email_transport
from clarion.channels.email import sendgrid_events
from clarion.channels.email.dkim import canonical_body, dns_record
from clarion.channels.email.http_api import SendGridTransport
from clarion.channels.email.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from clarion.channels.email.smtp import SmtpTransport, reply_status
from clarion.clock import FixedClock
from clarion.config import Settings
from clarion.errors import BadRequest
from clarion.outbound.client import OutboundClient
from clarion.outbound.config import OutboundSettings
from clarion.store import events as event_store
from clarion.store import templates as template_store
from clarion.templates.email_html import COMPILED_HTML, compile_html, sending_html
from clarion.templates.handlebars import compile_template

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def outbound(address: str = "bob@example.org", message_id: str = "msg-1", **content: Any) -> Outbound:
    values: dict[str, Any] = {
        "from_address": "Clarion News <news@example.com>",
        "subject": "Hello Bob",
        "text": "Hi Bob,\nwelcome.",
        "html": "<p>Hi Bob,<br>welcome.</p>",
    }
    values.update(content)
    return Outbound(
        channel="EMAIL", address=address, message_id=message_id, app_id="app-1", content=EmailContent(**values)
    )


def plain_settings(port: int, **overrides: Any) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, security="none", **overrides)


def send_once(settings: SmtpSettings) -> Any:
    """One message through a fresh transport, closed afterwards: the result."""

    async def send() -> Any:
        transport = SmtpTransport(settings)
        try:
            return await transport.send(outbound())
        finally:
            await transport.close()

    return run(send())


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_message_arrives_with_headers_and_both_parts(relay: tuple[Relay, int]) -> None:
    handler, port = relay
    message = outbound(
        subject="Grüße, Bob",
        html="<p>Grüße</p>",
        reply_to=("help@example.com", "sales@example.com"),
        headers={"X-Campaign": "spring"},
    )

    async def send() -> Any:
        transport = SmtpTransport(plain_settings(port), clock=FixedClock(NOW))
        try:
            return await transport.send(message)
        finally:
            await transport.close()

    result = run(send())
    assert result.status is DeliveryStatus.SUCCESSFUL
    assert result.status_code == 200
    assert result.provider_message_id == "Q1"
    [arrived] = handler.received
    assert arrived.mail_from == "news@example.com"
    assert arrived.rcpt_tos == ["bob@example.org"]
    parsed = parse(arrived.data)
    assert parsed["From"] == "Clarion News <news@example.com>"
    assert parsed["To"] == "bob@example.org"
    assert parsed["Subject"] == "Grüße, Bob"
    assert parsed["Message-ID"] == "<msg-1@example.com>"
    assert parsed["Reply-To"] == "help@example.com, sales@example.com"
    assert parsed["Date"] == "Sun, 29 Nov 2026 12:00:00 +0000"
    assert parsed["X-Campaign"] == "spring"
    assert parsed["List-Unsubscribe"] is None
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert text.get_content().replace("\r\n", "\n") == "Hi Bob,\nwelcome."
    assert html.get_content_type() == "text/html"
    assert html.get_content_charset() == "utf-8"
    assert html.get_content().strip() == "<p>Grüße</p>"


def test_long_non_ascii_lines_round_trip_through_quoted_printable(relay: tuple[Relay, int]) -> None:
    handler, port = relay
    html = "<p>" + "Ünïcode text " * 200 + "</p>"

    async def send() -> None:
        transport = SmtpTransport(plain_settings(port))
        await transport.send(outbound(html=html, text=None))
        await transport.close()

    run(send())
    parsed = parse(handler.received[0].data)
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert all(len(line) <= 78 for line in handler.received[0].data.split(b"\r\n"))
    assert parsed.get_content().strip() == html


def test_one_click_unsubscribe_headers(relay: tuple[Relay, int]) -> None:
    handler, port = relay

    async def send() -> None:
        transport = SmtpTransport(plain_settings(port))
        await transport.send(outbound(unsubscribe_url="https://clarion.example/u/abc?sig=x1"))
        await transport.close()

    run(send())
    parsed = parse(handler.received[0].data)
    assert parsed["List-Unsubscribe"] == "<https://clarion.example/u/abc?sig=x1>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_headers_the_transport_owns_are_refused(relay: tuple[Relay, int]) -> None:
    handler, port = relay

    async def send() -> list[Any]:
        transport = SmtpTransport(plain_settings(port))
        try:
            return [
                await transport.send(outbound(headers={"Message-ID": "<mine@example.com>"})),
                await transport.send(outbound(headers={"X-Evil": "a\r\nBcc: everyone@example.org"})),
                await transport.send(outbound(from_address="news@example.com\r\nBcc: everyone@example.org")),
                await transport.send(outbound(subject="Hello\r\nBcc: everyone@example.org")),
            ]
        finally:
            await transport.close()

    reserved, injected, bad_from, folded_subject = run(send())
    assert reserved.status is DeliveryStatus.PERMANENT_FAILURE and "Message-ID" in reserved.message
    assert injected.status is DeliveryStatus.PERMANENT_FAILURE and "line break" in injected.message
    assert bad_from.status is DeliveryStatus.PERMANENT_FAILURE and "line break" in bad_from.message
    # A line break in a rendered subject becomes a space; it never starts a header of its own.
    assert folded_subject.status is DeliveryStatus.SUCCESSFUL
    [arrived] = handler.received
    assert parse(arrived.data)["Subject"] == "Hello Bcc: everyone@example.org"
    assert parse(arrived.data)["Bcc"] is None


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _send_signed(port: int, dkim_settings: DkimSettings, message: Outbound) -> None:
    async def send() -> None:
        transport = SmtpTransport(plain_settings(port, dkim=dkim_settings))
        result = await transport.send(message)
        await transport.close()
        assert result.status is DeliveryStatus.SUCCESSFUL

    run(send())


def test_dkim_rsa_signature_verifies_with_dkimpy(relay: tuple[Relay, int], tmp_path: Path) -> None:
    handler, port = relay
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = tmp_path / "dkim.pem"
    key_path.write_text(_pem(key))
    record = dns_record(key.public_key()).encode()
    settings = DkimSettings(domain="example.com", selector="mail2026", private_key_path=str(key_path))
    _send_signed(
        port,
        settings,
        outbound(subject="Ça   va?", unsubscribe_url="https://clarion.example/u/1", html="<p>x  </p>\n\n"),
    )
    data = handler.received[0].data
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record

    assert dkim.verify(data, dnsfunc=dns)
    assert looked_up == [b"mail2026._domainkey.example.com."]
    signature = parse(data)["DKIM-Signature"]
    tags = dict(tag.split("=", 1) for tag in "".join(signature.split()).split(";") if tag)
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == ("rsa-sha256", "relaxed/relaxed", "example.com", "mail2026")
    assert tags["h"] == (
        "from:to:subject:date:message-id:mime-version:content-type:list-unsubscribe:list-unsubscribe-post"
    )
    # A changed body or a changed signed header breaks the signature.
    assert not dkim.verify(data.replace(b"<p>x", b"<p>y"), dnsfunc=dns)
    assert not dkim.verify(data.replace(b"Subject: =?utf-8?", b"Subject: =?UTF-8?"), dnsfunc=dns)


def test_dkim_ed25519_signature_verifies_with_dkimpy_canonicalization(relay: tuple[Relay, int]) -> None:
    """dkimpy checks ed25519-sha256 only through PyNaCl, which is not installed: run its own verification steps
    (tag parsing, relaxed canonicalization, header selection, body hash) and check the signature over its
    SHA-256 digest with cryptography, as RFC 8463 and dkimpy's verifier do."""
    handler, port = relay
    key = ed25519.Ed25519PrivateKey.generate()
    settings = DkimSettings(domain="example.com", selector="ed", private_key=_pem(key))
    _send_signed(port, settings, outbound(subject="Ünïcode   subject", html="<p>trailing   </p>\n\n\n"))
    verifier = dkim.DKIM(handler.received[0].data)
    prepared = verifier.verify_headerprep()
    assert prepared
    sig, include_headers, signature_headers = prepared
    assert sig[b"a"] == b"ed25519-sha256" and sig[b"c"] == b"relaxed/relaxed"
    policy = CanonicalizationPolicy.from_c_value(sig[b"c"])
    body_hash = hashlib.sha256(policy.canonicalize_body(verifier.body)).digest()
    assert body_hash == base64.b64decode(b"".join(sig[b"bh"].split()))
    headers_hash = hashlib.sha256()
    headers = policy.canonicalize_headers(verifier.headers)
    dkim.hash_headers(headers_hash, policy, headers, include_headers, signature_headers[0], sig)
    signature = base64.b64decode(b"".join(sig[b"b"].split()))
    key.public_key().verify(signature, headers_hash.digest())  # raises InvalidSignature when wrong
    assert dns_record(key.public_key()).startswith("v=DKIM1; k=ed25519; p=")


def test_pool_reuses_a_few_connections_for_many_messages(relay: tuple[Relay, int]) -> None:
    handler, port = relay

    async def send() -> tuple[list[Any], int]:
        transport = SmtpTransport(plain_settings(port, pool_size=3))
        try:
            results = await asyncio.gather(
                *(transport.send(outbound(f"user{i}@example.org", f"m{i}")) for i in range(60))
            )
            return results, transport.pool.opened
        finally:
            await transport.close()

    results, opened = run(send())
    assert all(result.status is DeliveryStatus.SUCCESSFUL for result in results)
    assert len(handler.received) == 60
    assert handler.connections == opened <= 3
    assert sorted(item.rcpt_tos[0] for item in handler.received) == sorted(f"user{i}@example.org" for i in range(60))


def test_a_connection_the_relay_dropped_is_replaced(relay: tuple[Relay, int]) -> None:
    handler, port = relay

    async def send() -> list[Any]:
        transport = SmtpTransport(plain_settings(port, pool_size=1))
        try:
            first = await transport.send(outbound(message_id="a"))
            for client in transport.pool._idle:  # the connection ends while idle (the relay's idle timeout)
                client.transport.close()  # type: ignore[union-attr]
            await asyncio.sleep(0)  # let the loop see it end
            second = await transport.send(outbound(message_id="b"))
            return [first, second, transport.pool.opened]
        finally:
            await transport.close()

    first, second, opened = run(send())
    assert first.status is second.status is DeliveryStatus.SUCCESSFUL
    assert opened == 2
    assert [parse(item.data)["Message-ID"] for item in handler.received] == ["<a@example.com>", "<b@example.com>"]


class ClosingRelay(Relay):
    """Closes each connection shortly after accepting a message, as a relay with a one-message policy might."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        def close() -> None:
            assert server.transport is not None
            server.transport.close()
            self.closed.set()

        asyncio.get_running_loop().call_later(0.05, close)
        return await super().handle_DATA(server, session, envelope)


def test_a_send_that_meets_a_just_closed_connection_is_retried_once() -> None:
    handler = ClosingRelay()
    controller, port = start_relay(handler)

    async def send() -> list[Any]:
        transport = SmtpTransport(plain_settings(port, pool_size=1))
        try:
            first = await transport.send(outbound(message_id="a"))
            # Block this loop (it must not notice the close) until the relay has closed, so that the next send
            # finds a connection that still looks open and only learns otherwise when it talks.
            assert handler.closed.wait(10)
            time.sleep(0.05)
            second = await transport.send(outbound(message_id="b"))
            return [first, second, transport.pool.opened]
        finally:
            await transport.close()

    try:
        first, second, opened = run(send())
    finally:
        controller.stop()
    assert first.status is second.status is DeliveryStatus.SUCCESSFUL
    assert opened == 2
    assert [parse(item.data)["Message-ID"] for item in handler.received] == ["<a@example.com>", "<b@example.com>"]


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        ("550 5.1.1 <x@example.org>: Recipient address rejected: User unknown", DeliveryStatus.PERMANENT_FAILURE, 550),
        ("450 4.2.0 Mailbox temporarily unavailable", DeliveryStatus.TEMPORARY_FAILURE, 450),
        ("452 4.5.3 Too many recipients", DeliveryStatus.THROTTLED, 452),
        ("451 4.7.1 Greylisted, please try again later", DeliveryStatus.THROTTLED, 451),
        ("451 4.3.0 Local error in processing", DeliveryStatus.TEMPORARY_FAILURE, 451),
        ("554 5.7.1 Message rejected as spam", DeliveryStatus.PERMANENT_FAILURE, 554),
    ],
)
def test_relay_replies_map_to_delivery_statuses(
    relay: tuple[Relay, int], reply: str, status: DeliveryStatus, code: int
) -> None:
    handler, port = relay
    handler.rcpt_replies["refused@example.org"] = reply
    handler.data_replies["late@example.org"] = reply

    async def send() -> list[Any]:
        transport = SmtpTransport(plain_settings(port, pool_size=1))
        try:
            refused = await transport.send(outbound("refused@example.org"))
            late = await transport.send(outbound("late@example.org"))
            fine = await transport.send(outbound("fine@example.org"))
            return [refused, late, fine, transport.pool.opened]
        finally:
            await transport.close()

    refused, late, fine, opened = run(send())
    for result in (refused, late):
        assert result.status is status
        assert result.status_code == code
        assert result.message == reply[4:]
    # A refused recipient does not cost the connection: the next message uses the same one.
    assert fine.status is DeliveryStatus.SUCCESSFUL
    assert opened == 1


def test_421_throttles_and_replaces_the_connection(relay: tuple[Relay, int]) -> None:
    handler, port = relay
    handler.data_replies["busy@example.org"] = "421 4.7.0 Too many messages, slow down"

    async def send() -> list[Any]:
        transport = SmtpTransport(plain_settings(port, pool_size=1))
        try:
            busy = await transport.send(outbound("busy@example.org"))
            fine = await transport.send(outbound("fine@example.org"))
            return [busy, fine, transport.pool.opened]
        finally:
            await transport.close()

    busy, fine, opened = run(send())
    assert (busy.status, busy.status_code) == (DeliveryStatus.THROTTLED, 421)
    assert fine.status is DeliveryStatus.SUCCESSFUL
    assert opened == 2


def test_reply_status_table() -> None:
    assert reply_status(250, "2.0.0 Ok") is DeliveryStatus.SUCCESSFUL
    assert reply_status(421, "4.3.2 Service shutting down") is DeliveryStatus.THROTTLED
    assert reply_status(452, "4.3.1 Insufficient system storage") is DeliveryStatus.TEMPORARY_FAILURE
    assert reply_status(452, "Rate limit exceeded") is DeliveryStatus.THROTTLED
    assert reply_status(553, "5.1.3 Bad address syntax") is DeliveryStatus.PERMANENT_FAILURE
    assert reply_status(199, "odd") is DeliveryStatus.UNKNOWN_FAILURE


def test_unreachable_relay_is_a_temporary_failure() -> None:
    async def send() -> Any:
        transport = SmtpTransport(plain_settings(free_port(), timeout_seconds=5))
        try:
            return await transport.send(outbound())
        finally:
            await transport.close()

    result = run(send())
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE
    assert result.status_code == 503
    assert "SMTP relay unavailable" in result.message


def test_starttls_with_auth(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    seen: list[tuple[str, bytes, bytes, bool]] = []

    def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        seen.append((mechanism, data.login, data.password, session.ssl is not None))
        # handled=False: aiosmtpd answers 235 or 535 itself.
        return AuthResult(success=data.login == b"clarion" and data.password == b"s3cret pass", handled=False)

    handler = Relay()
    controller, port = start_relay(
        handler,
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    base = {"host": "127.0.0.1", "port": port, "security": "starttls", "ca_file": str(ca_file), "username": "clarion"}

    async def send(password: str) -> Any:
        transport = SmtpTransport(SmtpSettings(**base, password=password))
        try:
            return await transport.send(outbound())
        finally:
            await transport.close()

    try:
        accepted = run(send("s3cret pass"))
        refused = run(send("wrong"))
    finally:
        controller.stop()
    assert accepted.status is DeliveryStatus.SUCCESSFUL
    assert len(handler.received) == 1
    assert seen[0][1:] == (b"clarion", b"s3cret pass", True)  # credentials only went over TLS
    assert refused.status is DeliveryStatus.PERMANENT_FAILURE
    assert refused.status_code == 535


def test_starttls_refuses_an_untrusted_certificate() -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(server_context)
    handler = Relay()
    controller, port = start_relay(handler, tls_context=server_context, require_starttls=True)

    try:
        result = send_once(SmtpSettings(host="127.0.0.1", port=port, security="starttls"))
    finally:
        controller.stop()
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE
    assert "CERTIFICATE_VERIFY_FAILED" in result.message
    assert handler.received == []


# --- SendGrid v3 Mail Send -------------------------------------------------------------------------------------

API_KEY = "SG.test-key.abc123"
RESET_AT = int(NOW.timestamp()) + 42


def _sendgrid_errors(status: int, *errors: tuple[str | None, str], headers: dict[str, str] | None = None) -> Any:
    from aiohttp import web

    body = {"errors": [{"field": field_name, "message": text, "help": None} for field_name, text in errors]}
    return web.json_response(body, status=status, headers=headers)


class FakeSendGrid:
    """SendGrid's Mail Send endpoint as documented: checks the request and answers what SendGrid answers. Runs on
    its own thread and loop so that both a test's loop and a Clarion server's loop can reach it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.in_flight = self.most_in_flight = 0  # requests being answered at once
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _mail_send(self, request: Any) -> Any:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)  # long enough for concurrent requests to overlap here
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: Any) -> Any:
        from aiohttp import web

        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _sendgrid_errors(401, (None, "The provided authorization grant is invalid, expired, or revoked"))
        if request.content_type != "application/json":
            return _sendgrid_errors(400, (None, "Content-Type should be application/json."))
        body = await request.json()
        self.requests.append(body)
        problems = []
        if not body.get("from", {}).get("email"):
            problems.append(("from", "The from object must be provided for every email send."))
        personalizations = body.get("personalizations") or []
        if not personalizations or not all(
            p.get("to") and all("email" in t for t in p["to"]) for p in personalizations
        ):
            problems.append(("personalizations", "The personalizations field is required and must have at least one"))
        types = [part.get("type") for part in body.get("content") or []]
        if not types or ("text/html" in types and "text/plain" in types and types.index("text/plain") != 0):
            problems.append(("content", "If present, text/plain content must be first, followed by text/html"))
        if not all(isinstance(v, str) for v in (body.get("custom_args") or {}).values()):
            problems.append(("custom_args", "Custom args values must be strings"))
        if problems:
            return _sendgrid_errors(400, *problems)
        recipient = personalizations[0]["to"][0]["email"]
        if recipient.startswith("limited"):
            limits = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(RESET_AT)}
            return _sendgrid_errors(429, (None, "too many requests"), headers=limits)
        if recipient.startswith("broken"):
            return _sendgrid_errors(500, (None, "An internal server error occurred."))
        return web.Response(status=202, headers={"X-Message-Id": f"sg{len(self.requests)}AbCdEf"})

    def __enter__(self) -> FakeSendGrid:
        from aiohttp import web

        async def start() -> web.AppRunner:
            app = web.Application()
            app.router.add_post("/v3/mail/send", self._mail_send)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            return runner

        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


# The fake listens on loopback, which providers may not reach unless the operator allows it.
LOOPBACK = OutboundSettings(allow_networks=["127.0.0.0/8"])


def api_settings(fake: FakeSendGrid, **overrides: Any) -> EmailApiSettings:
    return EmailApiSettings(**{"provider": "sendgrid", "api_key": API_KEY, "base_url": fake.url, **overrides})


def _send_all(
    settings: EmailApiSettings, messages: list[Outbound], outbound_settings: OutboundSettings = LOOPBACK
) -> list[Any]:
    async def send() -> list[Any]:
        client = OutboundClient(outbound_settings)
        transport = SendGridTransport(settings, client, clock=FixedClock(NOW))
        try:
            return [await transport.send(message) for message in messages]
        finally:
            await transport.close()
            await client.close()

    return run(send())


def test_sendgrid_request_is_the_documented_shape(sendgrid: FakeSendGrid) -> None:
    message = Outbound(
        channel="EMAIL",
        address="bob@example.org",
        message_id="msg-7",
        app_id="app-1",
        context={"order": "o-17"},
        content=EmailContent(
            from_address="Clarion News <news@example.com>",
            subject="Hello Bob",
            text="Hi Bob",
            html="<p>Hi Bob</p>",
            reply_to=("Help Desk <help@example.com>",),
            headers={"X-Campaign": "spring"},
            unsubscribe_url="https://clarion.example/u/1",
        ),
    )
    [result] = _send_all(api_settings(sendgrid), [message])
    assert (result.status, result.status_code, result.provider_message_id) == (
        DeliveryStatus.SUCCESSFUL,
        200,
        "sg1AbCdEf",
    )
    assert sendgrid.requests == [
        {
            "personalizations": [{"to": [{"email": "bob@example.org"}]}],
            "from": {"email": "news@example.com", "name": "Clarion News"},
            "reply_to_list": [{"email": "help@example.com", "name": "Help Desk"}],
            "subject": "Hello Bob",
            "content": [{"type": "text/plain", "value": "Hi Bob"}, {"type": "text/html", "value": "<p>Hi Bob</p>"}],
            "headers": {
                "X-Campaign": "spring",
                "List-Unsubscribe": "<https://clarion.example/u/1>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            "custom_args": {"order": "o-17", "clarion_message_id": "msg-7", "clarion_app_id": "app-1"},
        }
    ]


def test_sendgrid_answers_map_to_delivery_statuses(sendgrid: FakeSendGrid) -> None:
    limited, broken, no_from = _send_all(
        api_settings(sendgrid),
        [outbound("limited@example.org"), outbound("broken@example.org"), outbound(from_address="")],
    )
    assert (limited.status, limited.status_code, limited.retry_after) == (DeliveryStatus.THROTTLED, 429, 42.0)
    assert limited.message == "too many requests"
    assert (broken.status, broken.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 500)
    assert (no_from.status, no_from.status_code) == (DeliveryStatus.PERMANENT_FAILURE, 400)
    assert no_from.message == "from: The from object must be provided for every email send."
    [unauthorized] = _send_all(api_settings(sendgrid, api_key="SG.wrong"), [outbound()])
    assert (unauthorized.status, unauthorized.status_code) == (DeliveryStatus.PERMANENT_FAILURE, 401)
    assert "authorization grant is invalid" in unauthorized.message


def test_sendgrid_unreachable_is_a_temporary_failure() -> None:
    settings = EmailApiSettings(provider="sendgrid", api_key=API_KEY, base_url=f"http://127.0.0.1:{free_port()}")
    [result] = _send_all(settings, [outbound()])
    assert (result.status, result.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 503)


def test_sendgrid_goes_through_the_guarded_client(sendgrid: FakeSendGrid) -> None:
    """The API host is reached like every provider's: an inside address not in outbound.allow_networks is refused
    before anything is sent, and the sends wait their turn under `connections`."""
    [refused] = _send_all(api_settings(sendgrid), [outbound()], OutboundSettings())
    assert (refused.status, refused.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 503)
    assert "127.0.0.1 is" in refused.message and sendgrid.requests == []

    async def concurrently() -> list[Any]:
        client = OutboundClient(LOOPBACK)
        transport = SendGridTransport(api_settings(sendgrid, connections=2), client, clock=FixedClock(NOW))
        try:
            return await asyncio.gather(*(transport.send(outbound(f"u{n}@example.org")) for n in range(20)))
        finally:
            await client.close()

    results = run(concurrently())
    assert [result.status for result in results] == [DeliveryStatus.SUCCESSFUL] * 20
    assert len({result.provider_message_id for result in results}) == 20
    assert sendgrid.most_in_flight == 2


def test_open_transport_follows_the_settings(sendgrid: FakeSendGrid) -> None:
    smtp = DeliverySettings(smtp=SmtpSettings(host="127.0.0.1"), email_api=api_settings(sendgrid))
    client = OutboundClient(LOOPBACK)
    assert isinstance(open_email_transport(smtp, {}, client), SmtpTransport)  # SMTP wins when both are set
    api = DeliverySettings(email_api=api_settings(sendgrid))
    assert isinstance(open_email_transport(api, {}, client), SendGridTransport)
    with pytest.raises(ValueError, match="no email provider"):
        open_email_transport(DeliverySettings(), {}, client)
    with pytest.raises(ValueError, match="needs api_key"):  # refused when the settings load, at startup
        EmailApiSettings(provider="sendgrid")
    with pytest.raises(ValueError, match="exactly one of private_key"):
        DkimSettings(domain="example.com", selector="s1")


# --- SendGrid signed event webhook ------------------------------------------------------------------------------

WEBHOOK_KEY = ec.generate_private_key(ec.SECP256R1())
WEBHOOK_PUBLIC = base64.b64encode(
    WEBHOOK_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


def signed(body: bytes, timestamp: int, key: ec.EllipticCurvePrivateKey = WEBHOOK_KEY) -> dict[str, str]:
    """The headers SendGrid sends: an ECDSA P-256/SHA-256 signature over timestamp + body, base64 DER."""
    signature = key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: str(timestamp)}


EVENTS = [
    {"email": "a@example.org", "timestamp": 1, "event": "processed", "sg_message_id": "sg1AbCdEf.filter-1.0"},
    {
        "email": "a@example.org",
        "event": "delivered",
        "response": "250 OK",
        "sg_message_id": "sg1AbCdEf.filter-1.0",
        "clarion_message_id": "m-1",
    },
    {
        "email": "b@example.org",
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 unknown user",
        "sg_message_id": "sg2XyZ.filter-2.0",
        "clarion_message_id": "m-2",
    },
    {
        "email": "c@example.org",
        "event": "bounce",
        "type": "blocked",
        "status": "4.0.0",
        "reason": "blocked",
        "sg_message_id": "sg3.filter",
        "clarion_message_id": "m-3",
    },
    {"email": "d@example.org", "event": "spamreport", "sg_message_id": "sg4.filter", "clarion_message_id": "m-4"},
    {"email": "e@example.org", "event": "dropped", "reason": "Bounced Address", "sg_message_id": "sg5.filter"},
    {"email": "f@example.org", "event": "open", "sg_message_id": "sg6.filter", "clarion_message_id": "m-6"},
]


def test_webhook_events_become_reports() -> None:
    reports = sendgrid_events.parse(msgspec.json.encode(EVENTS))
    assert [(r.event_type, r.message_id, r.provider_message_id, r.opt_out) for r in reports] == [
        ("_email.delivered", "m-1", "sg1AbCdEf", False),
        ("_email.hardbounce", "m-2", "sg2XyZ", True),
        ("_email.softbounce", "m-3", "sg3", False),
        ("_email.complaint", "m-4", "sg4", True),
        ("_email.rejected", None, "sg5", False),
    ]
    assert all(r.channel == "EMAIL" and r.address is None for r in reports)
    assert reports[1].attributes == {"reason": "550 unknown user", "status": "5.1.1", "type": "bounce"}
    with pytest.raises(sendgrid_events.MalformedEvents):
        sendgrid_events.parse(b'{"event": "delivered"}')


def test_webhook_signature_verification() -> None:
    body = msgspec.json.encode(EVENTS)
    at = int(NOW.timestamp())

    def check(headers: dict[str, str], payload: bytes = body, key: str = WEBHOOK_PUBLIC) -> None:
        sendgrid_events.verify(key, headers, payload, NOW, 600)

    check(signed(body, at))
    check(signed(body, at - 599))
    refusals = {
        "tampered body": lambda: check(signed(body, at), body.replace(b"bounce", b"click")),
        "another key": lambda: check(signed(body, at, ec.generate_private_key(ec.SECP256R1()))),
        "stale": lambda: check(signed(body, at - 601)),
        "timestamp swapped": lambda: check({**signed(body, at), TIMESTAMP_HEADER: str(at - 1)}),
        "unsigned": lambda: check({}),
        "garbage signature": lambda: check({SIGNATURE_HEADER: "bm90IGEgc2ln", TIMESTAMP_HEADER: str(at)}),
        "no key configured": lambda: check(signed(body, at), key=""),
    }
    for name, attempt in refusals.items():
        with pytest.raises(sendgrid_events.WebhookRefused):
            attempt()
            pytest.fail(f"{name} was accepted")


# --- End to end: SendMessages through SendGrid, then its webhook -------------------------------------------------


def test_send_through_sendgrid_and_receive_its_webhook(settings: Settings, sendgrid: FakeSendGrid) -> None:
    delivery = DeliverySettings(
        email_api=api_settings(sendgrid, webhook_public_key=WEBHOOK_PUBLIC, webhook_max_age_seconds=600)
    )
    server = RunningServer(settings.model_copy(update={"delivery": delivery, "outbound": LOOPBACK})).start()
    try:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "mail"})["ApplicationResponse"]["Id"]
        client.update_email_channel(
            ApplicationId=app_id,
            EmailChannelRequest={"FromAddress": "shop@example.com", "Identity": "arn:aws:ses:x:1:identity/example.com"},
        )
        for endpoint_id, address in (("bounces", "gone@example.org"), ("stays", "fine@example.org")):
            client.update_endpoint(
                ApplicationId=app_id,
                EndpointId=endpoint_id,
                EndpointRequest={"ChannelType": "EMAIL", "Address": address},
            )
        response = client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Endpoints": {"bounces": {}, "stays": {}},
                "MessageConfiguration": {
                    "EmailMessage": {"SimpleEmail": {"Subject": {"Data": "Hi"}, "TextPart": {"Data": "Hello"}}}
                },
            },
        )["MessageResponse"]["EndpointResult"]
        assert {key: value["DeliveryStatus"] for key, value in response.items()} == {
            "bounces": "SUCCESSFUL",
            "stays": "SUCCESSFUL",
        }
        sent = {request["personalizations"][0]["to"][0]["email"]: request for request in sendgrid.requests}
        assert sent["gone@example.org"]["from"] == {"email": "shop@example.com"}
        bounced_id = sent["gone@example.org"]["custom_args"]["clarion_message_id"]
        assert bounced_id == response["bounces"]["MessageId"]

        events = [
            {
                "email": "gone@example.org",
                "event": "bounce",
                "type": "bounce",
                "reason": "550 no such user",
                "sg_message_id": "x.filter",
                "clarion_message_id": bounced_id,
            },
            {
                "email": "fine@example.org",
                "event": "delivered",
                "sg_message_id": "y.filter",
                "clarion_message_id": response["stays"]["MessageId"],
            },
        ]
        body = msgspec.json.encode(events)
        url = f"{server.url}/webhooks/email/sendgrid"
        forged = dict(
            signed(body, int(time.time())), **{SIGNATURE_HEADER: signed(b"other", int(time.time()))[SIGNATURE_HEADER]}
        )
        assert post(url, body, forged)[0] == 403
        assert post(url, body, signed(body, int(time.time()))) == (200, b"OK")

        def endpoint(endpoint_id: str) -> dict[str, Any]:
            return client.get_endpoint(ApplicationId=app_id, EndpointId=endpoint_id)["EndpointResponse"]

        assert endpoint("bounces").get("OptOut") == "ALL"  # a hard bounce opts the address out
        assert endpoint("stays").get("OptOut", "NONE") == "NONE"
        rows = server.run(lambda s: s.db.read(lambda tx: event_store.recent(tx, app_id, 20)))
        kinds = sorted((row.endpoint_id, row.event_type) for row in rows)
        assert ("bounces", "_email.hardbounce") in kinds and ("stays", "_email.delivered") in kinds
    finally:
        server.stop()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# --- MJML and CSS inlining of email templates --------------------------------------------------------------------

MJML_TEMPLATE = """<mjml>
  <mj-head><mj-style inline="inline">.headline { color: #c0392b; }</mj-style></mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-text css-class="headline">Hi {{User.UserAttributes.FirstName.[0]}},
        {{#if Attributes.Vip}}thanks for being a VIP{{else}}welcome{{/if}}!</mj-text>
      <mj-button href="{{Attributes.Offer.[0]}}">See the offer</mj-button>
      <mj-text>{{{Attributes.Footer}}} {{User.UserAttributes.[Last Name].[0]}}</mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""
MJML_EXPRESSIONS = [
    "{{User.UserAttributes.FirstName.[0]}}",
    "{{#if Attributes.Vip}}",
    "{{else}}",
    "{{/if}}",
    "{{Attributes.Offer.[0]}}",
    "{{{Attributes.Footer}}}",
    "{{User.UserAttributes.[Last Name].[0]}}",
]


def test_mjml_compiles_and_handlebars_survive() -> None:
    html = compile_html(MJML_TEMPLATE)
    assert html is not None and "<mj-" not in html and "<table" in html
    assert re.findall(r"\{\{\{?.*?\}\}\}?", html) == MJML_EXPRESSIONS
    assert 'href="{{Attributes.Offer.[0]}}"' in html
    rendered = compile_template(html).render(
        {
            "User": {"UserAttributes": {"FirstName": ["Jane"], "Last Name": ["Doe"]}},
            "Attributes": {"Vip": ["yes"], "Offer": ["https://shop.example/o?a=1"], "Footer": "<b>bye</b>"},
        }
    )
    assert "Hi Jane," in rendered and "thanks for being a VIP" in rendered and "<b>bye</b> Doe" in rendered
    assert 'href="https://shop.example/o?a&#x3D;1"' in rendered  # Handlebars escapes = as Handlebars.js does


def test_style_blocks_are_inlined_and_expressions_kept() -> None:
    source = (
        "<html><head><style>p.note { color: #336699; font-weight: bold }</style></head>"
        '<body><p class="note">Dear {{Attributes.Name}}</p><a href="{{Attributes.Link}}">open</a></body></html>'
    )
    html = compile_html(source)
    assert html is not None
    assert re.search(
        r'<p class="note" style="color: #336699;\s*font-weight: bold;?">Dear {{Attributes.Name}}</p>', html
    )
    assert 'href="{{Attributes.Link}}"' in html
    assert compile_html("<p>No styles, {{Name}}</p>") is None  # nothing to do: sent as written


def test_inlining_that_would_move_expressions_is_skipped() -> None:
    # An HTML parser moves text out of a table ("foster parenting"), so inlining this would break the loop.
    source = (
        "<style>td { padding: 4px }</style><table>{{#each Attributes.Rows}}<tr><td>{{this}}</td></tr>{{/each}}</table>"
    )
    assert compile_html(source) is None


def test_mjml_errors_are_refused() -> None:
    with pytest.raises(BadRequest, match="does not compile"):
        compile_html("<mjml><mj-body><mj-section><mj-text>unclosed</mj-section></mj-body></mjml>")
    with pytest.raises(BadRequest, match="does not compile"):  # MJML has no text between head elements
        compile_html("<mjml><mj-head>{{#if a}}<mj-title>t</mj-title>{{/if}}</mj-head><mj-body></mj-body></mjml>")


def test_loops_between_table_cells_are_kept_or_refused() -> None:
    def mjml(style_attributes: str) -> str:
        return (
            f"<mjml><mj-head><mj-style{style_attributes}>td {{ color: red }}</mj-style></mj-head><mj-body>"
            "<mj-section><mj-column><mj-table><tr>{{#each Attributes.Cells}}<td>{{this}}</td>{{/each}}</tr>"
            "</mj-table></mj-column></mj-section></mj-body></mjml>"
        )

    # css-inline would move the loop out of the row: the compiled HTML goes out with its <style> block instead.
    html = compile_html(mjml(""))
    assert html is not None and "<mj-" not in html
    assert "<tr>{{#each Attributes.Cells}}<td>{{this}}</td>{{/each}}</tr>" in html
    assert "td { color: red }" in html
    # mrml's own inlining (inline="inline") moves it: there is nothing correct to send, so the write is refused.
    with pytest.raises(BadRequest, match="Handlebars"):
        compile_html(mjml(' inline="inline"'))


def test_email_templates_store_compiled_html_once_per_version(client: Any, server: RunningServer) -> None:
    client.create_email_template(
        TemplateName="news", EmailTemplateRequest={"Subject": "News", "HtmlPart": MJML_TEMPLATE}
    )
    client.update_email_template(
        TemplateName="news",
        CreateNewVersion=True,
        EmailTemplateRequest={"Subject": "News", "HtmlPart": "<p>plain {{Name}}</p>"},
    )
    first = client.get_email_template(TemplateName="news", Version="1")["EmailTemplateResponse"]
    assert first["HtmlPart"] == MJML_TEMPLATE  # the API returns what was written, never the compiled form
    assert COMPILED_HTML not in first

    def stored(version: int) -> dict[str, Any]:
        def work(tx: Any) -> dict[str, Any]:
            row = template_store.get_version(tx, "news", "EMAIL", version)
            assert row is not None
            return msgspec.json.decode(row.body)

        return server.run(lambda s: s.db.read(work))

    assert sending_html(stored(1)) == compile_html(MJML_TEMPLATE)
    assert COMPILED_HTML not in stored(2) and sending_html(stored(2)) == "<p>plain {{Name}}</p>"
    with pytest.raises(ClientError) as refused:
        client.create_email_template(
            TemplateName="broken", EmailTemplateRequest={"Subject": "x", "HtmlPart": "<mjml><mj-body>"}
        )
    assert refused.value.response["Error"]["Code"] == "BadRequestException"
    assert "MJML" in refused.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),
        (b"\r\n\r\n", b""),
        (b" \r\n", b""),
        (b"a  b \r\n\r\n", b"a b\r\n"),
        (b"x\t \r\n y", b"x\r\n y\r\n"),
        (b"a\r\n\r\nb  ", b"a\r\n\r\nb\r\n"),
    ],
)
def test_relaxed_body_canonicalization(body: bytes, canonical: bytes) -> None:
    assert canonical_body(body) == canonical


def test_implicit_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    handler = Relay()
    controller, port = start_relay(handler, ssl_context=server_context)  # TLS from the first byte (port 465 style)

    try:
        result = send_once(SmtpSettings(host="127.0.0.1", port=port, security="tls", ca_file=str(ca_file)))
    finally:
        controller.stop()
    assert result.status is DeliveryStatus.SUCCESSFUL
    assert parse(handler.received[0].data)["Message-ID"] == "<msg-1@example.com>"


def test_international_addresses_use_smtputf8() -> None:
    handler = Relay()
    controller, port = start_relay(handler)  # aiosmtpd's controller offers SMTPUTF8

    async def send() -> Any:
        transport = SmtpTransport(plain_settings(port))
        try:
            return await transport.send(outbound("jöran@exämple.org", from_address="Bücher <bücher@example.com>"))
        finally:
            await transport.close()

    try:
        result = run(send())
    finally:
        controller.stop()
    assert result.status is DeliveryStatus.SUCCESSFUL
    [arrived] = handler.received
    assert (arrived.mail_from, arrived.rcpt_tos) == ("bücher@example.com", ["jöran@exämple.org"])
    parsed = parse(arrived.data)
    assert parsed["To"] == "jöran@exämple.org"
    assert parsed["From"] == "Bücher <bücher@example.com>"
    assert b"From: =?utf-8?" in arrived.data  # the display name is an encoded word, the address raw UTF-8


def test_international_address_through_a_relay_without_smtputf8() -> None:
    handler = Relay()
    controller, port = start_relay(handler, enable_SMTPUTF8=False)

    async def send() -> Any:
        transport = SmtpTransport(plain_settings(port))
        try:
            return await transport.send(outbound("jöran@exämple.org"))
        finally:
            await transport.close()

    try:
        result = run(send())
    finally:
        controller.stop()
    assert (result.status, result.status_code) == (DeliveryStatus.PERMANENT_FAILURE, 553)
    assert "SMTPUTF8" in result.message
    assert handler.received == []


def test_display_names_with_specials_are_quoted(relay: tuple[Relay, int]) -> None:
    handler, port = relay

    async def send() -> None:
        transport = SmtpTransport(plain_settings(port))
        await transport.send(outbound(reply_to=("Doe, Jane <jane@example.com>", "Zoë <zoe@example.com>")))
        await transport.close()

    run(send())
    data = handler.received[0].data
    assert b'Reply-To: "Doe, Jane" <jane@example.com>, =?utf-8?' in data
    reply_to = parse(data)["Reply-To"].addresses
    assert [(a.display_name, a.addr_spec) for a in reply_to] == [
        ("Doe, Jane", "jane@example.com"),
        ("Zoë", "zoe@example.com"),
    ]
