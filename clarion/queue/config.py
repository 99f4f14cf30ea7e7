"""Operator settings for the work queue and the worker loop each process runs (docs/queue.md)."""

from __future__ import annotations

from pydantic import Field

from clarion.settings_model import SettingsModel


class QueueSettings(SettingsModel):
    # Worker loops this process runs; 0 makes an API-only process (another process does the work).
    workers: int = 1
    # How long a leased item stays invisible to other workers unless its holder renews the lease: the worker
    # renews the leases of the items it runs every third of this (a heartbeat), so a worker that dies or freezes
    # mid-item leaves it ready for another process within this long.
    visibility_seconds: float = Field(default=10.0, gt=0.5)
    # How often an idle worker looks for due items (items enqueued by this process wake it at once).
    poll_seconds: float = 1.0
    # Items one worker loop runs at once; it takes the next ready item as soon as any one finishes.
    concurrency: int = Field(default=8, ge=1)
    # Of those, at most this many for one project (when lower than concurrency), so that one project's many or
    # slow items leave room for the others'.
    project_concurrency: int = Field(default=4, ge=1)
    # Deliveries before a failing item is buried (kept in queue_items with its reason, reported by its kind).
    max_attempts: int = Field(default=8, ge=1)
    # First retry delay; it doubles with each attempt, up to max_retry_delay_seconds.
    retry_delay_seconds: float = 1.0
    max_retry_delay_seconds: float = 300.0
    # Longest one delivery of an item may run before it is abandoned and counted as a failed attempt; by kind,
    # with item_timeout_seconds for the kinds not listed. An import file has jobs.transfer_timeout_seconds to
    # download within this.
    item_timeout_seconds: float = Field(default=600.0, gt=0)
    kind_timeout_seconds: dict[str, float] = Field(
        default_factory=lambda: {"import.piece": 3600.0, "export.run": 3600.0, "analytics.export": 3600.0}
    )

    def timeout_for(self, kind: str) -> float:
        return self.kind_timeout_seconds.get(kind, self.item_timeout_seconds)
