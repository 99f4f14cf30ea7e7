"""Shared domain events cross processes as PostgreSQL notifications (clarion/store/notices.py): a listener hears
another process's event, decoded to its type, and not its own process's or a kind it does not know."""

from __future__ import annotations

import queue

import psycopg
import pytest
from conftest import reset_postgres

from clarion.domain_events import NamesAdded
from clarion.store import notices
from clarion.store.database import connect_postgres

pytestmark = pytest.mark.postgres


def test_a_listener_hears_other_processes_events_only(postgres_url: str) -> None:
    reset_postgres(postgres_url)
    heard: queue.Queue[object | None] = queue.Queue()
    listener = notices.Listener(lambda: connect_postgres(postgres_url), heard.put)
    try:
        assert listener.listening.wait(10)
        own = notices.encode(NamesAdded("app-1", "attribute"))
        assert own is not None
        other = own.replace(notices.ORIGIN, "otherprocess", 1)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for payload in (own, "otherprocess|NoSuchEvent|{}", other):
                conn.execute("SELECT pg_notify(%s, %s)", (notices.CHANNEL, payload))
        assert heard.get(timeout=5) == NamesAdded("app-1", "attribute")
        assert heard.empty()  # its own and the unknown kind were dropped
    finally:
        listener.close()


def test_only_shared_events_are_encoded() -> None:
    assert notices.encode(object()) is None
    payload = notices.encode(NamesAdded("a", "metric"))
    assert payload is not None and notices.decode(payload) is None  # this process's own
