"""The one clock. Injected everywhere so that tests control time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def iso_millis(moment: datetime) -> str:
    """Pinpoint's date strings: UTC, millisecond precision, trailing Z (2019-07-02T23:12:54.836Z)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
