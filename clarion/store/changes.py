"""The change feed the analytics replica follows: a counter stamped on written rows, and tombstones for deletes.

Every transaction that writes endpoints, users, events or imported segment members bumps `change_feed` and stamps
the rows it writes with the new value. The counter's row lock makes stamps follow commit order (on PostgreSQL too),
so a reader that sees the counter at N has every change stamped at or below N committed, and can read them in
batches without missing one. Rows leave the feed as JSON texts built by the database itself, one per row, streamed
to the reader's `write` a chunk at a time (the replica writes them to a file that DuckDB's JSON reader loads), so
neither the database nor Python holds a whole batch as one text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clarion.store.database import Dialect, Transaction

FEED = "rows"

# The columns each feed exposes, under their own names; JSON_COLUMNS hold JSON documents.
JSON_COLUMNS = frozenset({"doc", "attributes"})
_ENDPOINT_FIELDS = (
    "app_id",
    "endpoint_key",
    "id",
    "channel_type",
    "address",
    "endpoint_status",
    "opt_out",
    "user_id",
    "cohort_id",
    "created_at",
    "effective_at",
    "change_seq",
    "doc",
)
_USER_FIELDS = ("app_id", "user_id", "change_seq", "attributes")
_EVENT_FIELDS = (
    "app_id",
    "endpoint_id",
    "event_type",
    "event_at",
    "arrival_at",
    "session_id",
    "change_seq",
    "seq",
    "doc",
)
# Of an event's document the replica reads Attributes and Metrics alone (clarion/analytics/replica.py): the events
# feed carries those members only, so neither store writes out, nor DuckDB parses, the rest of every document.
_EVENT_DOC_MEMBERS = {"doc": ("Attributes", "Metrics")}
_MEMBER_FIELDS = ("app_id", "segment_id", "endpoint_key", "change_seq")
_TOMBSTONE_FIELDS = ("change_seq", "app_id", "kind", "item_key")


def next_seq(tx: Transaction) -> int:
    """The stamp for rows this transaction writes (locks the counter until commit)."""
    return int(tx.scalar("UPDATE change_feed SET seq = seq + 1 WHERE name = ? RETURNING seq", (FEED,)))


def committed_seq(tx: Transaction) -> int:
    """The highest stamp every change at or below which is committed."""
    return int(tx.scalar("SELECT seq FROM change_feed WHERE name = ?", (FEED,)))


def record_deleted(tx: Transaction, seq: int, app_id: str, kind: str, keys: Sequence[str]) -> None:
    """Tombstones: kind "endpoint" (endpoint keys), "user" (user ids), "segment" (every imported member of these
    segment ids), "app" (the whole project, key empty)."""
    now = tx.scalar(f"SELECT {tx.dialect.now_millis}")
    tx.insert_rows(
        "INSERT INTO change_tombstones (change_seq, app_id, kind, item_key, recorded_at)",
        [(seq, app_id, kind, k, now) for k in keys],
    )


def record_deleted_user_endpoints(tx: Transaction, seq: int, app_id: str, user_id: str) -> None:
    tx.execute(
        "INSERT INTO change_tombstones (change_seq, app_id, kind, item_key, recorded_at) "
        f"SELECT ?, app_id, 'endpoint', endpoint_key, {tx.dialect.now_millis} FROM endpoints "
        "WHERE app_id = ? AND user_id = ?",
        (seq, app_id, user_id),
    )


def pruned_seq(tx: Transaction) -> int:
    """The highest stamp of a tombstone retention has removed: a replica positioned below it may have missed a
    deletion and must rebuild."""
    return int(tx.scalar("SELECT seq FROM change_feed WHERE name = 'pruned'"))


def _json_row(dialect: Dialect, columns: Sequence[str], kept: Mapping[str, Sequence[str]]) -> str:
    """A select-list expression making the row of subquery `r` one JSON object text (documents embedded; of a
    document named in `kept`, only the top-level members it lists)."""
    pairs = ", ".join(f"'{c}', {_json_value(dialect, c, kept.get(c))}" for c in columns)
    if dialect.name == "postgresql":
        return f"json_build_object({pairs})::text"
    return f"json_object({pairs})"


def _json_value(dialect: Dialect, column: str, members: Sequence[str] | None) -> str:
    if column not in JSON_COLUMNS:
        return f"r.{column}"
    if dialect.name == "postgresql":
        if members is None:
            return f"r.{column}::json"
        picked = [f"'{m}', r.{column}::json -> '{m}'" for m in members]
        return f"json_build_object({', '.join(picked)})"
    if members is None:
        return f"json(r.{column})"
    picked = [f"'{m}', json_extract(r.{column}, '$.{m}')" for m in members]
    return f"json_object({', '.join(picked)})"


# Receives a feed's rows as JSON object texts, a chunk at a time.
Write = Callable[[list[str]], None]


def _stream(
    tx: Transaction,
    columns: Sequence[str],
    source: str,
    params: Sequence[Any],
    write: Write,
    kept: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """The rows of `source` (a FROM clause, aliased `r` by this function) to `write`, as JSON texts."""
    for rows in tx.stream(f"SELECT {_json_row(tx.dialect, columns, kept or {})} FROM {source} r", params):
        write([row[0] for row in rows])


# Where a feed continues inside one round: the (change_seq, ...key) of the last row read, None at the start.
Cursor = tuple[Any, ...] | None


def _batch(
    tx: Transaction,
    table: str,
    order: str,
    columns: Sequence[str],
    since: int,
    cursor: Cursor,
    upto: int,
    limit: int,
    write: Write,
    kept: Mapping[str, Sequence[str]] | None = None,
) -> Cursor:
    """Up to `limit` rows of `table` stamped in (since, upto] and after `cursor`, in `order`, to `write`.

    Returns the cursor to continue from (None when nothing is left). The cursor is read back from the database, in
    its own collation, so paging never skips or repeats a row.
    """
    where, params = "change_seq > ? AND change_seq <= ?", [since, upto]
    width = order.count(",") + 1
    if cursor is not None:
        where += f" AND ({order}) > ({', '.join('?' * width)})"
        params.extend(cursor)
    last = tx.fetchone(
        f"SELECT {order} FROM {table} WHERE {where} ORDER BY {order} LIMIT 1 OFFSET ?", (*params, limit - 1)
    )
    bound = ""
    if last is not None:
        bound = f" AND ({order}) <= ({', '.join('?' * width)})"
        params.extend(last)
    _stream(tx, columns, f"(SELECT {', '.join(columns)} FROM {table} WHERE {where}{bound})", params, write, kept)
    return None if last is None else tuple(last)


def endpoints_batch(tx: Transaction, since: int, cursor: Cursor, upto: int, limit: int, write: Write) -> Cursor:
    """Changed endpoints to `write`, and where to continue (None when this was the last batch)."""
    order = "change_seq, app_id, endpoint_key"
    return _batch(tx, "endpoints", order, _ENDPOINT_FIELDS, since, cursor, upto, limit, write)


def users_batch(tx: Transaction, since: int, cursor: Cursor, upto: int, limit: int, write: Write) -> Cursor:
    return _batch(tx, "users", "change_seq, app_id, user_id", _USER_FIELDS, since, cursor, upto, limit, write)


def events_batch(tx: Transaction, since: int, cursor: Cursor, upto: int, limit: int, write: Write) -> Cursor:
    order = "change_seq, app_id, seq"
    return _batch(tx, "events", order, _EVENT_FIELDS, since, cursor, upto, limit, write, _EVENT_DOC_MEMBERS)


def segment_members_batch(tx: Transaction, since: int, cursor: Cursor, upto: int, limit: int, write: Write) -> Cursor:
    """Members import jobs added to IMPORT segments (table segment_imports)."""
    order = "change_seq, app_id, segment_id, endpoint_key"
    return _batch(tx, "segment_imports", order, _MEMBER_FIELDS, since, cursor, upto, limit, write)


def tombstones(tx: Transaction, after: int, upto: int, write: Write) -> None:
    """Deletions stamped in (after, upto], to `write`."""
    source = f"(SELECT {', '.join(_TOMBSTONE_FIELDS)} FROM change_tombstones WHERE change_seq > ? AND change_seq <= ?)"
    _stream(tx, _TOMBSTONE_FIELDS, source, (after, upto), write)


# The tables of the feed, each with an index that starts with change_seq.
_FEED_TABLES = ("events", "endpoints", "users", "segment_imports", "change_tombstones")


def round_end(tx: Transaction, since: int, upto: int, rows: int) -> int:
    """Where a sync round from `since` towards `upto` stops so that it takes in about `rows` rows of each feed: the
    stamp of the first feed's `rows`-th row after `since`, narrowed feed by feed (`upto` if none has that many).

    A round takes every row of its last stamp, so one transaction that wrote more rows than that still goes whole.
    """
    end = upto
    for table in _FEED_TABLES:
        stamp = tx.scalar(
            f"SELECT change_seq FROM {table} WHERE change_seq > ? AND change_seq <= ? ORDER BY change_seq "
            "LIMIT 1 OFFSET ?",
            (since, end, rows - 1),
        )
        if stamp is not None:
            end = int(stamp)
    return end
