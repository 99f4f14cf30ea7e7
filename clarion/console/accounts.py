"""Console users (argon2id password hashes, roles) and their sessions.

A session is a random cookie value the browser holds; the store keeps only its SHA-256, so a copy of the store
opens no session. Each session carries its own CSRF token, which the page sends back in a header on every change.
Sessions and failed-login counts live in the store, so every server process sees the same ones: signing out or
deleting a user ends their sessions everywhere at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.console.roles import Role
from clarion.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests
from clarion.logs import get_logger
from clarion.store import console as console_store
from clarion.store.console import SessionRow, UserRow
from clarion.store.database import Database, Transaction

SESSION_LIFETIME = timedelta(hours=12)
# Failed sign-ins a user may make in a row before the name is locked: 30 s, then twice as long after each further
# failure, up to 15 minutes.
FREE_FAILURES = 5
FIRST_THROTTLE_SECONDS = 30
MAX_THROTTLE_SECONDS = 15 * 60
MIN_PASSWORD_LENGTH = 12
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
WRONG_CREDENTIALS = "The username or password is not right"

log = get_logger("clarion.console")
_hasher = PasswordHasher()  # argon2id with the library's current defaults (RFC 9106's second recommendation)
# Verified when the name is unknown, so that an unknown name takes as long to refuse as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: Role
    created_at: str


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    role: Role
    csrf_token: str
    expires_at: int  # epoch ms


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise BadRequest(f"Role must be one of {', '.join(r.value for r in Role)}, not {value!r}") from None


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def _user(row: UserRow) -> User:
    return User(row.username, Role(row.role), row.created_at)


class ConsoleAccounts:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def create_user(self, username: str, role: Role, password: str) -> User:
        if not _USERNAME.fullmatch(username):
            raise BadRequest(
                f"Username {username[:80]!r} must be 1-64 letters, digits or . _ @ - and start with a letter or digit"
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"Password must have at least {MIN_PASSWORD_LENGTH} characters")
        row = UserRow(username, _hasher.hash(password), role.value, iso_millis(self.clock.now()), 0, 0)

        def work(tx: Transaction) -> None:
            if not console_store.insert_user(tx, row):
                raise Conflict(f"A console user named {username!r} exists already")

        await self.db.write(work)
        return _user(row)

    async def delete_user(self, username: str) -> None:
        if not await self.db.write(lambda tx: console_store.delete_user(tx, username)):
            raise NotFound(f"No console user named {username!r}")

    async def update_user(self, username: str, role: Role | None, password: str | None) -> User:
        """A new role (effective in the user's open sessions at once), a new password (which ends those sessions,
        and the throttle of failed sign-ins), or both."""
        password_hash = _hasher.hash(password) if password is not None else None

        def work(tx: Transaction) -> User:
            row = console_store.get_user(tx, username)
            if row is None:
                raise NotFound(f"No console user named {username!r}")
            if role is not None:
                console_store.set_role(tx, username, role.value)
            if password_hash is not None:
                console_store.set_password(tx, username, password_hash)
                console_store.set_login_state(tx, username, 0, 0)
                console_store.end_sessions(tx, username)
            return User(username, role or Role(row.role), row.created_at)

        return await self.db.write(work)

    async def users(self) -> list[User]:
        return [_user(row) for row in await self.db.read(console_store.users)]

    async def any_users(self) -> bool:
        return await self.db.read(console_store.count_users) > 0

    async def sign_in(self, username: str, password: str) -> tuple[str, Session]:
        """A new session's cookie value and the session, or Forbidden / TooManyRequests (throttled)."""
        now = epoch_millis(self.clock.now())
        row = await self.db.read(lambda tx: console_store.get_user(tx, username))
        if row is not None and row.throttled_until > now:
            wait = -(-(row.throttled_until - now) // 1000)
            log.warning("console_sign_in_throttled", username=username, retry_seconds=wait)
            raise TooManyRequests(f"Too many failed sign-ins for {username!r}; try again in {wait} s")
        if not self._verify(row.password_hash if row else _DUMMY_HASH, password) or row is None:
            if row is not None:
                await self.db.write(lambda tx: self._count_failure(tx, username, now))
            log.warning("console_sign_in_refused", username=username[:80])
            raise Forbidden(WRONG_CREDENTIALS)
        token = secrets.token_urlsafe(32)
        session = SessionRow(
            _token_hash(token), username, secrets.token_urlsafe(24), now, now + _millis(SESSION_LIFETIME)
        )
        rehash = _hasher.check_needs_rehash(row.password_hash)
        new_hash = _hasher.hash(password) if rehash else None

        def work(tx: Transaction) -> None:
            console_store.set_login_state(tx, username, 0, 0)
            if new_hash is not None:
                console_store.set_password(tx, username, new_hash)
            console_store.delete_expired_sessions(tx, now)
            console_store.insert_session(tx, session)

        await self.db.write(work)
        return token, Session(username, Role(row.role), session.csrf_token, session.expires_at)

    async def session(self, token: str) -> Session | None:
        now = epoch_millis(self.clock.now())
        found = await self.db.read(lambda tx: console_store.get_session(tx, _token_hash(token), now))
        if found is None:
            return None
        row, role = found
        return Session(row.username, Role(role), row.csrf_token, row.expires_at)

    async def sign_out(self, token: str) -> None:
        await self.db.write(lambda tx: console_store.delete_session(tx, _token_hash(token)))

    @staticmethod
    def _verify(password_hash: str, password: str) -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    @staticmethod
    def _count_failure(tx: Transaction, username: str, now: int) -> None:
        row = console_store.get_user(tx, username)
        if row is None:
            return
        failures = row.failed_logins + 1
        throttled_until = 0
        if failures >= FREE_FAILURES:
            seconds = FIRST_THROTTLE_SECONDS * 2 ** min(failures - FREE_FAILURES, 10)
            throttled_until = now + 1000 * min(seconds, MAX_THROTTLE_SECONDS)
        console_store.set_login_state(tx, username, failures, throttled_until)


def _millis(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)
