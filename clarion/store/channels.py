"""Channels: one row per project and channel type, its secrets sealed (clarion/channels/secrets.py) before they come
here."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Row, Transaction


@dataclass(frozen=True, slots=True)
class ChannelRow:
    app_id: str
    channel_type: str
    version: int
    enabled: bool
    created_at: str
    modified_at: str
    modified_by: str
    settings: str  # JSON of the request members that are not secret
    secret_names: str  # JSON list of the secret members `secrets` holds
    secrets: str | None  # one sealed value, JSON of the secret members inside


_COLUMNS = (
    "app_id, channel_type, version, enabled, created_at, modified_at, modified_by, settings, secret_names, secrets"
)


def _row(values: Row) -> ChannelRow:
    app_id, channel_type, version, enabled, *rest = values
    return ChannelRow(app_id, channel_type, version, bool(enabled), *rest)


def get(tx: Transaction, app_id: str, channel_type: str, *, lock: bool = False) -> ChannelRow | None:
    """`lock` holds the row until the transaction ends (concurrent updates on PostgreSQL)."""
    lock_clause = tx.dialect.for_update if lock else ""
    row = tx.fetchone(
        f"SELECT {_COLUMNS} FROM channels WHERE app_id = ? AND channel_type = ?{lock_clause}", (app_id, channel_type)
    )
    return _row(row) if row else None


def for_app(tx: Transaction, app_id: str) -> list[ChannelRow]:
    rows = tx.fetchall(f"SELECT {_COLUMNS} FROM channels WHERE app_id = ? ORDER BY channel_type", (app_id,))
    return [_row(row) for row in rows]


def put(tx: Transaction, row: ChannelRow) -> None:
    """Insert the channel, or replace every column of the stored one but its creation date."""
    tx.execute(
        f"INSERT INTO channels ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (app_id, channel_type) DO UPDATE SET version = excluded.version, enabled = excluded.enabled, "
        "modified_at = excluded.modified_at, modified_by = excluded.modified_by, settings = excluded.settings, "
        "secret_names = excluded.secret_names, secrets = excluded.secrets",
        (
            row.app_id,
            row.channel_type,
            row.version,
            int(row.enabled),
            row.created_at,
            row.modified_at,
            row.modified_by,
            row.settings,
            row.secret_names,
            row.secrets,
        ),
    )


def delete(tx: Transaction, app_id: str, channel_type: str) -> None:
    tx.execute("DELETE FROM channels WHERE app_id = ? AND channel_type = ?", (app_id, channel_type))


def sealed(tx: Transaction) -> list[tuple[str, str, str]]:
    """(app id, channel type, sealed secrets) of every channel holding secrets: what a key rotation re-seals."""
    rows = tx.fetchall("SELECT app_id, channel_type, secrets FROM channels WHERE secrets IS NOT NULL")
    return [(row[0], row[1], row[2]) for row in rows]


def replace_secrets(tx: Transaction, app_id: str, channel_type: str, secrets: str) -> None:
    """Swap the sealed value only (a re-seal under a new key changes no setting and no version)."""
    tx.execute("UPDATE channels SET secrets = ? WHERE app_id = ? AND channel_type = ?", (secrets, app_id, channel_type))
