"""The plans the row-store segment SQL relies on, as SQLite and PostgreSQL describe them (EXPLAIN).

The data is the benchmark's (bench/segments.py: skewed countries, platforms, attributes, metrics and events) at a
size where both planners weigh an index against a scan as they would at a million endpoints; the queries are the
benchmark's 5-condition count and a recency condition alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import analysed_database

from bench.segments import APP_ID, FIVE_CONDITIONS, generate, plan, tables
from clarion.config import Settings
from clarion.store import segment_sql
from clarion.store.database import Database, Transaction

ENDPOINTS = 20_000


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    def load(tx: Transaction) -> None:
        for chunk in generate(ENDPOINTS):
            for table, columns, rows in tables(chunk):
                tx.insert_rows(f"INSERT INTO {table} ({columns})", rows)

    with analysed_database(settings, load) as database:
        yield database


def count_plan(db: Database, definition: dict[str, object]) -> list[str]:
    def work(tx: Transaction) -> list[str]:
        if tx.dialect.name == "postgresql":
            # Scaled like the data: 15,000 events against 64 kB stand for a million endpoints' 750,000 events
            # against the default 4 MB, past which PostgreSQL cannot hash the events of a subquery.
            tx.execute("SET LOCAL work_mem = '64kB'")
        return segment_sql.count_plan(tx, APP_ID, plan(definition))

    return asyncio.run(db.read_long(work))


def test_the_plans_the_row_store_segment_sql_relies_on(db: Database) -> None:
    """The 5-condition count takes its candidates from endpoints_by_country_platform and probes their events
    through events_by_endpoint; recency alone probes every endpoint's events the same way, never building a set
    of every endpoint with events (PostgreSQL rescans such a set per endpoint once it outgrows work_mem)."""
    five = count_plan(db, FIVE_CONDITIONS)
    recency = count_plan(
        db, {"Dimensions": {"Behavior": {"Recency": {"Duration": "DAY_7", "RecencyType": "INACTIVE"}}}}
    )
    if db.dialect.name == "sqlite":
        assert any(step.startswith("SEARCH e USING INDEX endpoints_by_country_platform") for step in five), five
        for steps in (five, recency):
            probes = ("SEARCH ev USING INDEX events_by_endpoint ", "SEARCH ev USING COVERING INDEX events_by_endpoint ")
            assert sum(step.startswith(probes) for step in steps) == 2, steps
            assert not any(step.startswith("SCAN ev") for step in steps), steps
    else:
        text = "\n".join(five)
        assert "endpoints_by_country_platform on endpoints e" in text or "on endpoints_by_country_platform" in text
        assert "Seq Scan on endpoints" not in text, text
        for text in ("\n".join(five), "\n".join(recency)):
            assert text.count("events_by_endpoint") == 2, text
            assert "Seq Scan on events" not in text and "Materialize" not in text, text
