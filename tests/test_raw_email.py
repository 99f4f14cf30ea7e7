"""RawEmail in SendMessages and SendUsersMessages: a whole MIME message, through boto3 on both stores, received by a
real SMTP server (tests/smtp_relay.py) and checked byte for byte, DKIM-verified with dkimpy."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import dkim
import pytest
from botocore.exceptions import ClientError
from conftest import RunningServer, running
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from smtp_relay import Relay

from clarion.channels.config import DeliverySettings, DkimSettings, EmailApiSettings, SmtpSettings, TrackingSettings
from clarion.channels.delivery import DeliveryStatus, Outbound, RawEmailContent
from clarion.channels.email.dkim import dns_record
from clarion.channels.email.http_api import SendGridTransport
from clarion.channels.email.raw import MAX_RAW_EMAIL_BYTES, InvalidRawEmail, check_raw_email
from clarion.config import Settings
from clarion.outbound.client import OutboundClient
from clarion.outbound.config import OutboundSettings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

HEAD = [
    b'From: "Shop News" <news@example.com>',
    b"To: Readers <readers@example.com>",
    b"Bcc: secret-list@example.com",
    b"Subject: Your receipt",
    b"Date: Mon, 01 Jan 2001 00:00:00 +0000",
    b"Message-ID: <made-by-the-sender@example.com>",
    b"X-Order: 17",
    b"X-Folded: first part",
    b"\tsecond part",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="b1"',
]
BODY = (
    b"--b1\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Thanks for your order =E2=80=94 {{not a variable}}  \r\n"
    b"--b1\r\n"
    b"Content-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="receipt.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes(bytes(range(256)) * 8).replace(b"\n", b"\r\n") + b"--b1--\r\n"
)
RAW = b"\r\n".join(HEAD) + b"\r\n\r\n" + BODY


@contextmanager
def mail_server(settings: Settings, port: int) -> Iterator[RunningServer]:
    dkim_settings = DkimSettings(domain="example.com", selector="raw", private_key=PEM.decode())
    delivery = DeliverySettings(
        smtp=SmtpSettings(host="127.0.0.1", port=port, security="none", dkim=dkim_settings),
        tracking=TrackingSettings(base_url=f"http://127.0.0.1:{settings.port}", key="raw-tracking-key"),
    )
    with running(settings.model_copy(update={"delivery": delivery})) as server:
        yield server


def new_project(client: Any, endpoint_id: str, **endpoint: Any) -> str:
    """A project with an email channel and one email endpoint."""
    app_id = client.create_app(CreateApplicationRequest={"Name": "raw"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id,
        EmailChannelRequest={"FromAddress": "shop@example.com", "Identity": "example.com", "Enabled": True},
    )
    client.update_endpoint(
        ApplicationId=app_id, EndpointId=endpoint_id, EndpointRequest={"ChannelType": "EMAIL", **endpoint}
    )
    return app_id


def split(data: bytes) -> tuple[list[bytes], bytes]:
    """Header fields (folded lines kept together) and the body of a message as received."""
    head, _, body = data.partition(b"\r\n\r\n")
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields, body


def verifies(data: bytes) -> bool:
    record = dns_record(KEY.public_key()).encode()
    return bool(dkim.verify(data, dnsfunc=lambda name, timeout=5: record))


def test_raw_email_arrives_byte_for_byte_but_for_the_headers_pinpoint_sets(
    settings: Settings, relay: tuple[Relay, int]
) -> None:
    inbox, port = relay
    with mail_server(settings, port) as server:
        client = server.client()
        app_id = new_project(client, "bob", Address="bob@example.com")
        response = client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Addresses": {"ana@example.com": {"ChannelType": "EMAIL", "TitleOverride": "ignored"}},
                "Endpoints": {"bob": {}},
                "MessageConfiguration": {"EmailMessage": {"RawEmail": {"Data": RAW}}},
            },
        )["MessageResponse"]
        ana, bob = response["Result"]["ana@example.com"], response["EndpointResult"]["bob"]
        assert ana["DeliveryStatus"] == bob["DeliveryStatus"] == "SUCCESSFUL"

        received = {item.rcpt_tos[0]: item for item in inbox.received}
        assert set(received) == {"ana@example.com", "bob@example.com"}  # the recipient, never To or Bcc
        for address, result in (("ana@example.com", ana), ("bob@example.com", bob)):
            item = received[address]
            assert item.rcpt_tos == [address]
            assert item.mail_from == "shop@example.com"  # the channel's FromAddress is the envelope sender
            assert verifies(item.data)
            fields, body = split(item.data)
            assert body == BODY  # every byte of the body, {{...}} and trailing blanks included
            assert fields[0].startswith(b"DKIM-Signature:")
            date = next(field for field in fields if field.startswith(b"Date: "))
            assert parsedate_to_datetime(date[6:].decode()).year >= 2026  # replaced by the send time, as SES did
            unsubscribe = fields[-2].decode()
            assert unsubscribe.startswith(f"List-Unsubscribe: <{server.url}/t/u/")
            expected = [
                *HEAD[:2],  # From and To kept as the sender wrote them; Bcc removed
                HEAD[3],
                date,
                f"Message-ID: <{result['MessageId']}@example.com>".encode(),
                HEAD[6],
                HEAD[7] + b"\r\n" + HEAD[8],  # a folded header stays folded
                *HEAD[9:],
                unsubscribe.encode(),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            ]
            assert fields[1:] == expected


def test_raw_email_without_from_gets_the_sender_and_keeps_its_own_unsubscribe(
    settings: Settings, relay: tuple[Relay, int]
) -> None:
    inbox, port = relay
    raw = (
        b"Subject: Hi\nList-Unsubscribe: <mailto:leave@example.com>\nContent-Type: text/plain\n\nplain body\nline two\n"
    )
    with mail_server(settings, port) as server:
        client = server.client()
        app_id = new_project(client, "u1-mail", Address="carl@example.com", User={"UserId": "u1"})
        response = client.send_users_messages(
            ApplicationId=app_id,
            SendUsersMessageRequest={
                "Users": {"u1": {}},
                "MessageConfiguration": {
                    "EmailMessage": {"FromAddress": "Billing <billing@example.com>", "RawEmail": {"Data": raw}}
                },
            },
        )["SendUsersMessageResponse"]
        result = response["Result"]["u1"]["u1-mail"]
        assert result["DeliveryStatus"] == "SUCCESSFUL"
    [item] = inbox.received
    assert item.mail_from == "billing@example.com" and item.rcpt_tos == ["carl@example.com"]
    fields, body = split(item.data)
    assert body == b"plain body\r\nline two\r\n"  # line endings are SMTP's
    assert fields[1] == b"From: Billing <billing@example.com>"
    assert fields[2].startswith(b"Date: ") and fields[3] == f"Message-ID: <{result['MessageId']}@example.com>".encode()
    assert fields[4:] == [b"Subject: Hi", b"List-Unsubscribe: <mailto:leave@example.com>", b"Content-Type: text/plain"]
    assert verifies(item.data)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"Subject: a\r\nSubject: b\r\n\r\nbody", "the subject header appears more than once"),
        (b"Subject: only headers\r\nX-Other: 1", "no empty line between its headers and its body"),
        (b"Subject: long\r\n\r\n" + b"x" * 999, "lines hold at most 998"),
        (b" folded first\r\n\r\nbody", "first header line is a continuation line"),
        (b"Subject: ok\r\nnot a header\r\n\r\nbody", "header line 2 is not a header field"),
    ],
)
def test_a_raw_email_pinpoint_would_refuse_is_refused_naming_the_member(
    client: Any, app_id: str, raw: bytes, reason: str
) -> None:
    with pytest.raises(ClientError) as refused:
        client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Addresses": {"ana@example.com": {"ChannelType": "EMAIL"}},
                "MessageConfiguration": {"EmailMessage": {"RawEmail": {"Data": raw}}},
            },
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "BadRequestException"
    assert "MessageConfiguration.EmailMessage.RawEmail.Data" in error["Message"] and reason in error["Message"]


def test_the_size_limit_is_pinpoints_ten_megabytes() -> None:
    head = b"Subject: big\r\n\r\n"
    line = b"x" * 998 + b"\r\n"
    check_raw_email(head + line * ((MAX_RAW_EMAIL_BYTES - len(head)) // len(line)))
    with pytest.raises(InvalidRawEmail, match="at most 10,485,760"):
        check_raw_email(head + line * (MAX_RAW_EMAIL_BYTES // len(line) + 1))


def test_sendgrid_cannot_carry_a_raw_message() -> None:
    """SendGrid's Mail Send API builds the MIME message itself: a raw message fails without a request being made."""
    settings = EmailApiSettings(provider="sendgrid", api_key="k", base_url="http://127.0.0.1:9")
    transport = SendGridTransport(settings, OutboundClient(OutboundSettings()))
    message = Outbound("EMAIL", "ana@example.com", "m1", "app", RawEmailContent(RAW, "shop@example.com"))
    result = asyncio.run(transport.send(message))
    assert result.status is DeliveryStatus.PERMANENT_FAILURE and "RawEmail" in result.message
