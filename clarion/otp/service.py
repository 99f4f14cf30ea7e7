"""SendOTPMessage and VerifyOTPMessage, following Pinpoint's developer guide ("Generate one-time passwords",
"Validate OTP messages").

A send makes a random code of CodeLength digits, keeps only an HMAC of it (salted per code, under a key derived
from the operator's secret key, so a copy of the database cannot be used to find codes), and sends the fixed text
(clarion/otp/texts.py) over the project's SMS channel through the one send path. Each (project, ReferenceId,
DestinationIdentity) has one live code: a new send replaces the one before. VerifyOTPMessage answers Valid true
once for the right code within its ValidityPeriod; afterwards, after expiry, and once AllowedAttempts wrong codes
have been tried, false. Sends per destination are limited (`otp.max_sends_per_destination` per
`otp.window_seconds`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clarion.channels.phone_numbers import strict_e164
from clarion.channels.secrets import SecretBox
from clarion.context import CallContext
from clarion.errors import BadRequest, TooManyRequests
from clarion.logs import get_logger
from clarion.messages.delivery import Delivery, Send, address_target, suppress_opted_out_addresses
from clarion.messages.rendering import SMS, MessageBuilder
from clarion.metrics import Metrics
from clarion.otp.config import OtpSettings
from clarion.otp.texts import DEFAULT_LANGUAGE, LANGUAGES, TEXTS
from clarion.projects.service import require_app
from clarion.store import otp as otp_store
from clarion.store.database import Database, Transaction
from clarion.store.otp import OtpCodeRow

PURPOSE = "one-time passwords"
CODE_LENGTHS = range(5, 9)  # digits
VALIDITY_MINUTES = range(5, 61)
ATTEMPTS = range(1, 6)
DEFAULT_CODE_LENGTH, DEFAULT_VALIDITY, DEFAULT_ATTEMPTS = 6, 15, 3  # Clarion's choices: Pinpoint names none
MAX_BRAND, MAX_REFERENCE = 20, 48
_MARKS = {"{code}": "{{{OtpCode}}}", "{brand}": "{{{BrandName}}}"}  # the values are data, never template text

log = get_logger("clarion.otp")


@dataclass(frozen=True, slots=True)
class OtpRequest:
    """SendOTPMessageRequestParameters, checked, with Pinpoint's limits and Clarion's defaults."""

    brand: str
    origination: str
    destination: str
    reference: str
    code_length: int
    validity_minutes: int
    attempts: int
    language: str
    entity_id: str | None
    template_id: str | None


def _within(member: str, value: Any, allowed: range, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or value not in allowed:
        raise BadRequest(f"{member} must be between {allowed.start} and {allowed.stop - 1}, not {value}")
    return value


def _destination(value: Any) -> str:
    if not isinstance(value, str) or strict_e164(value) is None:
        raise BadRequest(f"DestinationIdentity {str(value)[:40]!r} is not a valid phone number in E.164 form")
    return value


def _reference(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_REFERENCE:
        raise BadRequest(f"ReferenceId must have 1 to {MAX_REFERENCE} characters")
    return value


def check_send(request: Mapping[str, Any]) -> OtpRequest:
    if request.get("Channel") != SMS:
        raise BadRequest(f"Channel {request.get('Channel')!r} is not supported: one-time passwords go by SMS")
    brand = request.get("BrandName")
    if not isinstance(brand, str) or not 1 <= len(brand) <= MAX_BRAND or not brand.strip():
        raise BadRequest(f"BrandName must have 1 to {MAX_BRAND} characters")
    origination = request.get("OriginationIdentity")
    if not isinstance(origination, str) or not origination.strip():
        raise BadRequest("OriginationIdentity is required: the phone number or sender id the code is sent from")
    language = request.get("Language") or DEFAULT_LANGUAGE
    if language not in LANGUAGES:
        raise BadRequest(f"Language {language!r} is not one of {', '.join(LANGUAGES)}")
    return OtpRequest(
        brand=brand,
        origination=origination,
        destination=_destination(request.get("DestinationIdentity")),
        reference=_reference(request.get("ReferenceId")),
        code_length=_within("CodeLength", request.get("CodeLength"), CODE_LENGTHS, DEFAULT_CODE_LENGTH),
        validity_minutes=_within("ValidityPeriod", request.get("ValidityPeriod"), VALIDITY_MINUTES, DEFAULT_VALIDITY),
        attempts=_within("AllowedAttempts", request.get("AllowedAttempts"), ATTEMPTS, DEFAULT_ATTEMPTS),
        language=language,
        entity_id=request.get("EntityId"),
        template_id=request.get("TemplateId"),
    )


def _material(app_id: str, reference: str, destination: str, salt: bytes, code: str) -> bytes:
    """What the hash covers: the code bound to its salt and to the code's place, so a hash copied to another
    row does not verify there."""
    return b"\0".join((salt, app_id.encode(), reference.encode(), destination.encode(), code.encode()))


def message_text(settings: OtpSettings, language: str) -> str:
    """The language's text as the send path renders it: the code and brand go in as values."""
    text = settings.texts.get(language) or TEXTS[language]
    for mark, variable in _MARKS.items():
        text = text.replace(mark, variable)
    return text


async def send_otp(
    db: Database,
    delivery: Delivery,
    box: SecretBox,
    settings: OtpSettings,
    metrics: Metrics,
    ctx: CallContext,
    app_id: str,
    request: Mapping[str, Any],
) -> dict[str, Any]:
    """MessageResponse, its Result keyed by DestinationIdentity."""
    otp = check_send(request)
    code = f"{secrets.randbelow(10**otp.code_length):0{otp.code_length}d}"
    salt = secrets.token_bytes(16)
    key_id, digest = box.keyed_digest(_material(app_id, otp.reference, otp.destination, salt, code), PURPOSE)
    now = int(ctx.now.timestamp() * 1000)
    row = OtpCodeRow(
        app_id=app_id,
        reference_id=otp.reference,
        destination=otp.destination,
        key_id=key_id,
        salt=salt.hex(),
        code_hash=digest.hex(),
        created_at=now,
        expires_at=now + otp.validity_minutes * 60_000,
        attempts_left=otp.attempts,
        verified=False,
    )

    def record(tx: Transaction) -> None:
        require_app(tx, app_id)
        sent = otp_store.sends_since(tx, app_id, otp.destination, now - settings.window_seconds * 1000)
        if sent >= settings.max_sends_per_destination:
            raise TooManyRequests(
                f"DestinationIdentity {otp.destination} was sent {sent} codes in the last {settings.window_seconds} "
                f"seconds, the most allowed (otp.max_sends_per_destination); try again later"
            )
        otp_store.record_send(tx, app_id, otp.destination, now)
        otp_store.forget_expired(tx, app_id, now)
        otp_store.put_code(tx, row)

    try:
        await db.write(record)
    except TooManyRequests:
        metrics.otp_outcomes.labels("send", "rate_limited").inc()
        log.warning("otp refused", app_id=app_id, reason="rate_limited", destination=otp.destination)
        raise
    target = address_target(otp.destination, {"ChannelType": SMS}, ctx.request_id)
    target.variables.update(OtpCode=code, BrandName=otp.brand)
    await db.read(lambda tx: suppress_opted_out_addresses(tx, app_id, [target]))
    sender = "OriginationNumber" if otp.origination.startswith("+") else "SenderId"
    sms = {"Body": message_text(settings, otp.language), "MessageType": "TRANSACTIONAL", sender: otp.origination}
    sms.update(
        {member: value for member, value in (("EntityId", otp.entity_id), ("TemplateId", otp.template_id)) if value}
    )
    builder = MessageBuilder({"SMSMessage": sms}, {})
    sent = await delivery.send(Send(app_id, [target], builder, ctx.now, {"otp_reference_id": otp.reference}))
    result = sent.results[target.message_id]
    metrics.otp_outcomes.labels("send", "sent" if sent.successful else "not_sent").inc()
    return {"ApplicationId": app_id, "RequestId": ctx.request_id, "Result": {otp.destination: result}}


async def verify_otp(
    db: Database, box: SecretBox, metrics: Metrics, ctx: CallContext, app_id: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    """VerificationResponse: Valid true once for the code sent to the destination under the reference."""
    destination = _destination(request.get("DestinationIdentity"))
    reference = _reference(request.get("ReferenceId"))
    given = str(request.get("Otp") or "")
    now = int(ctx.now.timestamp() * 1000)

    def check(tx: Transaction) -> str:
        require_app(tx, app_id)
        row = otp_store.lock_code(tx, app_id, reference, destination)
        if row is None:
            return "unknown"
        if row.verified:
            return "used"
        if row.expires_at <= now:
            return "expired"
        if row.attempts_left <= 0:
            return "exhausted"
        material = _material(app_id, reference, destination, bytes.fromhex(row.salt), given)
        matches = box.matches_keyed_digest(material, PURPOSE, row.key_id, bytes.fromhex(row.code_hash))
        if matches:
            otp_store.mark_verified(tx, app_id, reference, destination)
            return "valid"
        otp_store.spend_attempt(tx, app_id, reference, destination)
        return "wrong" if matches is not None else "key_unknown"

    outcome = await db.write(check)
    metrics.otp_outcomes.labels("verify", outcome).inc()
    if outcome != "valid":
        log.info("otp not verified", app_id=app_id, reason=outcome, destination=destination)
    return {"Valid": outcome == "valid"}
