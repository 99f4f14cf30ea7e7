"""Which treatment (or the holdout) each endpoint of a campaign falls in.

Pinpoint allocates by the endpoint's CohortId, a stable 0–99 bucket, so an endpoint stays in the same treatment
across runs. Clarion turns the bucket by an offset derived from the campaign id: every campaign still splits its
audience by the given percentages, but the same 10 % of a project's endpoints are not held out of every campaign.
Buckets [0, holdout) are the holdout, then each additional treatment in order, then the default treatment ("0").
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from clarion.messages.policy import DEFAULT_SLOT, HOLDOUT

DEFAULT_TREATMENT = DEFAULT_SLOT


@dataclass(frozen=True, slots=True)
class Allocation:
    """The send policy's allocator for one campaign (clarion/messages/policy.py)."""

    campaign_id: str
    bounds: tuple[int, ...]  # exclusive upper bucket of each slot
    slots: tuple[str, ...]  # HOLDOUT, "1".."4", DEFAULT_TREATMENT

    @classmethod
    def of(cls, campaign_id: str, holdout_percent: int, treatment_sizes: Sequence[int]) -> Allocation:
        bounds, slots, upper = [], [], 0
        for slot, size in [(HOLDOUT, holdout_percent)] + [
            (str(index), size) for index, size in enumerate(treatment_sizes, start=1)
        ]:
            if size:
                upper += size
                bounds.append(upper)
                slots.append(slot)
        bounds.append(100)
        slots.append(DEFAULT_TREATMENT)
        return cls(campaign_id, tuple(bounds), tuple(slots))

    def slot(self, cohort_id: int) -> str:
        bucket = (cohort_id + zlib.crc32(self.campaign_id.encode())) % 100
        return self.slots[bisect.bisect_right(self.bounds, bucket)]
