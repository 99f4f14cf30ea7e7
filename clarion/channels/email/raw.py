"""RawEmail: a complete MIME message its sender built (Pinpoint's `EmailMessage.RawEmail.Data`), sent as given.

Pinpoint handed such messages to SES, whose rules for raw messages Clarion applies (SES developer guide, "Amazon
SES header fields", and the `RawMessage` reference):

- checked before sending: a header section and a body separated by an empty line; no line longer than 998
  characters before its CRLF (RFC 5321); at most one of each header SES lists as single (`From`, `Subject`,
  `Message-ID`, `List-Unsubscribe`, ...); at most 10 MB (Pinpoint's email quota);
- changed while sending: line endings become CRLF (SMTP's); `Bcc` is removed, since it must not travel with the
  message (RFC 5322 §3.6.3); `Date` and `Message-ID` are Clarion's, as SES replaced both with its own; `From` is
  added from the sender when the message has none; the one-click unsubscribe headers (RFC 8058) are added when the
  message carries no `List-Unsubscribe` of its own.

Every other header and the whole body go byte for byte: opens and clicks are not tracked in a raw message, since
that would mean re-encoding its parts (and would break any signature inside it). The transport signs the result
with DKIM like any other email.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime, getaddresses

from clarion.channels.delivery import Outbound, RawEmailContent
from clarion.channels.email.mime import MAX_LINE, InvalidMessage, domain_of, mailbox_header

MAX_RAW_EMAIL_BYTES = 10 * 1024 * 1024  # Pinpoint's email quota: 10 MB per message, attachments included

# Headers SES accepts at most once in a message.
SINGLE_HEADERS = frozenset(
    (
        "accept-language",
        "acceptlanguage",
        "archived-at",
        "auto-submitted",
        "bounces-to",
        "comments",
        "content-alternative",
        "content-base",
        "content-class",
        "content-description",
        "content-disposition",
        "content-duration",
        "content-id",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-transfer-encoding",
        "content-type",
        "date",
        "delivered-to",
        "disposition-notification-options",
        "disposition-notification-to",
        "dkim-signature",
        "domainkey-signature",
        "errors-to",
        "from",
        "importance",
        "in-reply-to",
        "keywords",
        "list-archive",
        "list-help",
        "list-id",
        "list-owner",
        "list-post",
        "list-subscribe",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "message-context",
        "message-id",
        "mime-version",
        "organization",
        "original-from",
        "original-message-id",
        "original-recipient",
        "original-subject",
        "precedence",
        "priority",
        "references",
        "reply-to",
        "return-path",
        "return-receipt-to",
        "sender",
        "solicitation",
        "sensitivity",
        "subject",
        "thread-index",
        "thread-topic",
        "user-agent",
        "vbr-info",
    )
)
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_FIELD_NAME = re.compile(rb"[!-9;-~]+")  # printable ASCII but the colon (RFC 5322 §3.6.8)


class InvalidRawEmail(InvalidMessage):
    """The message cannot be sent as a raw email; the text says why."""


Field = tuple[str, bytes]  # (lower-case name, the field's lines as given, without the final CRLF)


def normalized(data: bytes) -> bytes:
    """The message with CRLF line endings, as SMTP carries it (and DKIM signs it)."""
    return _LINE_ENDING.sub(b"\r\n", data)


def _split(data: bytes) -> tuple[list[Field], bytes]:
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        raise InvalidRawEmail("it has no empty line between its headers and its body")
    fields: list[Field] = []
    for number, line in enumerate(head.split(b"\r\n"), 1):
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise InvalidRawEmail("its first header line is a continuation line")
            name, raw = fields[-1]
            fields[-1] = (name, raw + b"\r\n" + line)
            continue
        name, colon, _ = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise InvalidRawEmail(f"header line {number} is not a header field (name: value)")
        fields.append((name.decode("ascii").lower(), line))
    return fields, body


def check_raw_email(data: bytes) -> None:
    """Raise InvalidRawEmail unless the (decoded) message can be sent as Pinpoint sent raw messages."""
    if len(data) > MAX_RAW_EMAIL_BYTES:
        raise InvalidRawEmail(f"it is {len(data):,} bytes; a message holds at most {MAX_RAW_EMAIL_BYTES:,}")
    message = normalized(data)
    fields, _ = _split(message)
    longest = max(len(line) for line in message.split(b"\r\n"))
    if longest > MAX_LINE:
        raise InvalidRawEmail(f"a line is {longest:,} characters long; lines hold at most {MAX_LINE} (RFC 5321)")
    seen: set[str] = set()
    for name, _ in fields:
        if name in SINGLE_HEADERS and name in seen:
            raise InvalidRawEmail(f"the {name} header appears more than once")
        seen.add(name)


def from_header(data: bytes) -> str | None:
    """The address in the message's own From header, if it has one."""
    fields, _ = _split(normalized(data))
    for name, raw in fields:
        if name == "from":
            value = raw.partition(b":")[2].decode("utf-8", errors="replace").replace("\r\n", "")
            addresses = [address for _, address in getaddresses([value]) if address]
            return addresses[0] if addresses else None
    return None


def build_raw_message(message: Outbound, content: RawEmailContent, sent_at: datetime, message_id_domain: str) -> bytes:
    """The bytes sent for a raw email, CRLF line endings, ready for DKIM signing."""
    fields, body = _split(normalized(content.data))
    domain = message_id_domain or domain_of(content.from_address)
    date = f"Date: {format_datetime(sent_at)}".encode()
    message_id = f"Message-ID: <{message.message_id}@{domain}>".encode()
    replaced = {"date": date, "message-id": message_id}
    names = {name for name, _ in fields}
    added = [] if "from" in names else [f"From: {mailbox_header(content.from_address)}".encode()]
    added += [replaced[name] for name in ("date", "message-id") if name not in names]
    kept = [replaced.get(name, raw) for name, raw in fields if name != "bcc"]
    if content.unsubscribe_url and "list-unsubscribe" not in names:
        kept.append(f"List-Unsubscribe: <{content.unsubscribe_url}>".encode())
        if "list-unsubscribe-post" not in names:
            kept.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    return b"\r\n".join([*added, *kept]) + b"\r\n\r\n" + body
