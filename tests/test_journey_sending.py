"""When a journey may message an endpoint (clarion/journeys/sending.py): quiet time's end across DST changes and time
zones, and the sending schedule (open hours per weekday in the endpoint's local time, closed days as instants)."""

from __future__ import annotations

from datetime import UTC, datetime

from clarion.journeys.sending import next_sending_time, quiet_time_ends
from clarion.messages.policy import QuietTime

NIGHT = QuietTime(start="22:00", end="07:00")


def test_quiet_time_ends_by_the_wall_clock_across_dst_changes() -> None:
    # Berlin leaves summer time on 2026-10-25 at 03:00 CEST: 22:30 CEST is 20:30Z, 07:00 CET the next day is 06:00Z.
    autumn = datetime(2026, 10, 24, 20, 30, tzinfo=UTC)
    assert quiet_time_ends(autumn, NIGHT, "Europe/Berlin") == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)
    # ... and enters it on 2026-03-29 at 02:00 CET: 23:00 CET is 22:00Z, 07:00 CEST the next day is 05:00Z.
    spring = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    assert quiet_time_ends(spring, NIGHT, "Europe/Berlin") == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    # After midnight the end is the same morning; in another zone, that zone's morning.
    early = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 22:00 in New York the evening before
    assert quiet_time_ends(early, NIGHT, "America/New_York") == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert quiet_time_ends(early, NIGHT, "Asia/Tokyo") == datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    assert quiet_time_ends(early, NIGHT, None) == early  # no zone: no quiet time to wait for


WEEKDAYS = {"MONDAY": [{"StartTime": "09:00", "EndTime": "17:00"}]}


def test_open_hours_read_the_endpoints_local_time() -> None:
    sunday = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # Sunday 10:00 in New York
    monday_nine = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # Monday 09:00 EST
    assert next_sending_time(sunday, "America/New_York", WEEKDAYS, []) == monday_nine
    assert next_sending_time(monday_nine, "America/New_York", WEEKDAYS, []) is None  # open
    # It is already Monday 00:00 in Tokyo: its 09:00 comes first, at Monday 00:00Z.
    assert next_sending_time(sunday, "Asia/Tokyo", WEEKDAYS, []) == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert next_sending_time(sunday, None, {}, []) is None  # no schedule for the channel


def test_closed_days_push_past_the_open_hours_they_cover() -> None:
    monday = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York, inside its open hours
    closed = [{"Name": "holiday", "StartDateTime": "2026-11-30T00:00:00Z", "EndDateTime": "2026-12-01T00:00:00Z"}]
    # Closed until Monday 19:00 EST, after that day's hours: the next opening is a week later.
    assert next_sending_time(monday, "America/New_York", WEEKDAYS, closed) == datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert next_sending_time(monday, "America/New_York", None, closed) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
