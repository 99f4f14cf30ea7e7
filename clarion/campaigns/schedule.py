"""When a campaign runs, and when each endpoint's message goes out: Pinpoint's schedule rules as plain functions.

- A campaign's runs are StartTime, then every period after it (HOURLY, DAILY, WEEKLY; MONTHLY on the same day of the
  month, the month's last day when it is shorter), up to EndTime. ONCE runs once; EVENT campaigns run per event.
- **Local time** (`IsLocalTime`): the run's wall-clock time — StartTime read at the schedule's `Timezone` offset — is
  used in each endpoint's own time zone (`Demographic.Timezone`, an IANA name). Endpoints without a valid zone use
  the schedule's offset. A wall time that a DST change skips moves forward by the gap (02:30 on a spring-forward
  night becomes 03:30); one that happens twice is its first occurrence.

Quiet time, which campaigns and journeys share, is part of the send policy (clarion/messages/policy.py).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from clarion.campaigns.definition import EVENT_FREQUENCIES, IMMEDIATE, Frequency, Schedule
from clarion.messages.policy import zone_of

# A local-time run starts where its wall-clock time comes first (UTC+14) and goes on for a day from there.
LOCAL_TIME_LEAD = timedelta(hours=14)
PERIODS = {"HOURLY": timedelta(hours=1), "DAILY": timedelta(days=1), "WEEKLY": timedelta(weeks=1)}


def parse_start(value: str) -> datetime:
    """A schedule instant (StartTime, EndTime) as written, already checked by the campaign rules, at the
    millisecond precision run times are stored with (so a stored run time and its schedule agree exactly)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_offset(name: str | None) -> tzinfo:
    """`UTC`, `UTC+05:30`, `UTC-03` (Schedule.Timezone) as a fixed offset; None is UTC."""
    if not name or name == "UTC":
        return UTC
    sign = 1 if name[3] == "+" else -1
    hours, _, minutes = name[4:].partition(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def runs(start: datetime, frequency: str, end: datetime | None = None) -> Iterator[datetime]:
    """Every run time of a campaign from `start`, in order, none after `end`."""
    if frequency not in PERIODS and frequency != "MONTHLY":
        yield start
        return
    count = 0
    while True:
        at = add_months(start, count) if frequency == "MONTHLY" else start + PERIODS[frequency] * count
        if end is not None and at > end:
            return
        yield at
        count += 1


def next_run(start: datetime, frequency: str, end: datetime | None, after: datetime) -> datetime | None:
    """The first run strictly after `after`, or None when the schedule has no more runs."""
    if frequency in PERIODS and after >= start:  # straight to the right period instead of walking every hour
        period = PERIODS[frequency]
        at = start + period * (int((after - start) / period) + 1)
        return at if end is None or at <= end else None
    return next((at for at in runs(start, frequency, end) if at > after), None)


def local_wall_time(run_at: datetime, schedule_timezone: str | None) -> datetime:
    """The naive wall-clock time a local-time run means: the run instant read at the schedule's offset."""
    return run_at.astimezone(parse_offset(schedule_timezone)).replace(tzinfo=None)


def wall_time_in(wall: datetime, zone: tzinfo) -> datetime:
    """`wall` in `zone` as a UTC instant. fold=0 (PEP 495) gives what the module docstring promises: a skipped wall
    time is read with the offset before the change, so it lands after the gap; a repeated one is the first."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def endpoint_send_time(
    run_at: datetime, is_local_time: bool, schedule_timezone: str | None, endpoint_timezone: str | None
) -> datetime:
    """When one endpoint's message for a run goes out."""
    if not is_local_time:
        return run_at
    zone = zone_of(endpoint_timezone) or parse_offset(schedule_timezone)
    return wall_time_in(local_wall_time(run_at, schedule_timezone), zone)


def lead(schedule: Schedule) -> timedelta:
    """How long before its nominal time a run must start: local-time runs begin where the day begins first."""
    return LOCAL_TIME_LEAD if schedule.is_local_time else timedelta(0)


def first_run_ms(schedule: Schedule, now: datetime) -> int | None:
    """When the scheduler should start a campaign's first run (epoch ms); None for EVENT campaigns, which PutEvents
    triggers. An IN_APP_EVENT campaign runs once, at its start, to leave its message for each member."""
    if schedule.frequency == Frequency.EVENT:
        return None
    nominal = now if schedule.start_time == IMMEDIATE else parse_start(schedule.start_time)
    return int((nominal - lead(schedule)).timestamp() * 1000)


def following_run_ms(schedule: Schedule, after: datetime) -> int | None:
    """The start (epoch ms, lead included) of the first run whose nominal time is after `after`, or None."""
    if schedule.frequency in EVENT_FREQUENCIES or schedule.start_time == IMMEDIATE:
        return None
    end = parse_start(schedule.end_time) if schedule.end_time else None
    following = next_run(parse_start(schedule.start_time), schedule.frequency, end, after)
    return int((following - lead(schedule)).timestamp() * 1000) if following else None
