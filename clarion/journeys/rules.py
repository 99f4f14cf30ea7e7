"""What a WriteJourneyRequest must satisfy before it is stored, checked without the store.

msgspec has already checked types and enums; these are Pinpoint's value rules for journeys (API Reference,
"Journeys"; the user guide's journey chapters; "Amazon Pinpoint quotas"), each failure a BadRequest naming the
member. References to segments and templates are checked by the service, which can see the store.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from clarion.campaigns.rules import CLOCK_TIME, parse_instant
from clarion.errors import BadRequest
from clarion.journeys.definition import (
    ACTIVITY_TYPES,
    MESSAGE_KINDS,
    TEMPLATE_TYPES,
    WRITABLE_STATES,
    kinds_of,
    next_activities,
)
from clarion.segments.rules import validate_definition

NAME = re.compile(r"^[A-Za-z0-9_-]{1,150}$")
ACTIVITY_ID = re.compile(r"^[A-Za-z0-9]{1,100}$")
MAX_START_ACTIVITY = 128
MAX_ACTIVITIES = 40
MAX_CONTACT_CENTER = 3
MAX_RUN_DAYS = 540  # how long a journey may run, start to end
RANDOM_BRANCHES = (2, 5)
MAX_MULTI_BRANCHES = 4  # plus the default path: five in all
# (member, smallest, largest) of JourneyLimits; None = unbounded.
LIMIT_RANGES = (
    ("DailyCap", 0, 100),
    ("TotalCap", 0, 100),
    ("EndpointReentryCap", 0, 100),
    ("MessagesPerSecond", 1, 20_000),
)
# Schedule.Timezone: the starting UTC offset of a local-time journey (the model's documented list).
TIMEZONES = frozenset(
    ["UTC"]
    + [f"UTC+{o}" for o in ("01", "02", "03", "03:30", "04", "04:30", "05", "05:30", "05:45", "06", "06:30")]
    + [f"UTC+{o}" for o in ("07", "08", "08:45", "09", "09:30", "10", "10:30", "11", "12", "12:45", "13", "13:45")]
    + [f"UTC-{o}" for o in ("02", "02:30", "03", "03:30", "04", "05", "06", "07", "08", "09", "09:30", "10", "11")]
)
CONTACT_CENTER_REFUSED = (
    "ContactCenter activities hand participants to Amazon Connect, which Clarion does not have; set "
    "journeys.contact_center_url to a webhook that stands in for it (docs/journeys.md#contact-center)"
)


# An ISO 8601 duration as journeys use them (P1D, PT1H, P1W, P1DT12H, PT0.5S); months and years count 30 and 365 days.
DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str, where: str) -> timedelta:
    """An ISO 8601 duration as a length of time, longer than zero."""
    match = DURATION.match(value) if isinstance(value, str) and value not in ("P", "PT") else None
    if match is None or value.endswith("T"):
        raise BadRequest(f"{where}: {value!r} is not an ISO 8601 duration (for example PT1H or P1D)")
    parts = {name: float(number) for name, number in match.groupdict().items() if number}
    duration = timedelta(
        days=parts.get("years", 0) * 365 + parts.get("months", 0) * 30 + parts.get("days", 0),
        weeks=parts.get("weeks", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )
    if duration <= timedelta():
        raise BadRequest(f"{where}: {value!r} must be longer than zero")
    return duration


def check_wait_time(wait: dict[str, Any] | None, where: str) -> None:
    if not wait or ("WaitFor" in wait) == ("WaitUntil" in wait):
        raise BadRequest(f"{where} needs exactly one of WaitFor (an ISO 8601 duration) or WaitUntil (a date and time)")
    if "WaitFor" in wait:
        parse_duration(wait["WaitFor"], f"{where}.WaitFor")
    else:
        parse_instant(wait["WaitUntil"], f"{where}.WaitUntil")


def _check_name(request: dict[str, Any]) -> None:
    name = request.get("Name")
    if not isinstance(name, str) or not NAME.match(name):
        raise BadRequest(
            f"Name must be 1 to 150 letters, digits, underscores or hyphens, with no spaces, not {str(name)[:160]!r}"
        )


def _check_condition(condition: dict[str, Any] | None, where: str, preceding: set[str], kinds: dict[str, str]) -> None:
    """A SimpleCondition: one segment, one set of endpoint dimensions, or one event of an earlier message."""
    if not condition:
        raise BadRequest(f"{where} is required")
    # SegmentDimensions is spelt segmentDimensions on the wire (the model's locationName).
    given = [member for member in ("EventCondition", "SegmentCondition", "segmentDimensions") if condition.get(member)]
    if len(given) != 1:
        raise BadRequest(f"{where} needs exactly one of EventCondition, SegmentCondition or SegmentDimensions")
    if condition.get("segmentDimensions"):
        validate_definition({"Dimensions": condition["segmentDimensions"]})
    event = condition.get("EventCondition")
    if event:
        source = event.get("MessageActivity")
        if not source:
            raise BadRequest(f"{where}.EventCondition.MessageActivity is required")
        if kinds.get(source) not in MESSAGE_KINDS:
            raise BadRequest(f"{where}.EventCondition.MessageActivity: {source!r} is not a message activity")
        if source not in preceding:
            raise BadRequest(f"{where}.EventCondition.MessageActivity: {source!r} does not come before this split")
        event_types = ((event.get("Dimensions") or {}).get("EventType") or {}).get("Values") or []
        if not event_types:
            raise BadRequest(f"{where}.EventCondition.Dimensions.EventType.Values must name a message event")


def _check_activity(
    activity_id: str, activity: dict[str, Any], kinds: dict[str, str], preceding: set[str], publishing: bool
) -> None:
    where = f"Activities.{activity_id}"
    kind = kinds[activity_id]
    body = activity[kind]
    for target in next_activities(body):
        if target not in kinds:
            raise BadRequest(f"{where}.{kind}: the next activity {target!r} is not one of the journey's activities")
    if kind in MESSAGE_KINDS:
        if publishing and kind in TEMPLATE_TYPES and not body.get("TemplateName"):
            raise BadRequest(f"{where}.{kind}.TemplateName is required: journey messages are sent from templates")
        version = body.get("TemplateVersion")
        if version is not None and not str(version).isdigit():
            raise BadRequest(f"{where}.{kind}.TemplateVersion must be a version number, not {version!r}")
        ttl = (body.get("MessageConfig") or {}).get("TimeToLive")
        if kind == "PUSH" and ttl is not None and not str(ttl).isdigit():
            raise BadRequest(f"{where}.PUSH.MessageConfig.TimeToLive must be a number of seconds, not {ttl!r}")
        if kind == "CUSTOM":
            uri = body.get("DeliveryUri")
            if publishing and not uri:
                raise BadRequest(f"{where}.CUSTOM.DeliveryUri is required")
            if uri and not uri.startswith(("https://", "http://")):
                raise BadRequest(f"{where}.CUSTOM.DeliveryUri: {uri!r} is not an http(s) URL (Lambda is not available)")
    elif kind == "Wait":
        check_wait_time(body.get("WaitTime"), f"{where}.Wait.WaitTime")
    elif kind == "Holdout":
        if not 0 <= body["Percentage"] <= 100:
            raise BadRequest(f"{where}.Holdout.Percentage must be between 0 and 100, not {body['Percentage']}")
    elif kind == "RandomSplit":
        branches = body.get("Branches") or []
        if not RANDOM_BRANCHES[0] <= len(branches) <= RANDOM_BRANCHES[1]:
            raise BadRequest(f"{where}.RandomSplit.Branches must hold 2 to 5 branches, not {len(branches)}")
        shares = [branch.get("Percentage") for branch in branches]
        if any(share is None or not 0 < share <= 100 for share in shares):
            raise BadRequest(f"{where}.RandomSplit.Branches: each Percentage must be a whole number from 1 to 100")
        if sum(shares) != 100:  # type: ignore[arg-type]
            raise BadRequest(f"{where}.RandomSplit.Branches: the percentages add up to {sum(shares)}, not 100")  # type: ignore[arg-type]
    elif kind == "ConditionalSplit":
        conditions = (body.get("Condition") or {}).get("Conditions") or []
        if not conditions:
            raise BadRequest(f"{where}.ConditionalSplit.Condition.Conditions must hold at least one condition")
        for index, condition in enumerate(conditions):
            _check_condition(condition, f"{where}.ConditionalSplit.Condition.Conditions[{index}]", preceding, kinds)
        if "EvaluationWaitTime" in body:
            check_wait_time(body["EvaluationWaitTime"], f"{where}.ConditionalSplit.EvaluationWaitTime")
    elif kind == "MultiCondition":
        branches = body.get("Branches") or []
        if not 1 <= len(branches) <= MAX_MULTI_BRANCHES:
            raise BadRequest(
                f"{where}.MultiCondition.Branches must hold 1 to {MAX_MULTI_BRANCHES} branches "
                f"(five paths with the default one), not {len(branches)}"
            )
        for index, branch in enumerate(branches):
            where_branch = f"{where}.MultiCondition.Branches[{index}].Condition"
            _check_condition(branch.get("Condition"), where_branch, preceding, kinds)
        if "EvaluationWaitTime" in body:
            check_wait_time(body["EvaluationWaitTime"], f"{where}.MultiCondition.EvaluationWaitTime")


def _predecessors(activities: dict[str, Any], kinds: dict[str, str]) -> dict[str, set[str]]:
    """Every activity -> the activities some path leads from to it; refuses a path that loops back on itself."""
    following = {a: next_activities(activities[a][kinds[a]]) for a in activities}
    reached: dict[str, set[str]] = {}
    for start in activities:
        seen: set[str] = set()
        stack = list(following[start])
        while stack:
            current = stack.pop()
            if current == start:
                raise BadRequest(f"Activities.{start}: the journey leads back to this activity; journeys cannot loop")
            if current in seen or current not in following:
                continue
            seen.add(current)
            stack.extend(following[current])
        for later in seen:
            reached.setdefault(later, set()).add(start)
    return reached


def _check_activities(request: dict[str, Any], publishing: bool, contact_center: bool) -> None:
    activities: dict[str, Any] = request.get("Activities") or {}
    if len(activities) > MAX_ACTIVITIES:
        raise BadRequest(f"Activities holds at most {MAX_ACTIVITIES} activities, not {len(activities)}")
    kinds: dict[str, str] = {}
    for activity_id, activity in activities.items():
        if not ACTIVITY_ID.match(activity_id):
            raise BadRequest(f"Activities: the activity id {activity_id[:110]!r} must be 1 to 100 letters or digits")
        found = kinds_of(activity)
        if len(found) != 1:
            raise BadRequest(
                f"Activities.{activity_id} must hold exactly one activity type ({', '.join(ACTIVITY_TYPES)})"
            )
        kinds[activity_id] = found[0]
    contact = [a for a, kind in kinds.items() if kind == "ContactCenter"]
    if contact and not contact_center:
        raise BadRequest(f"Activities.{contact[0]}: {CONTACT_CENTER_REFUSED}")
    if len(contact) > MAX_CONTACT_CENTER:
        raise BadRequest(f"Activities holds at most {MAX_CONTACT_CENTER} ContactCenter activities, not {len(contact)}")
    predecessors = _predecessors(activities, kinds)
    for activity_id, activity in activities.items():
        _check_activity(activity_id, activity, kinds, predecessors.get(activity_id, set()), publishing)
    start = request.get("StartActivity")
    if start is not None:
        if len(start) > MAX_START_ACTIVITY:
            raise BadRequest(f"StartActivity is at most {MAX_START_ACTIVITY} characters")
        if start not in activities:
            raise BadRequest(f"StartActivity: {start!r} is not one of the journey's activities")


def _check_start_condition(request: dict[str, Any]) -> None:
    condition = request.get("StartCondition")
    if not condition:
        return
    given = [m for m in ("SegmentStartCondition", "EventStartCondition") if condition.get(m)]
    if len(given) != 1:
        raise BadRequest("StartCondition needs exactly one of SegmentStartCondition or EventStartCondition")
    event = condition.get("EventStartCondition")
    if event:
        event_filter = event.get("EventFilter")
        if not event_filter:
            raise BadRequest("StartCondition.EventStartCondition.EventFilter is required")
        values = ((event_filter.get("Dimensions") or {}).get("EventType") or {}).get("Values") or []
        if len(values) != 1:
            raise BadRequest(
                "StartCondition.EventStartCondition.EventFilter.Dimensions.EventType.Values must name exactly one "
                "event: a journey starts on one event"
            )
        for member in ("RefreshFrequency", "RefreshOnSegmentUpdate"):
            if request.get(member):
                raise BadRequest(f"{member}: only a journey that starts from a segment refreshes it")


def _check_schedule(request: dict[str, Any]) -> None:
    schedule = request.get("Schedule") or {}
    starts = parse_instant(schedule["StartTime"], "Schedule.StartTime") if "StartTime" in schedule else None
    ends = parse_instant(schedule["EndTime"], "Schedule.EndTime") if "EndTime" in schedule else None
    if starts and ends:
        if ends <= starts:
            raise BadRequest("Schedule.EndTime must be after Schedule.StartTime")
        if ends - starts > timedelta(days=MAX_RUN_DAYS):
            raise BadRequest(f"Schedule: a journey runs at most {MAX_RUN_DAYS} days from StartTime to EndTime")
    timezone = schedule.get("Timezone")
    if timezone is not None and timezone not in TIMEZONES:
        raise BadRequest(f"Schedule.Timezone: {timezone!r} is not one of {', '.join(sorted(TIMEZONES))}")


def _check_limits(limits: dict[str, Any]) -> None:
    for member, smallest, largest in LIMIT_RANGES:
        value = limits.get(member)
        if value is not None and not smallest <= value <= largest:
            raise BadRequest(f"Limits.{member} must be between {smallest} and {largest}, not {value}")
    if "EndpointReentryInterval" in limits:
        parse_duration(limits["EndpointReentryInterval"], "Limits.EndpointReentryInterval")
    timeframe = limits.get("TimeframeCap") or {}
    if timeframe.get("Cap") is not None and not 0 <= timeframe["Cap"] <= 100:
        raise BadRequest(f"Limits.TimeframeCap.Cap must be between 0 and 100, not {timeframe['Cap']}")
    if timeframe.get("Days") is not None and not 0 <= timeframe["Days"] <= 30:
        raise BadRequest(f"Limits.TimeframeCap.Days must be between 0 and 30, not {timeframe['Days']}")


def _check_sending_schedule(request: dict[str, Any]) -> None:
    quiet = request.get("QuietTime") or {}
    if ("Start" in quiet) != ("End" in quiet):
        raise BadRequest("QuietTime needs both Start and End")
    for member in ("Start", "End"):
        if member in quiet and not CLOCK_TIME.match(quiet[member]):
            raise BadRequest(f"QuietTime.{member}: {quiet[member]!r} is not a 24-hour time like 22:00")
    for member in ("OpenHours", "ClosedDays"):
        if request.get(member) and not (request.get("SendingSchedule") and quiet):
            raise BadRequest(f"{member} needs SendingSchedule set to true and a QuietTime")
    for channel, days in (request.get("OpenHours") or {}).items():
        for day, rules in days.items():
            for index, rule in enumerate(rules):
                where = f"OpenHours.{channel}.{day}[{index}]"
                times = [rule.get("StartTime"), rule.get("EndTime")]
                if not all(isinstance(t, str) and CLOCK_TIME.match(t) for t in times):
                    raise BadRequest(f"{where} needs StartTime and EndTime as 24-hour times like 09:00")
                if times[0] >= times[1]:  # type: ignore[operator]
                    raise BadRequest(f"{where}.EndTime must be after its StartTime")
    for channel, rules in (request.get("ClosedDays") or {}).items():
        for index, rule in enumerate(rules):
            where = f"ClosedDays.{channel}[{index}]"
            if "StartDateTime" not in rule or "EndDateTime" not in rule:
                raise BadRequest(f"{where} needs StartDateTime and EndDateTime")
            starts: datetime = parse_instant(rule["StartDateTime"], f"{where}.StartDateTime")
            if parse_instant(rule["EndDateTime"], f"{where}.EndDateTime") <= starts:
                raise BadRequest(f"{where}.EndDateTime must be after its StartDateTime")


def check_publishable(request: dict[str, Any]) -> None:
    """What an ACTIVE journey needs beyond what a DRAFT may leave out: where participants come from and begin."""
    if not request.get("StartCondition"):
        raise BadRequest("StartCondition is required to make a journey ACTIVE")
    if not request.get("Activities"):
        raise BadRequest("Activities: an ACTIVE journey needs at least one activity")
    if not request.get("StartActivity"):
        raise BadRequest("StartActivity is required to make a journey ACTIVE")


def validate_journey(request: dict[str, Any], *, publishing: bool, contact_center: bool) -> None:
    """Value rules for a whole WriteJourneyRequest; `publishing`: the journey is to be ACTIVE once written."""
    _check_name(request)
    state = request.get("State")
    if state is not None and state not in WRITABLE_STATES:
        raise BadRequest(f"State: a journey is written as DRAFT or ACTIVE, not {state} (UpdateJourneyState moves it)")
    if publishing:
        check_publishable(request)
    _check_activities(request, publishing, contact_center)
    _check_start_condition(request)
    _check_schedule(request)
    if "RefreshFrequency" in request:
        parse_duration(request["RefreshFrequency"], "RefreshFrequency")
    _check_limits(request.get("Limits") or {})
    _check_sending_schedule(request)
