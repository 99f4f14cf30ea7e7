"""The append-only event log that segments, KPIs and exports read, and the two kinds of events in it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clarion.store import changes
from clarion.store.database import Dialect, Transaction

# Events Clarion records itself about the messages it sends (their sends and outcomes); every other event is an app
# event, which arrived through PutEvents (or an SDK): what Pinpoint billed as collected events and what engagement
# scores count.
SERVER_EVENT_PREFIXES = ("_email.", "_SMS.", "_journey.")
SERVER_EVENT_TYPES = ("_campaign.send",)


def is_server_event(event_type: str) -> bool:
    return event_type.startswith(SERVER_EVENT_PREFIXES) or event_type in SERVER_EVENT_TYPES


PURCHASE = "_monetization.purchase"


def purchase_value_sql(dialect: Dialect, event: str) -> str:
    """What one event (row alias `event`) adds to revenue: a purchase's Metrics `_item_price` times `_quantity`
    (a missing price 0, a missing quantity 1), any other event 0 (clarion/segments/plan.py, "Engagement")."""
    price, quantity = (
        f"CAST({dialect.json_text(f'{event}.doc', ('Metrics', name))} AS DOUBLE PRECISION)"
        for name in ("_item_price", "_quantity")
    )
    return f"CASE WHEN {event}.event_type = '{PURCHASE}' THEN coalesce({price}, 0) * coalesce({quantity}, 1) ELSE 0 END"


def activity(tx: Transaction, app_id: str, endpoint_keys: Sequence[str]) -> tuple[int | None, int, float]:
    """The latest app event, the app events and the revenue of these endpoints (keys: folded ids), together."""
    if not endpoint_keys:
        return None, 0, 0.0
    listed, params = tx.dialect.one_of("lower(ev.endpoint_id)", endpoint_keys)
    last, events, revenue = tx.fetchone(
        f"SELECT max(ev.event_at), count(*), sum({purchase_value_sql(tx.dialect, 'ev')}) FROM events ev "
        f"WHERE ev.app_id = ? AND {listed} AND {app_event_sql('ev.event_type')}",
        (app_id, *params),
    )
    return last, int(events), float(revenue or 0)


def of_endpoints(
    tx: Transaction,
    app_id: str,
    endpoint_keys: Sequence[str],
    until_ms: int | None,
    limit: int,
    since_ms: int | None = None,
    event_type: str | None = None,
) -> list[tuple[int, int, str, str, str]]:
    """(event_at, seq, endpoint id, event type, doc) of these endpoints' events (keys: folded ids) at or before
    `until_ms` (or ever) and from `since_ms` on, of one type if given, newest first."""
    if not endpoint_keys:
        return []
    listed, params = tx.dialect.one_of("lower(endpoint_id)", endpoint_keys)
    where, values = [f"app_id = ? AND {listed}"], [app_id, *params]
    for test, value in (("event_at <= ?", until_ms), ("event_at >= ?", since_ms), ("event_type = ?", event_type)):
        if value is not None:
            where.append(test)
            values.append(value)
    rows = tx.fetchall(
        f"SELECT event_at, seq, endpoint_id, event_type, doc FROM events WHERE {' AND '.join(where)} "
        "ORDER BY event_at DESC, seq DESC LIMIT ?",
        [*values, limit],
    )
    return [(int(at), int(seq), endpoint_id, event_type, doc) for at, seq, endpoint_id, event_type, doc in rows]


def app_event_sql(column: str) -> str:
    """`column` (an event type) names an app event, in SQL that SQLite, PostgreSQL and DuckDB all read."""
    tests = [f"substr({column}, 1, {len(prefix)}) <> '{prefix}'" for prefix in SERVER_EVENT_PREFIXES]
    tests += [f"{column} <> '{kind}'" for kind in SERVER_EVENT_TYPES]
    return "(" + " AND ".join(tests) + ")"


@dataclass(slots=True)
class EventRow:
    app_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    event_at: int  # epoch ms, the client's Timestamp
    arrival_at: int  # epoch ms, when Clarion accepted it
    session_id: str | None
    doc: str  # the event's wire fields, JSON


# Events of one endpoint id as sent (two parameters, the id twice), as a probe of events_by_endpoint: its folded id
# first (the index's second column, folded by the database as the index is), then the id itself. The CAST gives the
# value an affinity, which stops SQLite from propagating `endpoint_id = ?` into `lower(endpoint_id)` (it would turn
# it into lower(?) = lower(?), which no longer names the index's expression, and search by app_id alone).
_AS_SENT = "lower(endpoint_id) = lower(?) AND endpoint_id = CAST(? AS TEXT)"


def append(tx: Transaction, rows: Sequence[EventRow]) -> None:
    """Insert events; one already stored under the same (endpoint, event id) is a retry and is kept as it was."""
    if not rows:
        return
    seq = changes.next_seq(tx)
    tx.insert_rows(
        "INSERT INTO events (app_id, endpoint_id, event_id, event_type, event_at, arrival_at, session_id, doc, "
        "change_seq)",
        [
            (r.app_id, r.endpoint_id, r.event_id, r.event_type, r.event_at, r.arrival_at, r.session_id, r.doc, seq)
            for r in rows
        ],
        "ON CONFLICT DO NOTHING",  # events_by_endpoint, the table's one unique key
    )


def recent(tx: Transaction, app_id: str, limit: int, endpoint_id: str | None = None) -> list[EventRow]:
    """Newest events first; the CLI and tests read the log through this."""
    where, params = "app_id = ?", [app_id]
    if endpoint_id is not None:
        where += f" AND {_AS_SENT}"
        params += [endpoint_id, endpoint_id]
    rows = tx.fetchall(
        "SELECT app_id, endpoint_id, event_id, event_type, event_at, arrival_at, session_id, doc FROM events "
        f"WHERE {where} ORDER BY seq DESC LIMIT ?",
        (*params, limit),
    )
    return [EventRow(*row) for row in rows]


def count(tx: Transaction, app_id: str) -> int:
    return int(tx.scalar("SELECT count(*) FROM events WHERE app_id = ?", (app_id,)))


def exists(tx: Transaction, app_id: str, endpoint_id: str, event_id: str) -> bool:
    row = tx.fetchone(
        f"SELECT 1 FROM events WHERE app_id = ? AND {_AS_SENT} AND event_id = ?",
        (app_id, endpoint_id, endpoint_id, event_id),
    )
    return row is not None


def doc(tx: Transaction, app_id: str, endpoint_id: str, event_id: str) -> str | None:
    """One event's document (JSON), by its key."""
    return tx.scalar(
        f"SELECT doc FROM events WHERE app_id = ? AND {_AS_SENT} AND event_id = ?",
        (app_id, endpoint_id, endpoint_id, event_id),
    )


def latest_at(tx: Transaction, app_id: str, endpoint_id: str, event_types: Sequence[str]) -> int | None:
    """When the endpoint's latest event of these types happened (epoch ms), or None."""
    clause, params = tx.dialect.one_of("event_type", event_types)
    return tx.scalar(
        f"SELECT max(event_at) FROM events WHERE app_id = ? AND {_AS_SENT} AND {clause}",
        (app_id, endpoint_id, endpoint_id, *params),
    )
