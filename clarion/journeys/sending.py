"""When a journey may message an endpoint in its local time zone (clarion/journeys/zones.py): quiet time's end, and
the journey's sending schedule (OpenHours per channel and weekday, ClosedDays per channel).

Pure functions of the time and the endpoint: the message step (clarion/journeys/steps.py) asks them and keeps a
participant waiting at its activity until the moment they give.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clarion.campaigns.rules import parse_instant
from clarion.messages.policy import QuietTime, parse_clock, zone_of

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
Week = dict[str, list[dict[str, Any]]]  # OpenHours of one channel: weekday -> [{StartTime, EndTime}]


def quiet_time_ends(now: datetime, quiet: QuietTime, zone_name: str | None) -> datetime:
    """The next moment the endpoint's local clock reads the quiet time's End (wall-clock, so a DST change between
    now and then moves it with the clock)."""
    zone = zone_of(zone_name)
    if zone is None or quiet.end is None:
        return now
    local = now.astimezone(zone)
    end = parse_clock(quiet.end)
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends = _at(local.date() + timedelta(days=1), end.hour, end.minute, zone)
    return ends


def _at(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def _opening(local: datetime, zone: ZoneInfo, week: Week) -> datetime | None:
    """None while an open-hours window holds `local`; else the start of the next window (within a week)."""
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        windows = []
        for rule in week.get(WEEKDAYS[day.weekday()], []):
            start, end = parse_clock(rule["StartTime"]), parse_clock(rule["EndTime"])
            windows.append((_at(day, start.hour, start.minute, zone), _at(day, end.hour, end.minute, zone)))
        for starts, ends in sorted(windows):
            if starts <= local < ends:
                return None
            if starts > local:
                return starts
    return None


def next_sending_time(
    now: datetime,
    zone_name: str | None,
    open_hours: dict[str, list[dict[str, Any]]] | None,
    closed: list[dict[str, Any]],
) -> datetime | None:
    """None when the sending schedule lets the message go now; else the earliest moment it does. Open hours read
    the endpoint's local time (UTC when it has none); closed days are instants."""
    zone = zone_of(zone_name) or ZoneInfo("UTC")
    moment, moved = now, False
    for _ in range(16):  # each round passes one closed period or waits for one opening
        waited = False
        for rule in closed:
            starts = parse_instant(rule["StartDateTime"], "ClosedDays.StartDateTime")
            ends = parse_instant(rule["EndDateTime"], "ClosedDays.EndDateTime")
            if starts <= moment < ends:
                moment, waited = ends, True
        opening = _opening(moment.astimezone(zone), zone, open_hours) if open_hours else None
        if opening is not None:
            moment, waited = opening, True
        if not waited:
            break
        moved = True
    return moment if moved else None
