"""Who of a set of endpoints is sent a message now: the send policy campaigns and journeys share, as one pure function.

`decide` takes the endpoints, the policy (limits, quiet time, an allocation into treatments, when the send was due),
what the message log says was already sent to them, and the time; it returns who is sent what (by slot, the
treatment id) and who is skipped, counted by reason. It reads nothing and writes nothing: the caller reads the
history first (`Delivery.audience` does) and sends afterwards.

- **Allocation**: an endpoint's CohortId picks its slot; the holdout slot is skipped (counted in the default slot).
- **Daily / Total** (`Limits`): an endpoint already sent `Daily` messages in the last 24 hours, or `Total` ever, by
  the same campaign or journey, is skipped.
- **Quiet time** applies only to endpoints with a valid time zone: one whose local time at `send_at` falls in
  [Start, End) is skipped, as Pinpoint does (not queued for later); a window whose End is before its Start wraps
  midnight (22:00–07:00).
- **MaximumDuration**: a send more than that many seconds past its due time is dropped whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from clarion.endpoints.service import endpoint_timezone
from clarion.store.endpoints import EndpointRow

HOLDOUT = "holdout"  # the slot of endpoints held out of a campaign
DEFAULT_SLOT = "0"  # the default treatment; the only slot of a send without an allocation


class QuietTime(msgspec.Struct, frozen=True, rename="pascal", omit_defaults=True):
    """Schedule.QuietTime or the project's QuietTime: 24-hour HH:MM, both needed for it to apply."""

    start: str | None = None
    end: str | None = None

    @property
    def is_set(self) -> bool:
        return bool(self.start and self.end)

    def covers(self, send_at: datetime, endpoint_zone: str | None) -> bool:
        return (
            self.start is not None
            and self.end is not None
            and in_quiet_time(send_at, self.start, self.end, endpoint_zone)
        )


class Limits(msgspec.Struct, frozen=True, rename="pascal", omit_defaults=True):
    """CampaignLimits (and the project's Limits): each member None when not set."""

    daily: int | None = None
    total: int | None = None
    session: int | None = None
    messages_per_second: int | None = None
    maximum_duration: int | None = None  # seconds

    def over(self, defaults: Limits) -> Limits:
        """These limits, with `defaults` filling each member left unset."""
        fallback = msgspec.structs.asdict(defaults)
        own = msgspec.structs.asdict(self).items()
        return Limits(**{name: fallback[name] if value is None else value for name, value in own})


class Allocator(Protocol):
    """Which slot (treatment id or HOLDOUT) an endpoint of this CohortId falls in (clarion/campaigns/treatments.py)."""

    def slot(self, cohort_id: int) -> str: ...


@dataclass(frozen=True, slots=True)
class SendPolicy:
    limits: Limits = field(default_factory=Limits)
    quiet_time: QuietTime | None = None
    allocation: Allocator | None = None
    due_at: datetime | None = None  # when the send was due; MaximumDuration counts from it

    def expired(self, now: datetime) -> bool:
        maximum = self.limits.maximum_duration
        return bool(maximum and self.due_at and now > self.due_at + timedelta(seconds=maximum))


@dataclass(frozen=True, slots=True)
class SendHistory:
    """Messages per endpoint id the same campaign or journey already sent: in the last 24 hours, and ever."""

    daily: Mapping[str, int] = field(default_factory=dict)
    total: Mapping[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Skipped:
    """Endpoints a policy skipped, by reason (an activity's ExecutionMetrics)."""

    holdout: int = 0
    limit: int = 0
    quiet_time: int = 0
    expired: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    slots: dict[str, list[EndpointRow]]  # who is sent, by slot, in the order given
    skipped: dict[str, Skipped]  # by slot


def decide(
    rows: Iterable[EndpointRow], policy: SendPolicy, history: SendHistory, send_at: datetime, now: datetime
) -> Decision:
    """Apply the policy to these endpoints. Quiet time judges `send_at` (the time the message was scheduled for, so
    a late batch is judged like a timely one); MaximumDuration judges `now`."""
    slots: dict[str, list[EndpointRow]] = {}
    skipped: dict[str, Skipped] = {}

    def skip(slot: str) -> Skipped:
        return skipped.setdefault(slot, Skipped())

    rows = list(rows)
    if policy.expired(now):
        if rows:
            skip(DEFAULT_SLOT).expired += len(rows)
        return Decision(slots, skipped)
    limits = policy.limits
    quiet = policy.quiet_time if policy.quiet_time is not None and policy.quiet_time.is_set else None
    for row in rows:
        slot = policy.allocation.slot(row.cohort_id) if policy.allocation else DEFAULT_SLOT
        if slot == HOLDOUT:
            skip(DEFAULT_SLOT).holdout += 1
        elif (limits.daily and history.daily.get(row.id, 0) >= limits.daily) or (
            limits.total and history.total.get(row.id, 0) >= limits.total
        ):
            skip(slot).limit += 1
        elif quiet is not None and quiet.covers(send_at, endpoint_timezone(row)):
            skip(slot).quiet_time += 1
        else:
            slots.setdefault(slot, []).append(row)
    return Decision(slots, skipped)


@lru_cache(maxsize=1024)
def zone_of(name: str | None) -> ZoneInfo | None:
    """An endpoint's Demographic.Timezone as a zone, or None when it is missing or not an IANA name."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def in_quiet_time(send_at: datetime, quiet_start: str, quiet_end: str, endpoint_timezone: str | None) -> bool:
    """Whether a message sent at `send_at` would reach the endpoint during its quiet hours."""
    zone = zone_of(endpoint_timezone)
    if zone is None:
        return False
    local = send_at.astimezone(zone).time().replace(second=0, microsecond=0)
    start, end = parse_clock(quiet_start), parse_clock(quiet_end)
    if start <= end:
        return start <= local < end
    return local >= start or local < end
