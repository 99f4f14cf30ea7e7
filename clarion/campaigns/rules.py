"""What a WriteCampaignRequest must satisfy before it is stored, checked without the store.

msgspec has already checked types and enums; these are Pinpoint's value rules (API Reference, "Campaign";
"Amazon Pinpoint quotas"), each
failure a BadRequest naming the member. References to segments and templates are checked by the service, which
can see the store.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from clarion.campaigns.definition import EVENT_FREQUENCIES, IMMEDIATE
from clarion.errors import BadRequest
from clarion.messages.rendering import check_texts

MAX_ADDITIONAL_TREATMENTS = 4  # plus the default treatment: five in all
MAX_EMAIL_HEADERS = 15
# Schedule.Timezone: the starting UTC offset of a local-time campaign (the model's documented list).
TIMEZONES = frozenset(
    ["UTC"]
    + [f"UTC+{offset}" for offset in ("01", "02", "03", "03:30", "04", "04:30", "05", "05:30", "05:45", "06")]
    + [f"UTC+{offset}" for offset in ("06:30", "07", "08", "09", "09:30", "10", "10:30", "11", "12", "13")]
    + [f"UTC-{hours:02d}" for hours in range(2, 12)]
)
# (member, smallest, largest) of CampaignLimits; None = unbounded.
LIMIT_RANGES = (
    ("Daily", 0, 100),
    ("Total", 0, 100),
    ("Session", 0, 100),
    ("MessagesPerSecond", 1, 20_000),
    ("MaximumDuration", 60, None),
)
CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# TemplateConfiguration member -> the template type it names.
TEMPLATE_TYPES = {"EmailTemplate": "EMAIL", "PushTemplate": "PUSH", "SMSTemplate": "SMS", "InAppTemplate": "INAPP"}
MESSAGE_MEMBERS = ("MessageConfiguration", "TemplateConfiguration", "CustomDeliveryConfiguration")


def parse_instant(value: str, where: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{where}: {value!r} is not an ISO 8601 date and time") from None
    if instant.tzinfo is None:
        raise BadRequest(f"{where}: {value!r} needs a UTC offset (for example 2026-12-01T09:00:00Z)")
    return instant


def check_schedule(schedule: dict[str, Any], where: str = "Schedule") -> None:
    start = schedule["StartTime"]
    frequency = schedule.get("Frequency", "ONCE")
    starts_at = None if start == IMMEDIATE else parse_instant(start, f"{where}.StartTime")
    if starts_at is None and frequency != "ONCE":
        raise BadRequest(f"{where}.StartTime: a {frequency} campaign needs a start date and time, not IMMEDIATE")
    if "EndTime" in schedule:
        ends_at = parse_instant(schedule["EndTime"], f"{where}.EndTime")
        if starts_at is not None and ends_at <= starts_at:
            raise BadRequest(f"{where}.EndTime must be after {where}.StartTime")
    if frequency in EVENT_FREQUENCIES and "EventFilter" not in schedule:
        raise BadRequest(f"{where}.EventFilter is required when Frequency is {frequency}")
    if "EventFilter" in schedule and frequency not in EVENT_FREQUENCIES:
        raise BadRequest(f"{where}.EventFilter is only for Frequency EVENT or IN_APP_EVENT, not {frequency}")
    timezone = schedule.get("Timezone")
    if timezone is not None and timezone not in TIMEZONES:
        raise BadRequest(f"{where}.Timezone: {timezone!r} is not one of {', '.join(sorted(TIMEZONES))}")
    quiet = schedule.get("QuietTime")
    if quiet:
        if ("Start" in quiet) != ("End" in quiet):
            raise BadRequest(f"{where}.QuietTime needs both Start and End")
        for member in ("Start", "End"):
            if member in quiet and not CLOCK_TIME.match(quiet[member]):
                raise BadRequest(f"{where}.QuietTime.{member}: {quiet[member]!r} is not a 24-hour time like 22:00")


def check_limits(limits: dict[str, Any], where: str = "Limits") -> None:
    for member, smallest, largest in LIMIT_RANGES:
        value = limits.get(member)
        if value is None:
            continue
        if value < smallest or (largest is not None and value > largest):
            bounds = f"between {smallest} and {largest}" if largest is not None else f"at least {smallest}"
            raise BadRequest(f"{where}.{member} must be {bounds}, not {value}")


def _check_messages(request: dict[str, Any], where: str) -> None:
    email = (request.get("MessageConfiguration") or {}).get("EmailMessage") or {}
    if len(email.get("Headers") or []) > MAX_EMAIL_HEADERS:
        raise BadRequest(f"{where}MessageConfiguration.EmailMessage.Headers holds at most {MAX_EMAIL_HEADERS} headers")
    templates = request.get("TemplateConfiguration") or {}
    if "VoiceTemplate" in templates:
        raise BadRequest(f"{where}TemplateConfiguration.VoiceTemplate: campaigns do not send voice messages")
    for member in TEMPLATE_TYPES:
        if member in templates and not templates[member].get("Name"):
            raise BadRequest(f"{where}TemplateConfiguration.{member}.Name is required")


def check_treatments(request: dict[str, Any]) -> None:
    treatments = request.get("AdditionalTreatments") or []
    if len(treatments) > MAX_ADDITIONAL_TREATMENTS:
        raise BadRequest(
            f"AdditionalTreatments holds at most {MAX_ADDITIONAL_TREATMENTS} treatments (five with the default one)"
        )
    holdout = request.get("HoldoutPercent", 0)
    if not 0 <= holdout <= 100:
        raise BadRequest(f"HoldoutPercent must be between 0 and 100, not {holdout}")
    total = holdout
    for index, treatment in enumerate(treatments):
        where = f"AdditionalTreatments[{index}]"
        size = treatment["SizePercent"]
        if not 0 < size <= 100:
            raise BadRequest(f"{where}.SizePercent must be between 1 and 100, not {size}")
        total += size
        if "Schedule" in treatment:
            check_schedule(treatment["Schedule"], f"{where}.Schedule")
        _check_messages(treatment, f"{where}.")
    if treatments and total >= 100:
        raise BadRequest(
            f"AdditionalTreatments SizePercent plus HoldoutPercent is {total}; it must stay under 100 so that the "
            "default treatment has members"
        )
    if total > 100:
        raise BadRequest(f"HoldoutPercent plus treatment sizes is {total}; it cannot exceed 100")


def check_hook(hook: dict[str, Any]) -> None:
    if not hook.get("WebUrl") and not hook.get("LambdaFunctionName"):
        raise BadRequest("Hook needs a WebUrl or a LambdaFunctionName")
    url = hook.get("WebUrl")
    if url and not url.startswith(("https://", "http://")):
        raise BadRequest(f"Hook.WebUrl: {url!r} is not an http(s) URL")


SENDING_CHANNELS = frozenset(
    {"GCM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "ADM", "BAIDU", "EMAIL", "SMS", "CUSTOM"}
)


def check_channel_order(order: list[str]) -> None:
    if not order:
        raise BadRequest("ClarionChannelOrder must name at least one channel")
    if len(set(order)) != len(order):
        raise BadRequest("ClarionChannelOrder names a channel twice")
    for channel in order:
        if channel not in SENDING_CHANNELS:
            raise BadRequest(f"ClarionChannelOrder: campaigns cannot send on {channel}")


def check_message_texts(request: dict[str, Any]) -> None:
    """Every inline text of the default and additional treatments' messages compiles, so that a campaign with a
    template syntax error is refused when written rather than failing each recipient when it runs. In-app content
    is not rendered and not checked. Slow for large parts: services call it beside the event loop."""
    treatments = request.get("AdditionalTreatments") or []
    owners = [(request, ""), *((t, f"AdditionalTreatments[{i}].") for i, t in enumerate(treatments))]
    for owner, where in owners:
        config = {k: v for k, v in (owner.get("MessageConfiguration") or {}).items() if k != "InAppMessage"}
        check_texts(config, f"{where}MessageConfiguration")


def validate_campaign(request: dict[str, Any]) -> None:
    """Value rules for a whole definition: a create's request, or an update merged over the stored version."""
    name = request.get("Name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Name must not be empty")
    if not request.get("SegmentId"):
        raise BadRequest("SegmentId is required")
    if "Schedule" not in request:
        raise BadRequest("Schedule is required (Schedule.StartTime IMMEDIATE, or an ISO 8601 date and time)")
    if not any(member in request for member in MESSAGE_MEMBERS):
        raise BadRequest("A campaign needs MessageConfiguration, TemplateConfiguration or CustomDeliveryConfiguration")
    check_schedule(request["Schedule"])
    if request.get("IsPaused") and request["Schedule"]["StartTime"] == IMMEDIATE:
        raise BadRequest("IsPaused: an IMMEDIATE campaign starts at once and cannot be paused")
    if "Limits" in request:
        check_limits(request["Limits"])
    check_treatments(request)
    _check_messages(request, "")
    if "Hook" in request:
        check_hook(request["Hook"])
    if "ClarionChannelOrder" in request:
        check_channel_order(request["ClarionChannelOrder"])
