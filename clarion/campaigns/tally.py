"""What one batch did for one treatment, counted: added to the run's activity when the batch commits.

`targeted` and `successful` are the activity's TotalEndpointCount and SuccessfulEndpointCount; the other counters
are its ExecutionMetrics (docs/campaigns.md), stored as strings, each added to what earlier batches counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clarion.messages.policy import Skipped

# Counter -> its name in ExecutionMetrics.
METRIC_NAMES = {
    "holdout": "HoldoutEndpoints",
    "limit_skipped": "LimitSkippedEndpoints",
    "quiet_time_skipped": "QuietTimeSkippedEndpoints",
    "expired": "ExpiredEndpoints",
    "hook_filtered": "HookFilteredEndpoints",
    "hook_failed": "HookFailedEndpoints",
    "retried": "RetriedEndpoints",
    "gave_up": "GaveUpEndpoints",
}


@dataclass(slots=True)
class Tally:
    targeted: int = 0
    successful: int = 0
    holdout: int = 0
    limit_skipped: int = 0
    quiet_time_skipped: int = 0
    expired: int = 0
    hook_filtered: int = 0
    hook_failed: int = 0
    retried: int = 0
    gave_up: int = 0

    def add_skipped(self, skipped: Skipped) -> None:
        self.holdout += skipped.holdout
        self.limit_skipped += skipped.limit
        self.quiet_time_skipped += skipped.quiet_time
        self.expired += skipped.expired

    def metrics_over(self, stored: Mapping[str, str]) -> dict[str, str]:
        """An activity's stored ExecutionMetrics with this tally's counters added (those it counted any of)."""
        metrics = dict(stored)
        for counter, name in METRIC_NAMES.items():
            value = getattr(self, counter)
            if value:
                metrics[name] = str(int(metrics.get(name, "0")) + value)
        return metrics
