"""Get, update and delete a project's channel resources (the channel resources of Pinpoint's API Reference), keeping
their secrets sealed at rest.

Responses never carry a secret (ApiKey, ServiceJson, Certificate, PrivateKey, TokenKey, SecretKey, ClientSecret):
only the flags Pinpoint answers instead (HasCredential, HasTokenKey, HasFcmServiceCredentials).

For the send pipeline, and nothing that answers a client:

    `await channel_config(db, app_id, channel_type, box)` -> the channel's request members as they were written,
    secrets opened, plus `Enabled`, `Version` and `Platform`; None when the project has no such channel (or the type
    has no channel resource: IN_APP, CUSTOM, PUSH). `box` is `Services.channel_secrets`. Raises SecretKeyError
    when the stored secrets cannot be opened with this server's keys.
"""

from __future__ import annotations

from typing import Any

import msgspec

from clarion.channels.rules import BY_TYPE, ChannelKind
from clarion.channels.secrets import SecretBox, SecretKeyError
from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.domain_events import Change, ChannelChanged
from clarion.errors import InternalServerError, NotFound
from clarion.logs import get_logger
from clarion.projects.service import require_app
from clarion.store import channels as channel_store
from clarion.store.database import Database, Transaction

log = get_logger("clarion.channels")

# In-app messaging is always on and has no channel resource; GetChannels still lists it, as Pinpoint does.
IN_APP_ENTRY = {"Enabled": True, "IsArchived": False, "Version": 0}


def _context(app_id: str, channel_type: str) -> str:
    """What a sealed value is bound to: it opens only in the row it was sealed for."""
    return f"apps/{app_id}/channels/{channel_type}"


def _flags(kind: ChannelKind, row: channel_store.ChannelRow) -> dict[str, Any]:
    """What a response says about the credentials instead of the credentials (HasCredential, HasTokenKey, ...)."""
    return kind.flags(msgspec.json.decode(row.settings), frozenset(msgspec.json.decode(row.secret_names)))


def _common(kind: ChannelKind, row: channel_store.ChannelRow) -> dict[str, Any]:
    """The members every channel response shares (ChannelResponse): what GetChannels lists per channel."""
    response: dict[str, Any] = {
        "ApplicationId": row.app_id,
        "CreationDate": row.created_at,
        "Enabled": row.enabled,
        "Id": kind.resource_id,
        "IsArchived": False,
        "LastModifiedBy": row.modified_by,
        "LastModifiedDate": row.modified_at,
        "Version": row.version,
    }
    flags = _flags(kind, row)
    if "HasCredential" in flags:
        response["HasCredential"] = flags["HasCredential"]
    return response


def _response(kind: ChannelKind, row: channel_store.ChannelRow) -> dict[str, Any]:
    """The channel type's own response (EmailChannelResponse, APNSChannelResponse, ...): never a secret."""
    settings = msgspec.json.decode(row.settings)
    response = _common(kind, row)
    response.update(_flags(kind, row))
    response["Platform"] = kind.channel_type
    response.update({member: settings[member] for member in kind.echoed if member in settings})
    return response


def _open_secrets(box: SecretBox, row: channel_store.ChannelRow) -> dict[str, Any]:
    if row.secrets is None:
        return {}
    return msgspec.json.decode(box.open(row.secrets, _context(row.app_id, row.channel_type)))


def _require_channel(
    tx: Transaction, app_id: str, kind: ChannelKind, *, lock: bool = False
) -> channel_store.ChannelRow:
    require_app(tx, app_id)
    row = channel_store.get(tx, app_id, kind.channel_type, lock=lock)
    if row is None:
        raise NotFound(f"The {kind.channel_type} channel is not configured for application {app_id!r}")
    return row


async def get_channel(db: Database, app_id: str, kind: ChannelKind) -> dict[str, Any]:
    return await db.read(lambda tx: _response(kind, _require_channel(tx, app_id, kind)))


async def list_channels(db: Database, app_id: str) -> dict[str, Any]:
    """Every configured channel by type, with the generic members only (ChannelResponse), plus IN_APP."""

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        channels = {
            row.channel_type: _common(BY_TYPE[row.channel_type], row) for row in channel_store.for_app(tx, app_id)
        }
        return {"Channels": {**channels, "IN_APP": dict(IN_APP_ENTRY)}}

    return await db.read(work)


async def update_channel(
    db: Database, box: SecretBox, ctx: CallContext, app_id: str, kind: ChannelKind, request: dict[str, Any], by: str
) -> dict[str, Any]:
    """Create the channel or update it in place (partial update, clarion/channels/rules.py); Version grows by one.

    `by` is the access key id of the caller, answered as LastModifiedBy.
    """
    given = {member: request[member] for member in kind.members if member in request}
    modified_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        current = channel_store.get(tx, app_id, kind.channel_type, lock=True)
        stored: dict[str, Any] = {}
        if current is not None:
            stored = msgspec.json.decode(current.settings)
            try:
                stored.update(_open_secrets(box, current))
            except SecretKeyError as error:
                raise InternalServerError(str(error)) from None
        channel = {member: value for member, value in {**stored, **given}.items() if value != ""}
        kind.check(given, channel)
        settings = {member: channel[member] for member in kind.settings if member in channel}
        secrets = {member: channel[member] for member in kind.secrets if member in channel}
        row = channel_store.ChannelRow(
            app_id=app_id,
            channel_type=kind.channel_type,
            version=current.version + 1 if current else 1,
            enabled=request.get("Enabled", current.enabled if current else True),
            created_at=current.created_at if current else modified_at,
            modified_at=modified_at,
            modified_by=by,
            settings=msgspec.json.encode(settings).decode(),
            secret_names=msgspec.json.encode(sorted(secrets)).decode(),
            secrets=box.seal(msgspec.json.encode(secrets), _context(app_id, kind.channel_type)) if secrets else None,
        )
        channel_store.put(tx, row)
        tx.record(ChannelChanged(app_id, kind.channel_type, Change.UPDATED if current else Change.CREATED))
        return _response(kind, row)

    return await db.write(work)


async def delete_channel(db: Database, app_id: str, kind: ChannelKind) -> dict[str, Any]:
    """Remove the channel and its secrets; answer with the channel as it was."""

    def work(tx: Transaction) -> dict[str, Any]:
        row = _require_channel(tx, app_id, kind, lock=True)
        channel_store.delete(tx, app_id, kind.channel_type)
        tx.record(ChannelChanged(app_id, kind.channel_type, Change.DELETED))
        return _response(kind, row)

    return await db.write(work)


async def channel_config(db: Database, app_id: str, channel_type: str, box: SecretBox) -> dict[str, Any] | None:
    """The channel as the send pipeline needs it, secrets opened (module docstring). Never hand this to a client."""
    kind = BY_TYPE.get(channel_type)
    if kind is None:
        return None

    def work(tx: Transaction) -> dict[str, Any] | None:
        row = channel_store.get(tx, app_id, channel_type)
        if row is None:
            return None
        config: dict[str, Any] = msgspec.json.decode(row.settings)
        config.update(_open_secrets(box, row))
        config.update(Enabled=row.enabled, Version=row.version, Platform=channel_type)
        return config

    return await db.read(work)


async def reseal_channels(db: Database, box: SecretBox) -> int:
    """Re-seal every stored secret not sealed with the current key (after a rotation); return how many.

    Runs at start, so once every process has started with the new key the retired one can be dropped. Secrets no
    configured key opens are left as they are and logged: the server still starts, and those channels answer
    the same error on update and send until the right key is configured.
    """

    def work(tx: Transaction) -> int:
        count = 0
        for app_id, channel_type, sealed in channel_store.sealed(tx):
            if box.sealed_with_current(sealed):
                continue
            context = _context(app_id, channel_type)
            try:
                secrets = box.open(sealed, context)
            except SecretKeyError as error:
                log.error("channel_secrets_unreadable", app_id=app_id, channel_type=channel_type, detail=str(error))
                continue
            channel_store.replace_secrets(tx, app_id, channel_type, box.seal(secrets, context))
            count += 1
        return count

    return await db.write(work)
