"""Each project's channel records as the send path needs them, read and decrypted once, not once per message.

Every send asks which transport carries it and with what channel record; reading the row and opening its sealed
secrets cost more per push message than the rest of the lookup. Records change only through the channel API (and
with their project's deletion), whose writes record ChannelChanged and AppChanged: every process of the group hears
them (clarion/domain_events.py) and drops what it kept, and drops everything when it may have missed some.

A read that was under way while a change was heard is answered but not kept, so a record read before a change can
never outlive it in the cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from clarion.domain_events import AppChanged, Change, ChannelChanged

Record = Mapping[str, Any] | None  # None: the project never configured the channel
Loader = Callable[[str, str], Awaitable[Record]]


class ChannelCache:
    def __init__(self, load: Loader) -> None:
        self._load = load
        self._records: dict[tuple[str, str], Record] = {}
        self._generation = 0  # moves on with every change heard

    async def get(self, app_id: str, channel_type: str) -> Record:
        key = (app_id, channel_type)
        try:
            return self._records[key]
        except KeyError:
            pass
        generation = self._generation
        record = await self._load(app_id, channel_type)
        if generation == self._generation:
            self._records[key] = record
        return record

    def channel_changed(self, event: ChannelChanged) -> None:
        self._generation += 1
        self._records.pop((event.app_id, event.channel_type), None)

    def app_changed(self, event: AppChanged) -> None:
        if event.change is Change.DELETED:
            self._generation += 1
            self._records = {key: record for key, record in self._records.items() if key[0] != event.app_id}

    def clear(self) -> None:
        self._generation += 1
        self._records.clear()
