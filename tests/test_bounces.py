"""Bounces and complaints by mail: messages go out through a real SMTP relay (aiosmtpd) with a VERP return path,
and reports come back over real SMTP to Clarion's bounce listener, as a mail server would hand them on.

DSN (RFC 3464) and ARF (RFC 5965) reports are written as mail servers and mailbox providers write them. Every test
runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import urllib3
from conftest import RunningServer, free_port
from smtp_relay import Relay

from clarion.channels.config import BounceSettings, DeliverySettings, SmtpSettings
from clarion.channels.email.feedback import parse
from clarion.config import Settings
from clarion.store import events as event_store

BOUNCE_DOMAIN = "bounces.example.com"


@pytest.fixture
def mail_server(migrated_settings: Settings, relay: tuple[Relay, int]) -> Iterator[RunningServer]:
    _, port = relay
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none", return_path_domain=BOUNCE_DOMAIN)
    bounces = BounceSettings(port=free_port())
    tuned = migrated_settings.model_copy(update={"delivery": DeliverySettings(smtp=smtp, bounces=bounces)})
    with RunningServer(tuned) as running:
        yield running


def send_to(server: RunningServer, relay: Relay, address: str) -> tuple[str, str, str]:
    """A project with one email endpoint, and one message sent to it: (project, message id, envelope sender)."""
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "bounces"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    client.update_endpoint(
        ApplicationId=app_id, EndpointId="e1", EndpointRequest={"ChannelType": "EMAIL", "Address": address}
    )
    request = {
        "Endpoints": {"e1": {}},
        "MessageConfiguration": {
            "EmailMessage": {"SimpleEmail": {"Subject": {"Data": "Hi"}, "TextPart": {"Data": "x"}}}
        },
    }
    result = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]["EndpointResult"]
    assert result["e1"]["DeliveryStatus"] == "SUCCESSFUL"
    [received] = [r for r in relay.received if r.rcpt_tos == [address]]
    return app_id, result["e1"]["MessageId"], received.mail_from


def original_headers(recipient: str, message_id: str) -> str:
    """The headers of the message a report is about, as reports quote them."""
    return f"From: news@example.com\r\nTo: {recipient}\r\nSubject: Hi\r\nMessage-ID: <{message_id}@example.com>\r\n"


def dsn(recipient: str, action: str, status: str, original_message_id: str) -> bytes:
    """A delivery status notification as Postfix writes one."""
    return (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        "To: <placeholder>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n'
        "\r\n"
        "--B1\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--B1\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n"
        "Arrival-Date: Wed, 2 Dec 2026 12:00:00 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <user>: Recipient address rejected: User unknown\r\n"
        "\r\n"
        "--B1\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{original_headers(recipient, original_message_id)}"
        "\r\n"
        "--B1--\r\n"
    ).encode()


def arf(recipient: str, original_message_id: str, feedback_type: str = "abuse") -> bytes:
    """An abuse report as mailbox providers' feedback loops send one, quoting the whole original message."""
    return (
        "From: fbl@mailbox.example.net\r\n"
        "To: complaints@example.com\r\n"
        "Subject: FW: Hi\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F1"\r\n'
        "\r\n"
        "--F1\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "This is an email abuse report.\r\n"
        "--F1\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        f"Feedback-Type: {feedback_type}\r\n"
        "User-Agent: ExampleFBL/1.0\r\n"
        "Version: 1\r\n"
        f"Original-Rcpt-To: {recipient}\r\n"
        "Source-IP: 192.0.2.1\r\n"
        "\r\n"
        "--F1\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        f"{original_headers(recipient, original_message_id)}"
        "\r\n"
        "x\r\n"
        "--F1--\r\n"
    ).encode()


def mail_report(server: RunningServer, to: str, data: bytes) -> tuple[int, bytes]:
    """Hand a report to the bounce listener over SMTP, as the mail server receiving it would; its final reply."""
    port = server.settings.delivery.bounces.port
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("mx.example.org")
        smtp.mail("")  # bounces have the null reverse-path (RFC 5321 §4.5.5)
        smtp.rcpt(to)
        return smtp.data(data)


def events_of(server: RunningServer, app_id: str) -> list[dict[str, Any]]:
    rows = server.run(lambda s: s.db.read(lambda tx: event_store.recent(tx, app_id, 100)))
    return [msgspec.json.decode(row.doc) for row in reversed(rows)]


def opt_out(server: RunningServer, app_id: str) -> str:
    return server.client().get_endpoint(ApplicationId=app_id, EndpointId="e1")["EndpointResponse"]["OptOut"]


def test_a_dsn_bounce_to_the_verp_address_opts_the_address_out(
    mail_server: RunningServer, relay: tuple[Relay, int]
) -> None:
    app_id, message_id, return_path = send_to(mail_server, relay[0], "gone@example.org")
    assert return_path == f"bounce+{message_id}@{BOUNCE_DOMAIN}"
    # The bounce names the message only by where it is sent: its quoted Message-ID is someone else's.
    code, reply = mail_report(mail_server, return_path, dsn("gone@example.org", "failed", "5.1.1", "unrelated"))
    assert code == 250 and b"Recorded" in reply
    assert opt_out(mail_server, app_id) == "ALL"
    metrics = urllib3.request("GET", f"{mail_server.url}/metrics").data.decode()
    assert 'clarion_message_outcomes_total{event_type="_email.hardbounce"} 1.0' in metrics
    bounce = events_of(mail_server, app_id)[-1]
    assert bounce["EventType"] == "_email.hardbounce"
    assert bounce["Attributes"]["message_id"] == message_id and bounce["Attributes"]["status"] == "5.1.1"
    client = mail_server.client()
    request = {"Endpoints": {"e1": {}}, "MessageConfiguration": {"EmailMessage": {"Body": "again"}}}
    again = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]
    assert again["EndpointResult"]["e1"]["DeliveryStatus"] == "OPT_OUT"


def test_a_complaint_finds_its_message_by_message_id_and_opts_out(
    mail_server: RunningServer, relay: tuple[Relay, int]
) -> None:
    app_id, message_id, _ = send_to(mail_server, relay[0], "angry@example.org")
    code, _ = mail_report(mail_server, "complaints@example.com", arf("angry@example.org", message_id))
    assert code == 250
    assert opt_out(mail_server, app_id) == "ALL"
    complaint = events_of(mail_server, app_id)[-1]
    assert complaint["EventType"] == "_email.complaint" and complaint["Attributes"]["feedback_type"] == "abuse"


def test_soft_bounces_delays_and_other_mail_do_not_opt_out(
    mail_server: RunningServer, relay: tuple[Relay, int]
) -> None:
    app_id, message_id, return_path = send_to(mail_server, relay[0], "full@example.org")
    assert mail_report(mail_server, return_path, dsn("full@example.org", "delayed", "4.2.2", message_id))[0] == 250
    assert mail_report(mail_server, return_path, dsn("full@example.org", "failed", "4.2.2", message_id))[0] == 250
    not_spam = arf("full@example.org", message_id, feedback_type="not-spam")
    assert mail_report(mail_server, "complaints@example.com", not_spam)[0] == 250
    unknown = dsn("full@example.org", "failed", "5.1.1", "x")
    code, reply = mail_report(mail_server, f"bounce+never-sent@{BOUNCE_DOMAIN}", unknown)
    assert code == 250 and b"No message sent by Clarion matches" in reply
    plain = b"From: someone@example.net\r\nSubject: hello\r\n\r\nJust a note.\r\n"
    code, reply = mail_report(mail_server, return_path, plain)
    assert code == 250 and b"nothing recorded" in reply
    assert opt_out(mail_server, app_id) == "NONE"
    assert [e["EventType"] for e in events_of(mail_server, app_id)] == ["_email.send", "_email.softbounce"]


def test_reports_name_their_message_by_verp_first_then_by_message_id() -> None:
    report = dsn("a@example.org", "failed", "5.1.1", "quoted-id")
    [by_verp] = parse(report, [f"bounce+verp-id@{BOUNCE_DOMAIN}"])
    [by_header] = parse(report, ["postmaster@example.com"])
    assert (by_verp.message_id, by_header.message_id) == ("verp-id", "quoted-id")
    assert by_verp.opt_out and by_verp.event_type == "_email.hardbounce"
    assert parse(dsn("a@example.org", "failed", "5.1.1", "@"), ["postmaster@example.com"]) == []  # no message named
