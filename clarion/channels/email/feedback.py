"""Bounces and complaints that come back by mail, turned into ProviderReports: delivery status notifications
(DSN, RFC 3464) and abuse feedback reports (ARF, RFC 5965), read with the standard library's email package.

A report finds the message it is about in one of two ways, the first that works:

- the envelope recipient it was mailed to, when sends carry a VERP return path (`delivery.smtp.return_path_domain`:
  MAIL FROM `bounce+<message id>@<domain>`, so a bounce comes back to an address naming the message);
- the Message-ID of the original message, which a DSN or ARF report quotes (Clarion's Message-ID is
  `<message id@domain>`, clarion/channels/email/mime.py).

A failed DSN with a permanent status (5.x.x) is a hard bounce and opts the address out; a temporary one (4.x.x) is
a soft bounce; `delivered` is a delivery. A feedback report of type abuse, fraud or virus is a complaint and opts
the address out. Anything else (delays, not-spam, mail that is not a report) records nothing.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import re
from dataclasses import replace

from clarion.channels.delivery import ProviderReport

VERP_PREFIX = "bounce+"
_MESSAGE_ID = re.compile(r"<\s*([^@<>\s]+)@[^<>\s]*>")
_COMPLAINTS = frozenset({"abuse", "fraud", "virus"})


def verp_sender(message_id: str, domain: str) -> str:
    """The envelope sender that brings a message's bounce back naming it."""
    return f"{VERP_PREFIX}{message_id}@{domain}"


def message_id_of_verp(address: str) -> str | None:
    local = address.rpartition("@")[0]
    if not local.lower().startswith(VERP_PREFIX):
        return None
    return local[len(VERP_PREFIX) :] or None


def parse(data: bytes, recipients: list[str]) -> list[ProviderReport]:
    """The reports in one inbound message sent to `recipients` (its envelope's RCPT TO addresses)."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    if message.get_content_type() != "multipart/report":
        return []
    report_type = (message.get_param("report-type") or "").lower()
    if report_type == "delivery-status":
        reports = _dsn(message)
    elif report_type == "feedback-report":
        reports = _arf(message)
    else:
        return []
    message_id = next(filter(None, map(message_id_of_verp, recipients)), None) or _quoted_message_id(message)
    if message_id is None:
        return []
    return [replace(report, message_id=message_id) for report in reports]


def _fields(part: email.message.Message) -> list[email.message.Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, email.message.Message)]
    if isinstance(payload, str):  # some parsers leave a report type they do not know as text
        return [email.message_from_string(block.strip() + "\n") for block in payload.split("\n\n") if block.strip()]
    return []


def _dsn(message: email.message.Message) -> list[ProviderReport]:
    part = next((p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None)
    if part is None:
        return []
    blocks = _fields(part)
    for recipient in blocks[1:]:  # the first block is about the message, each further one about a recipient
        action = str(recipient.get("Action", "")).strip().lower()
        status = str(recipient.get("Status", "")).strip()
        attributes = {
            "action": action,
            "status": status,
            "final_recipient": str(recipient.get("Final-Recipient", "")).strip(),
            "diagnostic_code": str(recipient.get("Diagnostic-Code", "")).strip(),
        }
        attributes = {key: value for key, value in attributes.items() if value}
        if action == "failed" and status.startswith("5"):
            return [ProviderReport("_email.hardbounce", "EMAIL", attributes=attributes, opt_out=True)]
        if action == "failed":
            return [ProviderReport("_email.softbounce", "EMAIL", attributes=attributes)]
        if action in ("delivered", "relayed", "expanded"):
            return [ProviderReport("_email.delivered", "EMAIL", attributes=attributes)]
    return []  # delayed: the relay is still trying


def _arf(message: email.message.Message) -> list[ProviderReport]:
    part = next((p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None)
    blocks = _fields(part) if part is not None else []
    if not blocks:
        return []
    fields = blocks[0]
    kind = str(fields.get("Feedback-Type", "")).strip().lower()
    if kind not in _COMPLAINTS:
        return []
    attributes = {"feedback_type": kind}
    for name, key in (("User-Agent", "user_agent"), ("Arrival-Date", "arrival_date"), ("Source-IP", "source_ip")):
        if fields.get(name):
            attributes[key] = str(fields[name]).strip()
    return [ProviderReport("_email.complaint", "EMAIL", attributes=attributes, opt_out=True)]


def _quoted_message_id(message: email.message.Message) -> str | None:
    """Clarion's id from the Message-ID of the original message the report quotes (its headers or all of it)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            original = payload[0] if isinstance(payload, list) and payload else None
            header = original.get("Message-ID") if isinstance(original, email.message.Message) else None
            if header is None and isinstance(payload, str):
                header = email.message_from_string(payload).get("Message-ID")
        elif kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
            header = email.message_from_string(text).get("Message-ID")
        else:
            continue
        found = _MESSAGE_ID.search(str(header or ""))
        if found:
            return found.group(1)
    return None
