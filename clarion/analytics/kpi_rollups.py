"""The KPI rollups the DuckDB replica moves forward with every batch of events (clarion/analytics/kpi_duckdb.py reads
them), in the same transaction as the events themselves.

`kpi_hourly` holds counters per project, hour and the attributes KPIs filter and group by: a month of a counting KPI
reads a few thousand rows instead of every event.

Distinct recipients cannot be added up from counts. Each recipient (the event's endpoint, or the address of a send
without one) is numbered once per replica (`kpi_recipient_ids`); its events carry the number (`events.recipient_id`);
and `kpi_recipients` keeps the recipients of RECIPIENT_EVENT_TYPES per project, event type and RECIPIENT_KEYS, for
each hour and each UTC day, as a roaring bitmap of their numbers (pyroaring, serialized). A 31-day distinct count
then unions at most 31 day sets and the hours at its two edge days per key, a cost that follows the number of
recipients, not of events, and stays exact. Bitmaps are merged in Python: DuckDB has no roaring type.
"""

from __future__ import annotations

import base64

import duckdb
from pyroaring import BitMap

from clarion.analytics.staging import stage_rows
from clarion.store.kpi_sql import (
    HOUR_MS,
    RECIPIENT_EVENT_TYPES,
    RECIPIENT_KEYS,
    ROLLUP_KEYS,
    rolled_keys,
)

DAY_HOURS = 24
# An event's SMS parts and price, as KPIs count them ({0}: its attributes MAP, {1}: its metrics MAP).
EVENT_PARTS = "coalesce(TRY_CAST({0}['number_of_message_parts'] AS INTEGER), 1)"
EVENT_PRICE = "coalesce({1}['price_in_millicents_usd'], 0)"
# A recipient: the event's endpoint key ({0}), or the address of a send without one ({1}: the attributes MAP).
EVENT_RECIPIENT = "CASE WHEN {0} <> '' THEN {0} ELSE '@' || {1}['destination'] END"
# A set's span: an hour, or a UTC day (its `hour` is then the day's first).
SPANS = (1, DAY_HOURS)


def rollup_keys(attributes: str, keys: tuple[str, ...] = ROLLUP_KEYS) -> list[str]:
    """The rollup key columns `keys` of one event row, named; `attributes` is the row's attributes MAP."""
    return rolled_keys(lambda name: f"{attributes}['{name}']", keys)


def rollup_columns(attributes: str, metrics: str) -> str:
    """The rollup's key columns, parts and price of one event row, named and in table order (after app_id, hour,
    event_type); `attributes` and `metrics` are the row's MAP expressions."""
    columns = rollup_keys(attributes)
    columns.append(f"{EVENT_PARTS.format(attributes, metrics)} AS parts")
    columns.append(f"{EVENT_PRICE.format(attributes, metrics)} AS price")
    return ", ".join(columns)


_RECIPIENT_KEY_LIST = ", ".join(RECIPIENT_KEYS)
# A set's key columns, as the rows written back are read in.
_SET_KEY_TYPES = {
    "app_id": "VARCHAR",
    "hour": "BIGINT",
    "hours": "INTEGER",
    "event_type": "VARCHAR",
    **{name: "VARCHAR" for name in RECIPIENT_KEYS},
}
_TYPES = ", ".join(f"'{kind}'" for kind in RECIPIENT_EVENT_TYPES)

SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS kpi_hourly (
        app_id VARCHAR NOT NULL, hour BIGINT NOT NULL, event_type VARCHAR NOT NULL,
        {", ".join(name + " VARCHAR NOT NULL" for name in ROLLUP_KEYS)},
        n BIGINT NOT NULL, parts BIGINT NOT NULL, price DOUBLE NOT NULL,
        PRIMARY KEY (app_id, hour, event_type, {", ".join(ROLLUP_KEYS)})
    )""",
    # No unique index: a DuckDB index lives in memory, and numbering happens in one round at a time anyway.
    "CREATE TABLE IF NOT EXISTS kpi_recipient_ids (app_id VARCHAR NOT NULL, recipient VARCHAR NOT NULL, "
    "id UINTEGER NOT NULL)",
    "CREATE SEQUENCE IF NOT EXISTS kpi_recipient_numbers MINVALUE 0 START 0",
    f"""CREATE TABLE IF NOT EXISTS kpi_recipients (
        app_id VARCHAR NOT NULL, hour BIGINT NOT NULL, hours INTEGER NOT NULL, event_type VARCHAR NOT NULL,
        {", ".join(name + " VARCHAR NOT NULL" for name in RECIPIENT_KEYS)}, recipients BLOB NOT NULL
    )""",
)
TABLES = ("kpi_hourly", "kpi_recipient_ids", "kpi_recipients")
DROP = ("DROP SEQUENCE IF EXISTS kpi_recipient_numbers",)


def number_recipients(con: duckdb.DuckDBPyConnection, fold: str) -> str:
    """Number the recipients of the temporary table `staged`'s events that have none yet; answers a relation of the
    staged events with their recipient's number (`recipient_id`, NULL for other event types). `fold` is how the
    replica folds an endpoint id ({} the column)."""
    recipient = EVENT_RECIPIENT.format(fold.format("endpoint_id"), "doc.Attributes")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE reached AS
            SELECT n.app_id, n.recipient, i.id IS NULL AS fresh,
                (CASE WHEN i.id IS NULL THEN nextval('kpi_recipient_numbers') ELSE i.id END)::UINTEGER AS id
            FROM (SELECT DISTINCT app_id, {recipient} AS recipient FROM staged
                  WHERE event_type IN ({_TYPES}) AND {recipient} IS NOT NULL) n
            LEFT JOIN kpi_recipient_ids i ON i.app_id = n.app_id AND i.recipient = n.recipient"""
    )
    con.execute("INSERT INTO kpi_recipient_ids SELECT app_id, recipient, id FROM reached WHERE fresh")
    # An equality join on a column (a condition on one side only in ON would make it a nested loop join).
    return f"""(SELECT s.*, r.id AS recipient_id
        FROM (SELECT *, CASE WHEN event_type IN ({_TYPES}) THEN {recipient} END AS recipient FROM staged) s
        LEFT JOIN reached r ON r.app_id = s.app_id AND r.recipient = s.recipient)"""


def roll_up(con: duckdb.DuckDBPyConnection) -> None:
    """Add the staged events to the hourly KPI counters."""
    keys = ", ".join(ROLLUP_KEYS)
    con.execute(
        f"""INSERT INTO kpi_hourly
            SELECT app_id, hour, event_type, {keys}, count(*), sum(parts), sum(price) FROM (
                SELECT app_id, event_at // {HOUR_MS} AS hour, event_type,
                    {rollup_columns("doc.Attributes", "doc.Metrics")}
                FROM staged)
            GROUP BY ALL
            ON CONFLICT DO UPDATE SET n = n + excluded.n, parts = parts + excluded.parts,
                price = price + excluded.price"""
    )


def roll_up_recipients(con: duckdb.DuckDBPyConnection, numbered: str) -> None:
    """Add the staged events' recipient numbers to the sets of their hours and days. `numbered` is the relation
    number_recipients answered. A set is read, grown and written back whole: a round touches a few."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE reach AS
            SELECT app_id, event_at // {HOUR_MS} AS hour, event_type,
                {", ".join(rollup_keys("doc.Attributes", RECIPIENT_KEYS))}, recipient_id AS id
            FROM {numbered} WHERE event_type IN ({_TYPES})"""
    )
    spans = " UNION ALL ".join(
        f"SELECT app_id, hour // {span} * {span} AS hour, {span} AS hours, event_type, {_RECIPIENT_KEY_LIST}, "
        "list(id) FILTER (WHERE id IS NOT NULL) AS ids FROM reach GROUP BY ALL"
        for span in SPANS
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE grown AS {spans}")
    key = tuple(_SET_KEY_TYPES)
    match = " AND ".join(f"k.{column} = g.{column}" for column in key)
    rows = con.execute(
        f"SELECT {', '.join('g.' + column for column in key)}, g.ids, k.recipients "
        f"FROM grown g LEFT JOIN kpi_recipients k ON {match}"
    ).fetchall()
    con.execute(f"DELETE FROM kpi_recipients k USING grown g WHERE {match}")
    written = []
    for *columns, ids, stored in rows:
        recipients = BitMap.deserialize(stored) if stored is not None else BitMap()
        recipients.update(ids)
        recipients.run_optimize()
        written.append(
            dict(zip(key, columns, strict=True), recipients=base64.b64encode(recipients.serialize()).decode())
        )
    if written:
        stage_rows(con, written, {**_SET_KEY_TYPES, "recipients": "VARCHAR"}, "sets")
        con.execute(f"INSERT INTO kpi_recipients SELECT {', '.join(key)}, from_base64(recipients) FROM sets")


def prune(con: duckdb.DuckDBPyConnection, before_ms: int, pruned: str) -> None:
    """Forget the rollups' hours (and days starting) before the hour of `before_ms`, and the numbers of recipients
    nothing kept mentions any more. A day cut in two goes whole: no range a KPI may ask for (it starts at or after
    the cut) covers that day entirely, so none reads its set. `pruned` is a table of (app_id, id): the recipient
    numbers of the events just pruned."""
    before_hour = before_ms // HOUR_MS
    con.execute("DELETE FROM kpi_hourly WHERE hour < ?", [before_hour])
    con.execute("DELETE FROM kpi_recipients WHERE hour < ?", [before_hour])
    _forget_recipients(con, before_ms, pruned)


def _forget_recipients(con: duckdb.DuckDBPyConnection, before_ms: int, pruned: str) -> None:
    """A recipient's number (and with it the endpoint id or address it stands for) goes with the last event and set
    that holds it, so retention removes recipients as it removes their events. Only the sets that start before the
    cut can hold a number whose events are all gone (the hour the cut falls in); a recipient seen again later is
    numbered afresh, and no set kept holds its old number."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE unheld AS SELECT p.app_id, p.id FROM {pruned} p
            WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.app_id = p.app_id AND e.recipient_id = p.id)"""
    )
    held: dict[str, BitMap] = {}
    for app_id, stored in con.execute(
        f"SELECT app_id, recipients FROM kpi_recipients WHERE hour * {HOUR_MS} < ? "
        "AND app_id IN (SELECT DISTINCT app_id FROM unheld)",
        [before_ms],
    ).fetchall():
        held.setdefault(app_id, BitMap()).update(BitMap.deserialize(stored))
    kept = [{"app_id": app_id, "id": number} for app_id, numbers in held.items() for number in numbers]
    if kept:
        stage_rows(con, kept, {"app_id": "VARCHAR", "id": "UINTEGER"}, "still_held")
        con.execute("DELETE FROM unheld u USING still_held h WHERE u.app_id = h.app_id AND u.id = h.id")
    con.execute("DELETE FROM kpi_recipient_ids i USING unheld u WHERE i.app_id = u.app_id AND i.id = u.id")


def forget_app(con: duckdb.DuckDBPyConnection, app_id: str) -> None:
    for table in TABLES:
        con.execute(f"DELETE FROM {table} WHERE app_id = ?", [app_id])
