"""The web console's users, sessions and audit log."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    password_hash: str
    role: str
    created_at: str
    failed_logins: int
    throttled_until: int  # epoch ms


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_hash: str
    username: str
    csrf_token: str
    created_at: int  # epoch ms
    expires_at: int


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    at: str
    username: str
    action: str
    app_id: str | None
    target: str
    status: int
    request_id: str


_USER = "username, password_hash, role, created_at, failed_logins, throttled_until"
_SESSION = "token_hash, username, csrf_token, created_at, expires_at"
_AUDIT = "seq, at, username, action, app_id, target, status, request_id"


def insert_user(tx: Transaction, row: UserRow) -> bool:
    """Whether the user was added: False when one of that name exists, though written by a transaction this one
    could not see (processes of a group starting together each make the first admin)."""
    return (
        tx.execute(
            f"INSERT INTO console_users ({_USER}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
            (row.username, row.password_hash, row.role, row.created_at, row.failed_logins, row.throttled_until),
        )
        == 1
    )


def get_user(tx: Transaction, username: str) -> UserRow | None:
    row = tx.fetchone(f"SELECT {_USER} FROM console_users WHERE username = ?", (username,))
    return UserRow(*row) if row else None


def users(tx: Transaction) -> list[UserRow]:
    return [UserRow(*row) for row in tx.fetchall(f"SELECT {_USER} FROM console_users ORDER BY username")]


def count_users(tx: Transaction) -> int:
    return int(tx.scalar("SELECT count(*) FROM console_users"))


def delete_user(tx: Transaction, username: str) -> bool:
    end_sessions(tx, username)
    return tx.execute("DELETE FROM console_users WHERE username = ?", (username,)) > 0


def set_login_state(tx: Transaction, username: str, failed_logins: int, throttled_until: int) -> None:
    tx.execute(
        "UPDATE console_users SET failed_logins = ?, throttled_until = ? WHERE username = ?",
        (failed_logins, throttled_until, username),
    )


def set_role(tx: Transaction, username: str, role: str) -> bool:
    """A user's new role (open sessions read it at their next request, get_session)."""
    return tx.execute("UPDATE console_users SET role = ? WHERE username = ?", (role, username)) > 0


def end_sessions(tx: Transaction, username: str) -> None:
    tx.execute("DELETE FROM console_sessions WHERE username = ?", (username,))


def set_password(tx: Transaction, username: str, password_hash: str) -> None:
    tx.execute("UPDATE console_users SET password_hash = ? WHERE username = ?", (password_hash, username))


def insert_session(tx: Transaction, row: SessionRow) -> None:
    tx.execute(
        f"INSERT INTO console_sessions ({_SESSION}) VALUES (?, ?, ?, ?, ?)",
        (row.token_hash, row.username, row.csrf_token, row.created_at, row.expires_at),
    )


def get_session(tx: Transaction, token_hash: str, now_ms: int) -> tuple[SessionRow, str] | None:
    """A live session and its user's current role (a changed role applies to sessions already open)."""
    row = tx.fetchone(
        "SELECT s.token_hash, s.username, s.csrf_token, s.created_at, s.expires_at, u.role "
        "FROM console_sessions s JOIN console_users u ON u.username = s.username "
        "WHERE s.token_hash = ? AND s.expires_at > ?",
        (token_hash, now_ms),
    )
    return (SessionRow(*row[:5]), row[5]) if row else None


def delete_session(tx: Transaction, token_hash: str) -> None:
    tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))


def delete_expired_sessions(tx: Transaction, now_ms: int) -> None:
    tx.execute("DELETE FROM console_sessions WHERE expires_at <= ?", (now_ms,))


def insert_audit(
    tx: Transaction, at: str, username: str, action: str, app_id: str | None, target: str, status: int, request_id: str
) -> None:
    tx.execute(
        "INSERT INTO console_audit (at, username, action, app_id, target, status, request_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, username, action, app_id, target, status, request_id),
    )


def audit_page(tx: Transaction, before: int, size: int) -> list[AuditRow]:
    """Newest first, from before `before` (0: from the newest); size + 1 rows say whether more remain."""
    if before:
        rows = tx.fetchall(
            f"SELECT {_AUDIT} FROM console_audit WHERE seq < ? ORDER BY seq DESC LIMIT ?", (before, size + 1)
        )
    else:
        rows = tx.fetchall(f"SELECT {_AUDIT} FROM console_audit ORDER BY seq DESC LIMIT ?", (size + 1,))
    return [AuditRow(*row) for row in rows]
