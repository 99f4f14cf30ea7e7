"""One-time passwords: the live code per (project, reference, destination), kept as a keyed hash only, and the
times codes were sent to each destination (what the per-destination rate limit counts). Times are epoch ms."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class OtpCodeRow:
    app_id: str
    reference_id: str
    destination: str
    key_id: str  # which operator key the hash was made under
    salt: str  # hex
    code_hash: str  # hex HMAC-SHA256 of salt, the code's binding and the code
    created_at: int
    expires_at: int
    attempts_left: int
    verified: bool


_COLUMNS = "app_id, reference_id, destination, key_id, salt, code_hash, created_at, expires_at, attempts_left, verified"


def put_code(tx: Transaction, row: OtpCodeRow) -> None:
    """The code for its (project, reference, destination), replacing the one sent before."""
    tx.execute(
        f"INSERT INTO otp_codes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (app_id, reference_id, destination) DO UPDATE SET key_id = excluded.key_id, "
        "salt = excluded.salt, code_hash = excluded.code_hash, created_at = excluded.created_at, "
        "expires_at = excluded.expires_at, attempts_left = excluded.attempts_left, verified = excluded.verified",
        (
            row.app_id,
            row.reference_id,
            row.destination,
            row.key_id,
            row.salt,
            row.code_hash,
            row.created_at,
            row.expires_at,
            row.attempts_left,
            int(row.verified),
        ),
    )


def lock_code(tx: Transaction, app_id: str, reference_id: str, destination: str) -> OtpCodeRow | None:
    """The code, held until the transaction ends (two verifications of one code take turns)."""
    row = tx.fetchone(
        f"SELECT {_COLUMNS} FROM otp_codes WHERE app_id = ? AND reference_id = ? AND destination = ?"
        f"{tx.dialect.for_update}",
        (app_id, reference_id, destination),
    )
    if row is None:
        return None
    *fields, verified = row
    return OtpCodeRow(*fields, verified=bool(verified))


def mark_verified(tx: Transaction, app_id: str, reference_id: str, destination: str) -> None:
    tx.execute(
        "UPDATE otp_codes SET verified = 1 WHERE app_id = ? AND reference_id = ? AND destination = ?",
        (app_id, reference_id, destination),
    )


def spend_attempt(tx: Transaction, app_id: str, reference_id: str, destination: str) -> None:
    tx.execute(
        "UPDATE otp_codes SET attempts_left = attempts_left - 1 "
        "WHERE app_id = ? AND reference_id = ? AND destination = ? AND attempts_left > 0",
        (app_id, reference_id, destination),
    )


def forget_expired(tx: Transaction, app_id: str, before: int) -> None:
    """Codes that expired before `before`: they can only ever answer Valid false."""
    tx.execute("DELETE FROM otp_codes WHERE app_id = ? AND expires_at < ?", (app_id, before))


def sends_since(tx: Transaction, app_id: str, destination: str, since: int) -> int:
    """Codes sent to the destination from `since` on; older sends are forgotten here, the limit no longer counts
    them."""
    tx.execute(
        "DELETE FROM otp_sends WHERE app_id = ? AND destination = ? AND sent_at < ?", (app_id, destination, since)
    )
    value = tx.scalar("SELECT count(*) FROM otp_sends WHERE app_id = ? AND destination = ?", (app_id, destination))
    return int(value or 0)


def record_send(tx: Transaction, app_id: str, destination: str, sent_at: int) -> None:
    tx.execute("INSERT INTO otp_sends (app_id, destination, sent_at) VALUES (?, ?, ?)", (app_id, destination, sent_at))
