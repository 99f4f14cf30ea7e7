"""Domain events that cross process boundaries: on PostgreSQL, a write that records one of `SHARED_EVENTS` also
queues a notification on the `clarion_changes` channel. PostgreSQL delivers it only if the transaction commits
(and drops it with a savepoint that rolls back), so no process hears of a write that did not happen, and every
process listening hears of it within milliseconds of the commit.

Each process listens on a connection of its own (`Listener`) and hands the events other processes wrote to the
subscribers that keep caches (`Subscriptions.dispatch_elsewhere`). A listener that lost its connection may have
missed notifications; on reconnecting it reports that, and those caches are dropped whole.

The embedded store is one process: its writes reach its subscribers directly, and nothing is sent.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from clarion.domain_events import SHARED_EVENTS
from clarion.logs import get_logger

CHANNEL = "clarion_changes"
# Who wrote: a process skips its own notifications (its subscribers heard the event already).
ORIGIN = uuid.uuid4().hex[:12]
_BY_NAME = {kind.__name__: kind for kind in SHARED_EVENTS}
_RECONNECT_SECONDS = 1.0

log = get_logger("clarion.store")

# Receives another process's events, or None when notifications may have been missed (drop every cache).
Heard = Callable[[object | None], None]


def encode(event: object) -> str | None:
    """The notification payload for a shared event; None for an event no other process needs."""
    name = type(event).__name__
    if name not in _BY_NAME:
        return None
    return f"{ORIGIN}|{name}|{msgspec.json.encode(event).decode()}"


def decode(payload: str) -> object | None:
    """The event another process wrote; None for this process's own or a kind this version does not know."""
    origin, _, rest = payload.partition("|")
    name, _, body = rest.partition("|")
    kind = _BY_NAME.get(name)
    if origin == ORIGIN or kind is None:
        return None
    return msgspec.json.decode(body, type=kind)


class Listener:
    """A thread holding one connection that LISTENs, handing each event heard to `heard` (from that thread)."""

    def __init__(self, connect: Callable[[], Any], heard: Heard) -> None:
        self._connect = connect
        self._heard = heard
        self._stopping = threading.Event()
        # close() notifies this listener alone on a channel of its own, so it stops at once rather than at its
        # next poll.
        self._wake = f"{CHANNEL}_stop_{uuid.uuid4().hex[:12]}"
        self.listening = threading.Event()  # set once the first LISTEN is in place
        self._thread = threading.Thread(target=self._run, name="clarion-notices", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                conn = self._connect()
            except Exception as error:
                log.warning("notices_connect_failed", error=str(error))
                time.sleep(_RECONNECT_SECONDS)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                conn.execute(f"LISTEN {self._wake}")
                self.listening.set()
                if not first:
                    self._heard(None)  # what was written while nobody listened is unknown
                first = False
                while not self._stopping.is_set():
                    for notice in conn.notifies(timeout=0.5):
                        if notice.channel == self._wake:
                            break
                        event = decode(notice.payload)
                        if event is not None:
                            self._heard(event)
            except Exception as error:
                if not self._stopping.is_set():
                    log.warning("notices_connection_lost", error=str(error))
                    time.sleep(_RECONNECT_SECONDS)
            finally:
                conn.close()

    def close(self) -> None:
        self._stopping.set()
        if self.listening.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"NOTIFY {self._wake}")
            except Exception as error:  # it stops at its next poll instead
                log.warning("notices_wake_failed", error=str(error))
        self._thread.join(timeout=5)
