"""The loop of a background engine that looks for due work in passes (the campaign scheduler, the journey engine).

A pass runs, then the loop waits until it is woken (a write in this process that makes work due sets the event)
or `poll_seconds` pass, whichever is first: other processes' writes are found by the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from structlog.stdlib import BoundLogger


async def run_passes(
    one_pass: Callable[[], Awaitable[object]], wakeup: asyncio.Event, poll_seconds: float, log: BoundLogger, failed: str
) -> None:
    """Forever (until cancelled). A failing pass is logged as `failed` and must not stop the engine: the next pass
    retries."""
    while True:
        try:
            await one_pass()
        except Exception:
            log.exception(failed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), poll_seconds)
        wakeup.clear()
