"""Endpoints and the user attributes their users share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clarion.store import changes
from clarion.store.database import Transaction


@dataclass(slots=True)
class EndpointRow:
    app_id: str
    endpoint_key: str
    id: str
    channel_type: str | None
    address: str | None
    endpoint_status: str
    opt_out: str
    user_id: str | None
    cohort_id: int
    created_at: str
    effective_at: str
    doc: str  # the endpoint's wire fields, JSON; status, dates, cohort and user attributes live elsewhere

    def values(self) -> tuple[object, ...]:
        return (
            self.app_id,
            self.endpoint_key,
            self.id,
            self.channel_type,
            self.address,
            self.endpoint_status,
            self.opt_out,
            self.user_id,
            self.cohort_id,
            self.created_at,
            self.effective_at,
            self.doc,
        )


_COLUMNS = (
    "app_id, endpoint_key, id, channel_type, address, endpoint_status, opt_out, user_id, cohort_id, "
    "created_at, effective_at, doc"
)


def fetch(tx: Transaction, app_id: str, keys: Sequence[str]) -> dict[str, EndpointRow]:
    if not keys:
        return {}
    listed, params = tx.dialect.one_of("endpoint_key", keys)
    rows = tx.fetchall(
        f"SELECT {_COLUMNS} FROM endpoints WHERE app_id = ? AND {listed}{tx.dialect.for_update}", (app_id, *params)
    )
    return {row[1]: EndpointRow(*row) for row in rows}


def page(
    tx: Transaction, app_id: str, after_key: str, limit: int, prefix: str | None = None, keys: Sequence[str] = ()
) -> list[EndpointRow]:
    """Endpoints after `after_key` in key order (a keyset page over the primary key). With `prefix`, only those
    whose id (folded), address or user id starts with it; with `keys`, only those keys."""
    where, params = ["app_id = ?", "endpoint_key > ?"], [app_id, after_key]
    if prefix is not None:
        searched = (("endpoint_key", prefix.lower()), ("address", prefix), ("user_id", prefix))
        tests = [_starts_with(column, value) for column, value in searched]
        where.append(f"({' OR '.join(test for test, _ in tests)})")
        params += [param for _, test_params in tests for param in test_params]
    if keys:
        listed, key_params = tx.dialect.one_of("endpoint_key", keys)
        where.append(listed)
        params += key_params
    rows = tx.fetchall(
        f"SELECT {_COLUMNS} FROM endpoints WHERE {' AND '.join(where)} ORDER BY endpoint_key LIMIT ?", (*params, limit)
    )
    return [EndpointRow(*row) for row in rows]


def _starts_with(column: str, prefix: str) -> tuple[str, list[Any]]:
    """`column` starts with `prefix`: a range its index answers (every string starting with the prefix sorts from
    it to it followed by the last code point), and an exact test of the first characters for what the range lets in
    under a collation that ignores punctuation."""
    return f"({column} >= ? AND {column} < ? AND substr({column}, 1, ?) = ?)", [
        prefix,
        prefix + "\U0010ffff",
        len(prefix),
        prefix,
    ]


def exists(tx: Transaction, app_id: str, key: str) -> bool:
    return tx.fetchone("SELECT 1 FROM endpoints WHERE app_id = ? AND endpoint_key = ?", (app_id, key)) is not None


def of_user(tx: Transaction, app_id: str, user_id: str) -> list[EndpointRow]:
    rows = tx.fetchall(
        f"SELECT {_COLUMNS} FROM endpoints WHERE app_id = ? AND user_id = ? ORDER BY created_at, endpoint_key",
        (app_id, user_id),
    )
    return [EndpointRow(*row) for row in rows]


def of_users(tx: Transaction, app_id: str, user_ids: Sequence[str]) -> dict[str, list[EndpointRow]]:
    """Every endpoint of each of these users, by user id."""
    if not user_ids:
        return {}
    listed, params = tx.dialect.one_of("user_id", user_ids)
    found: dict[str, list[EndpointRow]] = {}
    for row in tx.fetchall(f"SELECT {_COLUMNS} FROM endpoints WHERE app_id = ? AND {listed}", (app_id, *params)):
        endpoint = EndpointRow(*row)
        found.setdefault(endpoint.user_id or "", []).append(endpoint)
    return found


def with_address(tx: Transaction, app_id: str | None, addresses: Sequence[str]) -> list[EndpointRow]:
    """Endpoints holding any of these addresses, in one project or (app_id None: an inbound STOP) in all."""
    if not addresses:
        return []
    listed, params = tx.dialect.one_of("address", addresses)
    if app_id is None:
        rows = tx.fetchall(f"SELECT {_COLUMNS} FROM endpoints WHERE {listed}", params)
    else:
        rows = tx.fetchall(f"SELECT {_COLUMNS} FROM endpoints WHERE app_id = ? AND {listed}", (app_id, *params))
    return [EndpointRow(*row) for row in rows]


def opted_out_addresses(tx: Transaction, app_id: str, addresses: Sequence[str]) -> set[tuple[str, str]] | None:
    """(channel type, address) of the project's endpoints that hold any of these addresses and opted out of
    everything, read with the project's existence in one statement: None when there is no such project."""
    listed, params = tx.dialect.one_of("e.address", addresses)
    rows = tx.fetchall(
        "SELECT e.channel_type, e.address FROM apps a LEFT JOIN endpoints e "
        f"ON e.app_id = a.id AND e.opt_out = 'ALL' AND {listed} WHERE a.id = ?",
        (*params, app_id),
    )
    if not rows:
        return None
    return {(channel or "", address) for channel, address in rows if address is not None}


def users_page(tx: Transaction, app_id: str, after: str, limit: int, prefix: str | None) -> list[tuple[str, int]]:
    """(user id, endpoints) of the project's users after `after` in id order, those starting with `prefix` if given:
    a walk of the (app_id, user_id) index, grouped as it goes."""
    where, params = ["app_id = ?", "user_id > ?"], [app_id, after]
    if prefix:
        test, test_params = _starts_with("user_id", prefix)
        where.append(test)
        params += test_params
    rows = tx.fetchall(
        f"SELECT user_id, count(*) FROM endpoints WHERE {' AND '.join(where)} "
        "GROUP BY user_id ORDER BY user_id LIMIT ?",
        (*params, limit),
    )
    return [(user_id, int(n)) for user_id, n in rows]


def users_and_counts(tx: Transaction, app_id: str, user_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, int]]:
    """The users' stored attributes (as `user_attributes`) and how many endpoints each has, in one statement: one
    round trip to PostgreSQL instead of two."""
    if not user_ids:
        return {}, {}
    listed, params = tx.dialect.one_of("user_id", user_ids)
    rows = tx.fetchall(
        f"SELECT 'a', user_id, attributes FROM users WHERE app_id = ? AND {listed} UNION ALL "
        f"SELECT 'n', user_id, CAST(count(*) AS TEXT) FROM endpoints WHERE app_id = ? AND {listed} GROUP BY user_id",
        (app_id, *params, app_id, *params),
    )
    attributes = {user_id: value for kind, user_id, value in rows if kind == "a"}
    counts = {user_id: int(value) for kind, user_id, value in rows if kind == "n"}
    return attributes, counts


def upsert(tx: Transaction, rows: Iterable[EndpointRow], seq: int | None = None) -> None:
    """Insert or replace these rows, stamped `seq` (a new change stamp when None)."""
    values = [row.values() for row in rows]
    if not values:
        return
    seq = changes.next_seq(tx) if seq is None else seq
    tx.insert_rows(
        f"INSERT INTO endpoints ({_COLUMNS}, change_seq)",
        [(*row, seq) for row in values],
        "ON CONFLICT (app_id, endpoint_key) DO UPDATE SET channel_type = excluded.channel_type, "
        "address = excluded.address, endpoint_status = excluded.endpoint_status, opt_out = excluded.opt_out, "
        "user_id = excluded.user_id, effective_at = excluded.effective_at, doc = excluded.doc, "
        "change_seq = excluded.change_seq",
    )


def deactivate_address(tx: Transaction, app_id: str, claims: dict[str, str], seq: int | None = None) -> None:
    """Flip to INACTIVE every other endpoint holding an address these endpoints claim ({address: owner key}),
    stamped `seq` (a new change stamp when None).

    One statement for the whole batch: an endpoint holds one address, so "not an owner" is "not its owner".
    """
    if not claims:
        return
    claimed, claimed_params = tx.dialect.one_of("address", list(claims))
    others, owner_params = tx.dialect.none_of("endpoint_key", list(claims.values()))
    tx.execute(
        "UPDATE endpoints SET endpoint_status = 'INACTIVE', change_seq = ? "
        f"WHERE app_id = ? AND endpoint_status <> 'INACTIVE' AND {claimed} AND {others}",
        (changes.next_seq(tx) if seq is None else seq, app_id, *claimed_params, *owner_params),
    )


def delete(tx: Transaction, app_id: str, keys: Sequence[str]) -> None:
    if keys:
        changes.record_deleted(tx, changes.next_seq(tx), app_id, "endpoint", keys)
        listed, params = tx.dialect.one_of("endpoint_key", keys)
        tx.execute(f"DELETE FROM endpoints WHERE app_id = ? AND {listed}", (app_id, *params))


def user_attributes(tx: Transaction, app_id: str, user_ids: Sequence[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    listed, params = tx.dialect.one_of("user_id", user_ids)
    rows = tx.fetchall(f"SELECT user_id, attributes FROM users WHERE app_id = ? AND {listed}", (app_id, *params))
    return dict(rows)


def put_user_attributes(tx: Transaction, app_id: str, users: dict[str, str], seq: int | None = None) -> None:
    """Insert or replace these users' attributes, stamped `seq` (a new change stamp when None)."""
    if not users:
        return
    seq = changes.next_seq(tx) if seq is None else seq
    tx.insert_rows(
        "INSERT INTO users (app_id, user_id, attributes, change_seq)",
        [(app_id, user_id, attributes, seq) for user_id, attributes in users.items()],
        "ON CONFLICT (app_id, user_id) DO UPDATE SET attributes = excluded.attributes, "
        "change_seq = excluded.change_seq",
    )


def delete_user(tx: Transaction, app_id: str, user_id: str) -> None:
    seq = changes.next_seq(tx)
    changes.record_deleted_user_endpoints(tx, seq, app_id, user_id)
    changes.record_deleted(tx, seq, app_id, "user", [user_id])
    tx.execute("DELETE FROM endpoints WHERE app_id = ? AND user_id = ?", (app_id, user_id))
    tx.execute("DELETE FROM users WHERE app_id = ? AND user_id = ?", (app_id, user_id))


def app_attribute_filters(tx: Transaction, app_id: str) -> dict[str, str] | None:
    """`attribute_filters` with the project's existence in the same statement: None when there is no such
    project (a write's check and its read in one round trip)."""
    rows = tx.fetchall(
        "SELECT f.attribute_type, f.patterns FROM apps a "
        "LEFT JOIN attribute_filters f ON f.app_id = a.id WHERE a.id = ?",
        (app_id,),
    )
    if not rows:
        return None
    return {kind: patterns for kind, patterns in rows if kind is not None}


def attribute_filters(tx: Transaction, app_id: str) -> dict[str, str]:
    return dict(tx.fetchall("SELECT attribute_type, patterns FROM attribute_filters WHERE app_id = ?", (app_id,)))


def put_attribute_filter(tx: Transaction, app_id: str, attribute_type: str, patterns: str) -> None:
    tx.execute(
        "INSERT INTO attribute_filters (app_id, attribute_type, patterns) VALUES (?, ?, ?) "
        "ON CONFLICT (app_id, attribute_type) DO UPDATE SET patterns = excluded.patterns",
        (app_id, attribute_type, patterns),
    )
