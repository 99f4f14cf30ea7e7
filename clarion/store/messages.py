"""The message log (what was sent, to whom, with what outcome) and the in-app messages stored per endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class MessageRow:
    message_id: str
    app_id: str
    request_key: str | None  # set when the send can be retried idempotently (TraceId)
    endpoint_id: str | None
    user_id: str | None
    channel: str
    address: str
    provider_message_id: str | None
    campaign_id: str | None
    treatment_id: str | None
    journey_id: str | None
    status: str
    status_code: int
    status_message: str
    created_at: str
    context: str  # JSON of MessageRequest.Context (and the address's own Context)


_COLUMNS = (
    "message_id, app_id, request_key, endpoint_id, user_id, channel, address, provider_message_id, campaign_id, "
    "treatment_id, journey_id, status, status_code, status_message, created_at, context"
)


def insert(tx: Transaction, rows: Sequence[MessageRow]) -> None:
    """Log messages; a row whose request_key is already logged (a concurrent retry) keeps the first outcome."""
    tx.insert_rows(
        f"INSERT INTO messages ({_COLUMNS})",
        [
            (
                r.message_id,
                r.app_id,
                r.request_key,
                r.endpoint_id,
                r.user_id,
                r.channel,
                r.address,
                r.provider_message_id,
                r.campaign_id,
                r.treatment_id,
                r.journey_id,
                r.status,
                r.status_code,
                r.status_message,
                r.created_at,
                r.context,
            )
            for r in rows
        ],
        "ON CONFLICT DO NOTHING",
    )


def by_request_keys(tx: Transaction, keys: Sequence[str]) -> dict[str, MessageRow]:
    if not keys:
        return {}
    listed, params = tx.dialect.one_of("request_key", keys)
    rows = tx.fetchall(f"SELECT {_COLUMNS} FROM messages WHERE {listed}", params)
    return {row[2]: MessageRow(*row) for row in rows}


def legacy_keys_until(tx: Transaction) -> int | None:
    """Until when (epoch ms) sends also look up request keys of the older form; None: the store holds none."""
    value = tx.scalar("SELECT value FROM store_facts WHERE name = 'legacy_request_keys_until'")
    return None if value is None else int(value)


OWNERS = frozenset({"campaign_id", "journey_id"})  # the columns message limits count by


def sent_per_endpoint(
    tx: Transaction, app_id: str, owner: str, owner_id: str, endpoint_ids: Sequence[str], since: str | None
) -> dict[str, int]:
    """Messages a campaign or journey (`owner` column) has sent each endpoint, since an ISO instant or ever."""
    if owner not in OWNERS:
        raise ValueError(f"messages are not counted by {owner!r}")
    if not endpoint_ids:
        return {}
    listed, params = tx.dialect.one_of("endpoint_id", endpoint_ids)
    window = " AND created_at >= ?" if since else ""
    rows = tx.fetchall(
        f"SELECT endpoint_id, COUNT(*) FROM messages WHERE app_id = ? AND {owner} = ? AND {listed}{window} "
        "GROUP BY endpoint_id",
        [app_id, owner_id, *params, *([since] if since else [])],
    )
    return {row[0]: row[1] for row in rows}


def get(tx: Transaction, message_id: str) -> MessageRow | None:
    row = tx.fetchone(f"SELECT {_COLUMNS} FROM messages WHERE message_id = ?", (message_id,))
    return MessageRow(*row) if row else None


REPORTING_CHANNELS = ("EMAIL", "SMS")  # whose providers report a message by its provider id (migration 32)


def by_provider_id(tx: Transaction, channel: str, provider_message_id: str) -> MessageRow | None:
    """The newest message a provider knows by this id on this channel (an SMS or email channel: no other
    channel's provider ids are indexed)."""
    if channel not in REPORTING_CHANNELS:
        return None
    # The index's own condition, word for word, lets both planners use the partial index with `channel` a parameter.
    row = tx.fetchone(
        f"SELECT {_COLUMNS} FROM messages WHERE provider_message_id = ? AND channel = ? "
        "AND channel IN ('EMAIL', 'SMS') ORDER BY created_at DESC LIMIT 1",
        (provider_message_id, channel),
    )
    return MessageRow(*row) if row else None


def recent(tx: Transaction, app_id: str, limit: int) -> list[MessageRow]:
    """Newest first; the CLI and tests read the log through this."""
    rows = tx.fetchall(
        f"SELECT {_COLUMNS} FROM messages WHERE app_id = ? ORDER BY created_at DESC, message_id LIMIT ?",
        (app_id, limit),
    )
    return [MessageRow(*row) for row in rows]


def of_endpoints(
    tx: Transaction, app_id: str, endpoint_ids: Sequence[str], until: str | None, limit: int, since: str | None = None
) -> list[MessageRow]:
    """These endpoints' messages created at or before the ISO instant `until` (or ever) and from `since` on, newest
    first."""
    if not endpoint_ids:
        return []
    listed, params = tx.dialect.one_of("endpoint_id", endpoint_ids)
    where, values = [f"app_id = ? AND {listed}"], [app_id, *params]
    for test, value in (("created_at <= ?", until), ("created_at >= ?", since)):
        if value:
            where.append(test)
            values.append(value)
    rows = tx.fetchall(
        f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, message_id DESC LIMIT ?",
        [*values, limit],
    )
    return [MessageRow(*row) for row in rows]


# In-app messages ------------------------------------------------------------------------------------------------


def put_in_app(
    tx: Transaction,
    app_id: str,
    endpoint_keys: Sequence[str],
    campaign_id: str,
    treatment_id: str,
    priority: int,
    stored_at: str,
    doc: str,
) -> None:
    """Store (or replace) one campaign treatment's in-app message for each endpoint."""
    if not endpoint_keys:
        return
    listed, params = tx.dialect.one_of("endpoint_key", endpoint_keys)
    tx.execute(
        f"DELETE FROM inapp_messages WHERE app_id = ? AND campaign_id = ? AND treatment_id = ? AND {listed}",
        (app_id, campaign_id, treatment_id, *params),
    )
    tx.insert_rows(
        "INSERT INTO inapp_messages (app_id, endpoint_key, campaign_id, treatment_id, priority, stored_at, doc)",
        [(app_id, key, campaign_id, treatment_id, priority, stored_at, doc) for key in endpoint_keys],
    )


def delete_in_app_campaign(tx: Transaction, app_id: str, campaign_id: str) -> int:
    return tx.execute("DELETE FROM inapp_messages WHERE app_id = ? AND campaign_id = ?", (app_id, campaign_id))


def in_app_for(tx: Transaction, app_id: str, endpoint_key: str) -> list[str]:
    """The stored documents for an endpoint, most important first (Pinpoint: lower Priority number first)."""
    rows = tx.fetchall(
        "SELECT doc FROM inapp_messages WHERE app_id = ? AND endpoint_key = ? "
        "ORDER BY priority, campaign_id, treatment_id",
        (app_id, endpoint_key),
    )
    return [row[0] for row in rows]
