"""What Twilio tells Clarion after a send: message status callbacks and inbound messages, both form-encoded POSTs
signed with `X-Twilio-Signature`.

The signature is base64(HMAC-SHA1(auth token, URL + every POST parameter as name + value, sorted by name)), over
the URL exactly as Twilio called it, query string included.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from xml.etree import ElementTree

from clarion.channels.delivery import ProviderReport
from clarion.channels.sms.keywords import Keyword, inbound_report, keyword_of

STATUS_PATH = "/webhooks/sms/twilio/status"
INBOUND_PATH = "/webhooks/sms/twilio/inbound"
SIGNATURE_HEADER = "X-Twilio-Signature"

# Final outbound statuses; queued/sending/sent/accepted/scheduled are steps on the way and report nothing.
SUCCESS_STATUSES = {"delivered", "read"}
FAILURE_STATUSES = {"undelivered", "failed", "canceled"}

# Twilio delivery error codes in Pinpoint's `record_status` vocabulary for `_SMS.FAILURE`.
RECORD_STATUSES = {
    "30003": "UNREACHABLE",  # handset off or out of coverage
    "30004": "BLOCKED",  # the recipient blocked the sender
    "30005": "INVALID",  # unknown destination
    "30006": "INVALID",  # landline or unreachable carrier
    "30007": "CARRIER_BLOCKED",  # carrier filtering
    "30008": "UNKNOWN",
    "21610": "OPTED_OUT",
}


def twilio_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """The X-Twilio-Signature Twilio computes for a form POST (repeated names: every distinct value, sorted)."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]], signature: str) -> bool:
    if not auth_token or not signature:
        return False
    return hmac.compare_digest(twilio_signature(auth_token, url, params).encode(), signature.encode())


def status_report(params: Mapping[str, str], message_id: str | None) -> ProviderReport | None:
    """`_SMS.SUCCESS` or `_SMS.FAILURE` for a final message status; None for the steps before one."""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if status not in SUCCESS_STATUSES | FAILURE_STATUSES:
        return None
    attributes = {
        "provider": "twilio",
        "provider_status": status,
        "destination_phone_number": params.get("To", ""),
        "origination_phone_number": params.get("From", ""),
    }
    success = status in SUCCESS_STATUSES
    if success:
        attributes["record_status"] = "DELIVERED"
    else:
        code = params.get("ErrorCode", "")
        attributes |= {
            "record_status": RECORD_STATUSES.get(code, "UNKNOWN"),
            "provider_error_code": code,
            "reason": params.get("ErrorMessage") or f"Twilio reported the message {status} (error {code or 'none'})",
        }
    return ProviderReport(
        event_type="_SMS.SUCCESS" if success else "_SMS.FAILURE",
        channel="SMS",
        provider_message_id=params.get("MessageSid") or params.get("SmsSid"),
        message_id=message_id,
        attributes={name: value for name, value in attributes.items() if value},
    )


def inbound(params: Mapping[str, str], help_reply: str) -> tuple[ProviderReport | None, str]:
    """The report an inbound message makes, and the TwiML to answer Twilio with (a HELP reply, or nothing)."""
    body = params.get("Body", "")
    report = inbound_report(
        params.get("From", ""), params.get("To", ""), body, "twilio", provider_message_id=params.get("MessageSid")
    )
    response = ElementTree.Element("Response")
    if help_reply and keyword_of(body) is Keyword.HELP:
        ElementTree.SubElement(response, "Message").text = help_reply
    return report, ElementTree.tostring(response, encoding="unicode", xml_declaration=True)
