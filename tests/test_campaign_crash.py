"""A campaign survives SIGKILL: a real `clarion serve` process is killed while it delivers, restarted on the same
store, and finishes with every eligible endpoint messaged — at most one batch twice, and those counted
(tests/campaign_crash.py has the scenario).

Here the campaign has a few thousand recipients (CLARION_CRASH_ENDPOINTS changes it); bench/campaign_crash.py runs
the same scenario and checks at 100,000 on both stores (docs/benchmarks.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from campaign_crash import check_nothing_lost, crash_and_restart
from smtp_relay import Relay

from clarion.config import Settings

ENDPOINTS = int(os.environ.get("CLARION_CRASH_ENDPOINTS", "3000"))


def test_sigkill_during_delivery_loses_nothing_and_duplicates_at_most_a_batch(
    settings: Settings, relay: tuple[Relay, int], tmp_path: Path
) -> None:
    check_nothing_lost(crash_and_restart(settings, relay, tmp_path / "server.log", ENDPOINTS))
