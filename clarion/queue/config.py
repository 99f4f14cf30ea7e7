"""Operator settings for the work queue and the worker loop each process runs (docs/queue.md)."""

from __future__ import annotations

from pydantic import BaseModel


class QueueSettings(BaseModel):
    # Worker loops this process runs; 0 makes an API-only process (another process does the work).
    workers: int = 1
    # How long a leased item stays invisible to other workers; a worker that dies mid-item makes it ready again
    # after this long. Long work extends its lease as it commits progress.
    visibility_seconds: float = 60.0
    # How often an idle worker looks for due items (items enqueued by this process wake it at once).
    poll_seconds: float = 1.0
    # Items leased per round trip.
    lease_batch: int = 10
    # Deliveries before a failing item is given up on (it stays in queue_items with its last error).
    max_attempts: int = 8
    # First retry delay; it doubles with each attempt, up to max_retry_delay_seconds.
    retry_delay_seconds: float = 1.0
    max_retry_delay_seconds: float = 300.0
