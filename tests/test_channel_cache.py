"""The send path's channel records (clarion/channels/cache.py): read once, dropped when a change is heard, and a read
that overlapped a change is not kept. Across processes: tests/test_process_group.py."""

from __future__ import annotations

import asyncio
from typing import Any

from clarion.channels.cache import ChannelCache
from clarion.domain_events import AppChanged, Change, ChannelChanged


class Records:
    """The stored records, with a count of reads and a gate that holds a read until the test opens it."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], dict[str, Any]] = {("app", "GCM"): {"Version": 1}}
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self, app_id: str, channel_type: str) -> dict[str, Any] | None:
        self.reads += 1
        found = self.stored.get((app_id, channel_type))
        await self.gate.wait()
        return found


def test_a_record_is_read_once_until_a_change_is_heard() -> None:
    async def scenario() -> None:
        records = Records()
        cache = ChannelCache(records.load)
        assert [await cache.get("app", "GCM") for _ in range(3)] == [{"Version": 1}] * 3
        assert await cache.get("app", "SMS") is None and await cache.get("app", "SMS") is None  # absence is kept too
        assert records.reads == 2
        records.stored[("app", "GCM")] = {"Version": 2}
        cache.channel_changed(ChannelChanged("app", "GCM", Change.UPDATED))
        assert await cache.get("app", "GCM") == {"Version": 2}
        cache.app_changed(AppChanged("app", Change.DELETED))
        records.stored.clear()
        assert await cache.get("app", "GCM") is None and records.reads == 4

    asyncio.run(scenario())


def test_a_read_that_overlapped_a_change_is_answered_but_not_kept() -> None:
    async def scenario() -> None:
        records = Records()
        cache = ChannelCache(records.load)
        records.gate.clear()
        reading = asyncio.create_task(cache.get("app", "GCM"))  # reads version 1, then waits at the gate
        await asyncio.sleep(0)
        records.stored[("app", "GCM")] = {"Version": 2}
        cache.channel_changed(ChannelChanged("app", "GCM", Change.UPDATED))
        records.gate.set()
        assert await reading == {"Version": 1}
        assert await cache.get("app", "GCM") == {"Version": 2}  # read again, not the overlapped answer

    asyncio.run(scenario())
