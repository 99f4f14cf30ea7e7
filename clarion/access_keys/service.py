"""Access keys: the ones in the settings, and the ones `clarion keys create` stores so that every server process
accepts a new key, and refuses a revoked one, within about a second and without a restart.

Stored secrets are sealed with the channel-secrets key (clarion/channels/secrets.py): SigV4 needs the secret
itself, so it cannot be kept as a one-way hash. Several processes on PostgreSQL therefore share
`delivery.secret_key`, as they already must for channel credentials.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import secrets
import string
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from pydantic import ValidationError

from clarion.channels.secrets import SecretBox, SecretKeyError
from clarion.clock import Clock, iso_millis
from clarion.config import AccessKey
from clarion.domain_events import AccessKeysChanged
from clarion.logs import get_logger
from clarion.store import access_keys as key_store
from clarion.store import apps as app_store
from clarion.store.access_keys import AccessKeyRow
from clarion.store.database import Database, Transaction

KEY_ID_PREFIX = "CLRN"
# Where keys were kept before they moved into the store; adopted into the store, then removed.
LEGACY_KEY_FILE = "access-keys.json"
REFRESH_SECONDS = 1.0
_SCOPE_FIELDS = ("projects", "operations", "allow_networks", "requests_per_second", "burst")

log = get_logger("clarion.access_keys")


class KeyRefused(ValueError):
    """A key cannot be created or revoked as asked; the message says why, naming the value."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    key: AccessKey
    created_at: str


def generate_key(**scope: Any) -> AccessKey:
    """A fresh key pair: an id in the style of AWS key ids, and a 240-bit secret."""
    alphabet = string.ascii_uppercase + string.digits
    key_id = KEY_ID_PREFIX + "".join(secrets.choice(alphabet) for _ in range(16))
    try:
        return AccessKey(access_key_id=key_id, secret_access_key=secrets.token_urlsafe(30), **scope)
    except ValidationError as error:
        raise KeyRefused("; ".join(str(item["msg"]) for item in error.errors())) from None


def _context(access_key_id: str) -> str:
    return f"access key {access_key_id}"


class AccessKeys:
    """The stored keys: create, revoke, list, and the cheap version every process polls."""

    def __init__(self, db: Database, box: SecretBox, clock: Clock) -> None:
        self.db = db
        self.box = box
        self.clock = clock

    async def create(self, key: AccessKey, *, known_operations: Collection[str]) -> AccessKey:
        """Store `key` once its operations and projects are known ones (KeyRefused names the first that is not)."""
        for operation in key.operations:
            if operation != "*" and operation not in known_operations:
                close = difflib.get_close_matches(operation, list(known_operations), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise KeyRefused(f"Unknown operation {operation!r}{hint}")
        row = self._row(key, iso_millis(self.clock.now()))

        def work(tx: Transaction) -> None:
            for project in key.projects:
                if project != "*" and app_store.get(tx, project) is None:
                    raise KeyRefused(f"No project {project!r} in this store; `aws pinpoint get-apps` lists them")
            key_store.insert(tx, row)
            tx.record(AccessKeysChanged(key.access_key_id))

        await self.db.write(work)
        return key

    async def revoke(self, access_key_id: str) -> None:
        def work(tx: Transaction) -> None:
            found = key_store.get(tx, access_key_id)
            if found is None:
                raise KeyRefused(f"No stored access key {access_key_id!r}; `clarion keys list` shows them")
            if not key_store.revoke(tx, access_key_id, iso_millis(self.clock.now())):
                raise KeyRefused(f"Access key {access_key_id} was already revoked at {found.revoked_at}")
            tx.record(AccessKeysChanged(access_key_id))

        await self.db.write(work)

    async def stored(self) -> list[StoredKey]:
        """The live stored keys with their scopes, for listing: secrets stay sealed (`secret_access_key` is empty)."""
        rows = await self.db.read(key_store.live)
        return [StoredKey(_key(row, secret=""), row.created_at) for row in rows]

    async def readable(self) -> list[AccessKey]:
        """The live keys with their secrets; a key sealed under a key this process lacks is left out and logged,
        since refusing it is the only safe reading."""
        keys = []
        for row in await self.db.read(key_store.live):
            try:
                secret = self.box.open(row.secret, _context(row.access_key_id)).decode()
            except SecretKeyError as error:
                log.error("access_key_unreadable", access_key_id=row.access_key_id, detail=str(error))
                continue
            keys.append(_key(row, secret))
        return keys

    async def version(self) -> tuple[int, int]:
        return await self.db.read(key_store.version)

    async def adopt_key_file(self, data_dir: Path) -> None:
        """Move keys from the file older Clarions kept them in (plain-text secrets) into the store."""
        path = data_dir / LEGACY_KEY_FILE
        if not path.exists():
            return
        keys = [AccessKey(**item) for item in json.loads(path.read_text())]
        now = iso_millis(self.clock.now())

        def work(tx: Transaction) -> list[str]:
            adopted = []
            for key in keys:
                if key_store.get(tx, key.access_key_id) is None:
                    key_store.insert(tx, self._row(key, now))
                    adopted.append(key.access_key_id)
            return adopted

        adopted = await self.db.write(work)
        path.unlink()
        log.info("access_keys_adopted", file=str(path), access_key_ids=adopted)

    def _row(self, key: AccessKey, created_at: str) -> AccessKeyRow:
        return AccessKeyRow(
            access_key_id=key.access_key_id,
            secret=self.box.seal(key.secret_access_key.encode(), _context(key.access_key_id)),
            description=key.description,
            scope=msgspec.json.encode(key.model_dump(include=set(_SCOPE_FIELDS))).decode(),
            created_at=created_at,
            revoked_at=None,
        )


def _key(row: AccessKeyRow, secret: str) -> AccessKey:
    scope = msgspec.json.decode(row.scope)
    return AccessKey(access_key_id=row.access_key_id, secret_access_key=secret, description=row.description, **scope)


class KeyRing:
    """The keys requests are checked against: the configured ones, then the live stored ones.

    `version` changes whenever `keys` does, so the authenticator rebuilds what it derives from them only then; a
    request costs one integer comparison. A key stored or revoked by any process reaches `refresh` at once (an
    AccessKeysChanged event; on PostgreSQL from other processes too), and `follow` polls the store's version once a
    second for the writes no event announces here (`clarion keys` on the embedded store, another process's write
    on it).
    """

    def __init__(self, configured: list[AccessKey], stored: AccessKeys | None = None) -> None:
        self._configured = {key.access_key_id: key for key in configured}
        self._stored = stored
        self._seen: tuple[int, int] | None = None
        self.keys: dict[str, AccessKey] = dict(self._configured)
        self.version = 0

    async def keys_changed(self, _: AccessKeysChanged) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        if self._stored is None:
            return
        seen = await self._stored.version()
        if seen == self._seen:
            return
        keys = dict(self._configured)
        for stored in await self._stored.readable():
            keys.setdefault(stored.access_key_id, stored)  # a configured key wins over a stored one of the same id
        self.keys, self._seen = keys, seen
        self.version += 1

    async def follow(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
            except Exception:
                log.exception("access_keys_refresh_failed")
