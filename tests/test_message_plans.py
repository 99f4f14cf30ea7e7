"""Finding a logged message by the id its provider gave it, as SMS receipts and SendGrid's events do.

Provider ids are indexed only on the channels whose providers report by them, SMS and email (migration 32): a push
provider's ids, new and random for every message, would cost each push an index insert for a lookup that never
comes. The lookup must still read the partial index, on both stores, with the channel a parameter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import analysed_database
from test_event_plans import plans_of

from clarion.config import Settings
from clarion.store import apps as app_store
from clarion.store import messages as message_store
from clarion.store.database import Database, Transaction
from clarion.store.messages import MessageRow

APP = "a" * 32
CHANNELS = ("GCM", "SMS", "EMAIL", "APNS")
MESSAGES = 8_000  # enough for both planners to weigh an index against a scan


def row(n: int, channel: str, provider_id: str, created_at: str = "2026-12-03T00:00:00.000Z") -> MessageRow:
    return MessageRow(
        f"m-{n}", APP, None, f"e-{n}", None, channel, f"address-{n}", provider_id, None, None, None,
        "SUCCESSFUL", 200, "", created_at, "{}",
    )  # fmt: skip


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    def load(tx: Transaction) -> None:
        app_store.insert(tx, APP, "plans", "2026-12-03T00:00:00.000Z", "{}")
        rows = [row(n, CHANNELS[n % len(CHANNELS)], f"provider-{n}") for n in range(MESSAGES)]
        # A provider that reuses an id: the newest message with it is the one its report is about.
        rows.append(row(MESSAGES, "SMS", "provider-1", "2026-12-03T00:00:01.000Z"))
        message_store.insert(tx, rows)

    with analysed_database(settings, load) as database:
        yield database


def test_a_lookup_by_provider_id_reads_the_partial_index(db: Database) -> None:
    plans = plans_of(db, lambda tx: message_store.by_provider_id(tx, "SMS", "provider-1"), table="messages")
    assert plans, "the lookup ran no statement on messages"
    for sql, steps in plans:
        text = "\n".join(steps)
        assert "messages_by_provider_id" in text, (sql, text)
        assert "SCAN messages" not in text and "Seq Scan on messages" not in text, (sql, text)


def test_sms_and_email_messages_are_found_by_provider_id_and_push_ones_are_not_looked_up(db: Database) -> None:
    def found(channel: str, provider_id: str) -> str | None:
        message = asyncio.run(db.read(lambda tx: message_store.by_provider_id(tx, channel, provider_id)))
        return None if message is None else message.message_id

    assert found("SMS", "provider-1") == f"m-{MESSAGES}"  # the newer of the two with that id
    assert found("EMAIL", "provider-2") == "m-2"
    assert found("SMS", "provider-2") is None  # that id is an email's
    assert found("GCM", "provider-0") is None  # push ids are not looked up, though the log keeps them
    assert asyncio.run(db.read(lambda tx: message_store.get(tx, "m-0"))).provider_message_id == "provider-0"
