"""Event streams: each project's destination, the cursor its shipper advances, the lease that makes one process ship
it, and the reads a shipper makes (its project's events after the cursor, with what their records need).

Events are read in the change feed's commit order, (change_seq, seq), and only up to the feed's committed stamp
(clarion/store/changes.py): an event that commits late under a lower stamp cannot be skipped by a cursor that has
moved past it. The reads are ranges of `events_by_change (change_seq, app_id, seq)` from the cursor, the project
named in the range's start (for one project that order is (change_seq, seq)); other projects' entries in the range
are skipped in the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

from clarion.store import changes
from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class StreamRow:
    app_id: str
    destination_arn: str
    role_arn: str
    modified_at: str
    modified_by: str
    version: int
    cursor_change: int
    cursor_seq: int
    delivered_at: int | None  # epoch ms of the last acknowledged batch
    lease_owner: str | None
    lease_until: int | None
    failures: int  # consecutive failed deliveries since the last acknowledged one
    last_error: str | None
    last_error_at: int | None

    @property
    def cursor(self) -> tuple[int, int]:
        return self.cursor_change, self.cursor_seq


_COLUMNS = (
    "app_id, destination_arn, role_arn, modified_at, modified_by, version, cursor_change, cursor_seq, delivered_at, "
    "lease_owner, lease_until, failures, last_error, last_error_at"
)


class StreamEvent(NamedTuple):  # a tuple: a shipper reads thousands at a time
    """One event as a stream reads it: its place in the feed and the stored event."""

    change_seq: int
    seq: int
    endpoint_id: str
    event_id: str
    event_type: str
    event_at: int
    arrival_at: int
    doc: str

    @property
    def position(self) -> tuple[int, int]:
        return self.change_seq, self.seq


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What an outcome event's record says about the message it reports on."""

    message_id: str
    endpoint_id: str | None
    channel: str
    address: str
    provider_message_id: str | None
    created_at: str


def get(tx: Transaction, app_id: str) -> StreamRow | None:
    row = tx.fetchone(f"SELECT {_COLUMNS} FROM event_streams WHERE app_id = ?", (app_id,))
    return StreamRow(*row) if row else None


def all_streams(tx: Transaction) -> list[StreamRow]:
    return [StreamRow(*row) for row in tx.fetchall(f"SELECT {_COLUMNS} FROM event_streams ORDER BY app_id")]


def start_position(tx: Transaction) -> tuple[int, int]:
    """Where a new stream starts: after every event committed now (Pinpoint streams what happens from then on)."""
    return changes.committed_seq(tx), int(tx.scalar("SELECT coalesce(max(seq), 0) FROM events"))


def put(
    tx: Transaction,
    app_id: str,
    destination_arn: str,
    role_arn: str,
    modified_at: str,
    modified_by: str,
    start: tuple[int, int] | None,
) -> None:
    """Create or replace a project's stream; `start` moves the cursor (a new destination), None keeps it."""
    current = get(tx, app_id)
    if current is None:
        assert start is not None
        tx.execute(
            "INSERT INTO event_streams (app_id, destination_arn, role_arn, modified_at, modified_by, version, "
            "cursor_change, cursor_seq) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
            (app_id, destination_arn, role_arn, modified_at, modified_by, *start),
        )
        return
    cursor = start if start is not None else current.cursor
    tx.execute(
        "UPDATE event_streams SET destination_arn = ?, role_arn = ?, modified_at = ?, modified_by = ?, "
        "version = version + 1, cursor_change = ?, cursor_seq = ?, failures = 0, last_error = NULL, "
        "last_error_at = NULL WHERE app_id = ?",
        (destination_arn, role_arn, modified_at, modified_by, *cursor, app_id),
    )


def delete(tx: Transaction, app_id: str) -> None:
    tx.execute("DELETE FROM event_streams WHERE app_id = ?", (app_id,))


# Leases and the cursor --------------------------------------------------------------------------------------------


def take_lease(tx: Transaction, app_id: str, owner: str, now: int, until: int) -> StreamRow | None:
    """Take (or keep) the stream's lease unless another owner's is still running; the row when taken."""
    taken = tx.execute(
        "UPDATE event_streams SET lease_owner = ?, lease_until = ? "
        "WHERE app_id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
        (owner, until, app_id, owner, now),
    )
    return get(tx, app_id) if taken else None


def renew_leases(tx: Transaction, owner: str, app_ids: Sequence[str], until: int) -> set[str]:
    """Extend this owner's leases; the projects whose lease it still held (the others were lost or deleted)."""
    if not app_ids:
        return set()
    listed, params = tx.dialect.one_of("app_id", app_ids)
    tx.execute(f"UPDATE event_streams SET lease_until = ? WHERE lease_owner = ? AND {listed}", (until, owner, *params))
    rows = tx.fetchall(f"SELECT app_id FROM event_streams WHERE lease_owner = ? AND {listed}", (owner, *params))
    return {row[0] for row in rows}


def release_leases(tx: Transaction, owner: str) -> None:
    tx.execute("UPDATE event_streams SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?", (owner,))


def advance(tx: Transaction, app_id: str, owner: str, version: int, position: tuple[int, int], at: int) -> bool:
    """Move the cursor past a batch the sink acknowledged; False when this owner no longer ships this version of
    the stream (its lease was taken, or the stream was replaced or deleted), which must then stop."""
    moved = tx.execute(
        "UPDATE event_streams SET cursor_change = ?, cursor_seq = ?, delivered_at = ?, failures = 0, "
        "last_error = NULL, last_error_at = NULL WHERE app_id = ? AND lease_owner = ? AND version = ?",
        (*position, at, app_id, owner, version),
    )
    return moved == 1


def record_failure(tx: Transaction, app_id: str, owner: str, version: int, error: str, at: int) -> None:
    tx.execute(
        "UPDATE event_streams SET failures = failures + 1, last_error = ?, last_error_at = ? "
        "WHERE app_id = ? AND lease_owner = ? AND version = ?",
        (error, at, app_id, owner, version),
    )


# What a shipper reads ---------------------------------------------------------------------------------------------


def events_after(tx: Transaction, app_id: str, after: tuple[int, int], limit: int) -> tuple[list[StreamEvent], int]:
    """The project's next committed events after `after`, in commit order, and the feed's committed stamp they were
    read up to. The rows are plain tuples in StreamEvent's order (a named tuple apiece costs more than using them)."""
    upto = changes.committed_seq(tx)
    rows = tx.fetchall(
        "SELECT change_seq, seq, endpoint_id, event_id, event_type, event_at, arrival_at, doc "
        f"FROM events WHERE {_AFTER} ORDER BY change_seq, app_id, seq LIMIT ?",
        (after[0], app_id, after[1], after[0], upto, app_id, limit),
    )
    return cast(list[StreamEvent], rows), upto


def backlog(tx: Transaction, app_id: str, after: tuple[int, int]) -> tuple[int, int | None]:
    """Committed events not yet past the cursor, and when the oldest of them arrived (epoch ms; None: none)."""
    upto = changes.committed_seq(tx)
    count, oldest = tx.fetchone(
        f"SELECT count(*), min(arrival_at) FROM events WHERE {_AFTER}",
        (after[0], app_id, after[1], after[0], upto, app_id),
    ) or (0, None)
    return int(count), oldest


# A project's events after a cursor (change_seq, app, seq) up to a committed stamp, as a range of events_by_change.
# The project is tested as an expression (`|| ''`) so that no index that starts with app_id can serve it: the
# planners would take such an index for the equality and sort the project's whole history. The cursor's stamp is
# also a plain lower bound, which PostgreSQL estimates from its statistics (a row comparison it does not).
_AFTER = "(change_seq, app_id, seq) > (?, ?, ?) AND change_seq >= ? AND change_seq <= ? AND app_id || '' = ?"


def endpoint_docs(tx: Transaction, app_id: str, keys: Sequence[str]) -> dict[str, tuple[str, str, str, str]]:
    """(doc, EndpointStatus, OptOut, EffectiveDate) of these endpoints by key; records describe the device."""
    if not keys:
        return {}
    listed, params = tx.dialect.one_of("endpoint_key", keys)
    rows = tx.fetchall(
        "SELECT endpoint_key, doc, endpoint_status, opt_out, effective_at FROM endpoints "
        f"WHERE app_id = ? AND {listed}",
        (app_id, *params),
    )
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def endpoints_changed(tx: Transaction, app_id: str, since: int, upto: int, limit: int) -> list[str] | None:
    """The keys of the project's endpoints written or deleted with a feed stamp in (since, upto]; None when there
    are more than `limit` (an import, say): a reader that keeps endpoints then forgets them all."""
    rows = tx.fetchall(
        "SELECT endpoint_key FROM endpoints WHERE change_seq > ? AND change_seq <= ? AND app_id = ? "
        "UNION SELECT item_key FROM change_tombstones WHERE change_seq > ? AND change_seq <= ? AND app_id = ? "
        "AND kind = 'endpoint' LIMIT ?",
        (since, upto, app_id, since, upto, app_id, limit + 1),
    )
    return None if len(rows) > limit else [row[0] for row in rows]


def sent_messages(tx: Transaction, message_ids: Sequence[str]) -> dict[str, SentMessage]:
    if not message_ids:
        return {}
    listed, params = tx.dialect.one_of("message_id", message_ids)
    rows = tx.fetchall(
        "SELECT message_id, endpoint_id, channel, address, provider_message_id, created_at FROM messages "
        f"WHERE {listed}",
        params,
    )
    return {row[0]: SentMessage(*row) for row in rows}


def send_event_docs(tx: Transaction, app_id: str, sends: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The documents of the send events of these (endpoint id, message id) pairs, by message id: what the send
    recorded about the message (its sender, subject, type) belongs in every later record about it."""
    if not sends:
        return {}
    # One probe of events_by_endpoint per pair: (app, folded id, id, event id), its whole key.
    wanted, params = tx.dialect.rows_table("w", (("endpoint_id", "text"), ("event_id", "text")), sorted(set(sends)))
    rows = tx.fetchall(
        f"SELECT ev.event_id, ev.doc FROM {wanted} JOIN events ev ON ev.app_id = ? "
        "AND lower(ev.endpoint_id) = lower(w.endpoint_id) AND ev.endpoint_id = w.endpoint_id "
        "AND ev.event_id = w.event_id",
        (*params, app_id),
    )
    return {row[0]: row[1] for row in rows}
