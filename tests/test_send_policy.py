"""The send policy campaigns and journeys share, as the pure function it is: who is sent to, by slot, and who is
skipped and why (clarion/messages/policy.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from clarion.campaigns.treatments import Allocation
from clarion.endpoints.service import cohort_of
from clarion.messages.policy import (
    DEFAULT_SLOT,
    Limits,
    QuietTime,
    SendHistory,
    SendPolicy,
    Skipped,
    decide,
)
from clarion.store.endpoints import EndpointRow

NOW = datetime(2026, 7, 1, 21, 30, tzinfo=UTC)  # 23:30 in Paris (summer time)


def endpoint(endpoint_id: str, timezone: str | None = None) -> EndpointRow:
    doc = {"ChannelType": "EMAIL", "Address": f"{endpoint_id}@example.org"}
    if timezone:
        doc["Demographic"] = {"Timezone": timezone}
    return EndpointRow(
        app_id="app",
        endpoint_key=endpoint_id,
        id=endpoint_id,
        channel_type="EMAIL",
        address=f"{endpoint_id}@example.org",
        endpoint_status="ACTIVE",
        opt_out="NONE",
        user_id=None,
        cohort_id=cohort_of(endpoint_id),
        created_at="2026-01-01T00:00:00.000Z",
        effective_at="2026-01-01T00:00:00.000Z",
        doc=msgspec.json.encode(doc).decode(),
    )


def sent_ids(decision_slots: dict[str, list[EndpointRow]]) -> dict[str, list[str]]:
    return {slot: [row.id for row in rows] for slot, rows in decision_slots.items()}


def test_without_limits_or_allocation_everyone_is_sent_in_the_default_slot() -> None:
    rows = [endpoint("a"), endpoint("b")]
    decision = decide(rows, SendPolicy(), SendHistory(), NOW, NOW)
    assert sent_ids(decision.slots) == {DEFAULT_SLOT: ["a", "b"]} and decision.skipped == {}


def test_daily_and_total_limits_skip_endpoints_at_their_limit() -> None:
    rows = [endpoint("fresh"), endpoint("busy-today"), endpoint("busy-ever")]
    history = SendHistory(daily={"busy-today": 2}, total={"busy-today": 2, "busy-ever": 5})
    decision = decide(rows, SendPolicy(Limits(daily=2, total=5)), history, NOW, NOW)
    assert sent_ids(decision.slots) == {DEFAULT_SLOT: ["fresh"]}
    assert decision.skipped == {DEFAULT_SLOT: Skipped(limit=2)}


def test_quiet_time_needs_a_known_zone_and_both_ends() -> None:
    rows = [endpoint("paris", "Europe/Paris"), endpoint("tokyo", "Asia/Tokyo"), endpoint("nowhere")]
    night = QuietTime(start="22:00", end="07:00")  # wraps midnight: 23:30 in Paris is quiet, 06:30 in Tokyo too
    decision = decide(rows, SendPolicy(quiet_time=night), SendHistory(), NOW, NOW)
    assert sent_ids(decision.slots) == {DEFAULT_SLOT: ["nowhere"]}
    assert decision.skipped == {DEFAULT_SLOT: Skipped(quiet_time=2)}
    half = decide(rows, SendPolicy(quiet_time=QuietTime(start="22:00")), SendHistory(), NOW, NOW)
    assert sent_ids(half.slots) == {DEFAULT_SLOT: ["paris", "tokyo", "nowhere"]}


def test_quiet_time_judges_the_scheduled_time_and_maximum_duration_the_clock() -> None:
    rows = [endpoint("paris", "Europe/Paris")]
    night = QuietTime(start="22:00", end="07:00")
    scheduled = NOW - timedelta(hours=3)  # 20:30 in Paris: not quiet, although the batch runs late
    decision = decide(rows, SendPolicy(quiet_time=night), SendHistory(), scheduled, NOW)
    assert sent_ids(decision.slots) == {DEFAULT_SLOT: ["paris"]}
    late = SendPolicy(Limits(maximum_duration=60), due_at=NOW - timedelta(seconds=61))
    expired = decide([endpoint("a"), endpoint("b")], late, SendHistory(), NOW, NOW)
    assert expired.slots == {} and expired.skipped == {DEFAULT_SLOT: Skipped(expired=2)}


def test_the_holdout_is_counted_in_the_default_slot_and_treatments_get_their_members() -> None:
    rows = [endpoint(f"ep-{n}") for n in range(400)]
    allocation = Allocation.of("campaign", 25, [25])
    decision = decide(rows, SendPolicy(allocation=allocation), SendHistory(), NOW, NOW)
    held_out = decision.skipped[DEFAULT_SLOT].holdout
    assert set(decision.slots) == {"0", "1"}
    assert 0.15 * 400 <= held_out <= 0.35 * 400 and 0.15 * 400 <= len(decision.slots["1"]) <= 0.35 * 400
    assert all(allocation.slot(row.cohort_id) == "1" for row in decision.slots["1"])


def test_project_limits_fill_only_what_the_campaign_leaves_unset() -> None:
    merged = Limits(daily=0, messages_per_second=50).over(Limits(daily=3, total=10, messages_per_second=5))
    assert merged == Limits(daily=0, total=10, messages_per_second=50)


@given(
    st.lists(st.sampled_from(["Europe/Paris", "Asia/Tokyo", "America/Lima", None]), min_size=1, max_size=40),
    st.integers(0, 40),
    st.integers(0, 60),
    st.integers(0, 3),
)
def test_every_endpoint_is_either_sent_or_skipped_once(
    zones: list[str | None], holdout: int, treatment: int, daily: int
) -> None:
    rows = [endpoint(f"ep-{n}", zone) for n, zone in enumerate(zones)]
    policy = SendPolicy(
        Limits(daily=daily or None),
        QuietTime(start="22:00", end="07:00"),
        Allocation.of("c", holdout, [treatment] if treatment else []),
    )
    history = SendHistory(daily={row.id: n % 4 for n, row in enumerate(rows)})
    decision = decide(rows, policy, history, NOW, NOW)
    sent = [row.id for group in decision.slots.values() for row in group]
    counted = sum(s.holdout + s.limit + s.quiet_time + s.expired for s in decision.skipped.values())
    assert len(sent) == len(set(sent)) and len(sent) + counted == len(rows)
