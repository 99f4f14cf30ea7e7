"""Turning an Outbound email into the bytes an SMTP relay receives: RFC 5322 headers, a multipart/alternative
body (text first, HTML last as the preferred part), a Message-ID built from Clarion's message id, and the RFC 8058
one-click unsubscribe headers.

Written by hand rather than with `email.message.EmailMessage`: the stdlib builder costs about 1.5 ms per message,
more than the SMTP round trip it feeds; this writer produces the same structure in a few tens of microseconds.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, quote, unquote

from clarion.channels.delivery import EmailContent, Outbound

# Headers the transport writes itself; a request or template may not replace them.
RESERVED_HEADERS = frozenset(
    (
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
        "list-unsubscribe",
        "list-unsubscribe-post",
    )
)
MAX_LINE = 998  # RFC 5322 §2.1.1, without the CRLF
_NAME_ADDR = re.compile(r"^(.*)<([^<>]*)>\s*$", re.DOTALL)
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # a display name holding one of these is quoted (RFC 5322 §3.2.3)


class InvalidMessage(ValueError):
    """The message cannot be sent as given (a header the transport owns, a line break in a header value)."""


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].rstrip(">").strip() or "localhost"


def check_extra_headers(extra: Mapping[str, str]) -> None:
    """Headers a message may add: not one the transport writes, no line breaks (header injection)."""
    for name, value in extra.items():
        if name.lower() in RESERVED_HEADERS:
            raise InvalidMessage(f"Header {name!r} is set by Clarion and cannot be given in the message")
        if not name.isascii() or not name.isprintable() or ":" in name or " " in name or not name:
            raise InvalidMessage(f"Header name {name!r} is not a valid header field name")
        if "\r" in value or "\n" in value:
            raise InvalidMessage(f"Header {name!r} contains a line break")


def build_message(message: Outbound, content: EmailContent, sent_at: datetime, message_id_domain: str = "") -> bytes:
    """The message as sent, CRLF line endings, ready for DKIM signing."""
    domain = message_id_domain or domain_of(content.from_address)
    headers = [
        ("From", mailbox_header(content.from_address)),
        ("To", mailbox_header(message.address)),
        # A substitution can carry a line break into the subject: it becomes a space, never a new header.
        ("Subject", _text_header("Subject", " ".join(content.subject.splitlines()))),
        ("Date", format_datetime(sent_at)),
        ("Message-ID", f"<{message.message_id}@{domain}>"),
    ]
    if content.reply_to:
        headers.append(("Reply-To", ", ".join(mailbox_header(entry) for entry in content.reply_to)))
    if content.unsubscribe_url:
        headers.append(("List-Unsubscribe", f"<{content.unsubscribe_url}>"))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    check_extra_headers(content.headers)
    headers.extend((name, _text_header(name, value)) for name, value in content.headers.items())
    headers.append(("MIME-Version", "1.0"))
    charset = content.charset.lower()
    if content.html is not None and content.text is not None:
        boundary = f"=_clarion_{secrets.token_hex(12)}"
        headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
        body = b"".join(
            (
                f"--{boundary}\r\n".encode(),
                _part("plain", content.text, charset),
                f"\r\n--{boundary}\r\n".encode(),
                _part("html", content.html, charset),
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )
        head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
        return head + b"\r\n" + body
    subtype, text = ("html", content.html) if content.html is not None else ("plain", content.text or "")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
    return head + _part(subtype, text, charset)


def _part(subtype: str, text: str, charset: str) -> bytes:
    """Content headers, a blank line and the encoded body: 7bit when it is plain short-lined ASCII,
    quoted-printable otherwise (readable in logs, compact for mostly-ASCII mail)."""
    lines = text.replace("\r\n", "\n").split("\n")
    if text.isascii() and all(len(line) <= MAX_LINE for line in lines):
        encoding, body = "7bit", "\r\n".join(lines).encode()
    else:
        encoding = "quoted-printable"
        body = binascii.b2a_qp("\r\n".join(lines).encode(charset), istext=True)
    return (
        f'Content-Type: text/{subtype}; charset="{charset}"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    ).encode() + body


def _text_header(name: str, value: str) -> str:
    """Unstructured text: as is when ASCII and short, RFC 2047 encoded words otherwise."""
    if value.isascii() and len(name) + len(value) + 2 <= MAX_LINE:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def mailbox_header(entry: str) -> str:
    """One mailbox (`address` or `Name <address>`) as a header value: a display name with RFC 5322 specials is
    quoted, a non-ASCII one encoded (RFC 2047). A non-ASCII address goes as given: it is sent with SMTPUTF8
    (RFC 6531), which also allows it in headers (RFC 6532)."""
    if "\r" in entry or "\n" in entry:
        raise InvalidMessage(f"The address {entry!r} contains a line break")
    found = _NAME_ADDR.match(entry)
    if found is None:
        return entry.strip()
    name, address = unquote(found.group(1).strip()), found.group(2).strip()
    if not name:
        return address
    if not name.isascii():
        return f"{Header(name, 'utf-8').encode()} <{address}>"
    return f'"{quote(name)}" <{address}>' if _SPECIALS.search(name) else f"{name} <{address}>"
