"""What one render may spend: templates are programs written by tenants, so every render runs on a budget.

A render is metered in *steps* (one per helper call, block body call, loop iteration and partial call), partial
*depth*, *output* characters and wall *time*. Steps are counted where they are cheap to count: a loop charges
all its iterations before it starts, and the clock is read only once every `CLOCK_EVERY` steps, so a typical
email pays almost nothing for being metered. Output is measured per loop iteration, per helper result, per
partial and every few values a program appends, so no buffer grows far past the limit before it is noticed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

__all__ = ["CLOCK_EVERY", "EXCEEDED", "BudgetExceeded", "Limits", "RenderError", "exceeded"]

CLOCK_EVERY = 64  # steps between two looks at the clock


@dataclass(frozen=True, slots=True)
class Limits:
    """The most one message's renders may spend (the operator's `[templates]` settings)."""

    steps: int = 50_000
    depth: int = 32  # nested partial calls
    output: int = 2_000_000  # characters of one rendered part
    seconds: float = 0.05


class RenderError(Exception):
    """A template that compiled but cannot render with this data: the message fails, nothing else does."""


class BudgetExceeded(RenderError):
    """A render that would spend more than its `Limits`; `budget` names which one (steps, depth, output, time)."""

    def __init__(self, budget: str, message: str) -> None:
        super().__init__(message)
        self.budget = budget


# Renders stopped by each budget since the process started (read by clarion/metrics.py).
EXCEEDED: Counter[str] = Counter()


def exceeded(budget: str, message: str) -> BudgetExceeded:
    EXCEEDED[budget] += 1
    return BudgetExceeded(budget, message)
