"""Campaign timing and treatment allocation as plain functions: runs, local time across zones and DST changes,
quiet time, and deterministic treatment splits within statistical tolerance."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.campaigns.schedule import endpoint_send_time, next_run, parse_offset, runs
from clarion.campaigns.treatments import DEFAULT_TREATMENT, HOLDOUT, Allocation
from clarion.endpoints.service import cohort_of
from clarion.messages.policy import in_quiet_time


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_recurring_runs_stop_at_end_time() -> None:
    start = utc(2026, 1, 1, 9)
    assert list(runs(start, "DAILY", utc(2026, 1, 3, 9))) == [start, utc(2026, 1, 2, 9), utc(2026, 1, 3, 9)]
    assert list(runs(start, "ONCE", utc(2026, 2, 1))) == [start]
    assert len(list(runs(start, "HOURLY", utc(2026, 1, 1, 20)))) == 12
    assert list(runs(start, "WEEKLY", utc(2026, 1, 20)))[-1] == utc(2026, 1, 15, 9)


def test_monthly_runs_keep_the_day_or_use_the_last_one() -> None:
    start = utc(2026, 1, 31, 8)
    assert list(runs(start, "MONTHLY", utc(2026, 5, 1))) == [
        start,
        utc(2026, 2, 28, 8),
        utc(2026, 3, 31, 8),
        utc(2026, 4, 30, 8),
    ]


@pytest.mark.parametrize("frequency", ["HOURLY", "DAILY", "WEEKLY", "MONTHLY"])
def test_next_run_matches_walking_the_runs(frequency: str) -> None:
    start, end = utc(2026, 1, 31, 8), utc(2027, 1, 1)
    every = list(runs(start, frequency, end))
    for after in [start - timedelta(seconds=1), start, every[len(every) // 2], every[-1], end]:
        expected = next((at for at in every if at > after), None)
        assert next_run(start, frequency, end, after) == expected


def test_offsets() -> None:
    assert parse_offset("UTC+05:30").utcoffset(None) == timedelta(hours=5, minutes=30)
    assert parse_offset("UTC-03").utcoffset(None) == timedelta(hours=-3)
    assert parse_offset(None).utcoffset(None) == timedelta(0)


def test_local_time_sends_at_the_same_wall_clock_in_every_zone() -> None:
    # 09:00 at UTC-05 is 14:00 UTC; local time means 09:00 wherever the endpoint is.
    run = utc(2026, 6, 1, 14)
    assert endpoint_send_time(run, True, "UTC-05", "Asia/Tokyo") == utc(2026, 6, 1, 0)
    assert endpoint_send_time(run, True, "UTC-05", "Europe/Paris") == utc(2026, 6, 1, 7)
    assert endpoint_send_time(run, True, "UTC-05", "America/New_York") == utc(2026, 6, 1, 13)  # EDT is -4
    assert endpoint_send_time(run, True, "UTC-05", None) == run  # no zone: the schedule's offset
    assert endpoint_send_time(run, True, "UTC-05", "Mars/Olympus") == run
    assert endpoint_send_time(run, False, "UTC-05", "Asia/Tokyo") == run


def test_local_time_across_dst_changes() -> None:
    # New York springs forward on 2026-03-08 at 02:00 (02:30 does not exist) and falls back on 2026-11-01.
    skipped = endpoint_send_time(utc(2026, 3, 8, 2, 30), True, "UTC", "America/New_York")
    assert skipped == utc(2026, 3, 8, 7, 30)  # read at -05: 03:30 EDT, after the gap
    repeated = endpoint_send_time(utc(2026, 11, 1, 1, 30), True, "UTC", "America/New_York")
    assert repeated == utc(2026, 11, 1, 5, 30)  # the first 01:30 (EDT, -04)
    before = endpoint_send_time(utc(2026, 3, 7, 9), True, "UTC", "America/New_York")
    after = endpoint_send_time(utc(2026, 3, 9, 9), True, "UTC", "America/New_York")
    assert (before.hour, after.hour) == (14, 13)  # 09:00 local both days, one hour apart in UTC


@pytest.mark.parametrize(
    ("local_hour", "start", "end", "quiet"),
    [(23, "22:00", "07:00", True), (6, "22:00", "07:00", True), (7, "22:00", "07:00", False),
     (12, "22:00", "07:00", False), (13, "12:00", "14:00", True), (14, "12:00", "14:00", False)],
)  # fmt: skip
def test_quiet_time_in_the_endpoint_zone(local_hour: int, start: str, end: str, quiet: bool) -> None:
    send_at = utc(2026, 1, 15, local_hour) - timedelta(hours=1)  # Europe/Paris is UTC+1 in January
    assert in_quiet_time(send_at, start, end, "Europe/Paris") is quiet
    assert in_quiet_time(send_at, start, end, None) is False  # quiet time needs a known zone


def test_quiet_time_follows_dst() -> None:
    # 21:30 UTC is 22:30 in Paris in winter (quiet) but 23:30 in summer (also quiet); 20:30 UTC in summer is 22:30.
    assert in_quiet_time(utc(2026, 7, 1, 20, 30), "22:00", "23:00", "Europe/Paris")
    assert not in_quiet_time(utc(2026, 1, 1, 20, 30), "22:00", "23:00", "Europe/Paris")


def test_allocation_is_stable_and_complete() -> None:
    allocation = Allocation.of("c1", 10, [30, 20])
    assert {allocation.slot(cohort) for cohort in range(100)} == {HOLDOUT, "1", "2", DEFAULT_TREATMENT}
    counts = Counter(allocation.slot(cohort) for cohort in range(100))
    assert counts == {HOLDOUT: 10, "1": 30, "2": 20, DEFAULT_TREATMENT: 40}
    assert [allocation.slot(c) for c in range(100)] == [Allocation.of("c1", 10, [30, 20]).slot(c) for c in range(100)]
    assert Counter(Allocation.of("c1", 0, []).slot(c) for c in range(100)) == {DEFAULT_TREATMENT: 100}


def test_campaigns_hold_out_different_endpoints() -> None:
    first, second = Allocation.of("campaign-a", 10, []), Allocation.of("campaign-b", 10, [])
    held = [{c for c in range(100) if allocation.slot(c) == HOLDOUT} for allocation in (first, second)]
    assert held[0] != held[1] and len(held[0]) == len(held[1]) == 10


@given(
    holdout=st.integers(0, 40),
    sizes=st.lists(st.integers(1, 15), max_size=4),
    campaign=st.uuids(),
)
def test_endpoint_shares_match_the_percentages(holdout: int, sizes: list[int], campaign: uuid.UUID) -> None:
    """Over 20,000 endpoint ids, each slot's share is within 2 points of its percentage."""
    allocation = Allocation.of(campaign.hex, holdout, sizes)
    counts = Counter(allocation.slot(cohort_of(f"endpoint-{n}")) for n in range(20_000))
    expected = {HOLDOUT: holdout, **{str(i): size for i, size in enumerate(sizes, start=1)}}
    expected[DEFAULT_TREATMENT] = 100 - holdout - sum(sizes)
    for slot, percent in expected.items():
        assert abs(100 * counts.get(slot, 0) / 20_000 - percent) <= 2, (slot, percent, counts)
