"""The web console's extension operations (clarion/api/extended_console.py): sessions, users, keys, audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clarion.access_keys.service import AccessKeys, KeyRefused, generate_key
from clarion.api.auth import SESSION_COOKIE, ConsoleIdentity
from clarion.api.call import Call, Handler
from clarion.api.extended import ROUTED_OPERATIONS
from clarion.api.extended_console import (
    AccessKeyItem,
    AccessKeysResponse,
    ConsoleUser,
    ConsoleUsersResponse,
    CreateAccessKeyRequest,
    CreateConsoleUserRequest,
    SessionResponse,
    SignInRequest,
    UpdateConsoleUserRequest,
)
from clarion.clock import iso_millis
from clarion.config import AccessKey
from clarion.console import audit
from clarion.console.accounts import SESSION_LIFETIME, Session, User, generate_password, parse_role
from clarion.console.roles import allowed_operations
from clarion.errors import BadRequest, Forbidden, NotFound, PinpointError
from clarion.paging import page_size


def _cookie(value: str, max_age: int, https: bool) -> tuple[bytes, bytes]:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over TLS."""
    secure = "; Secure" if https else ""
    return (
        b"set-cookie",
        f"{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}".encode(),
    )


def _session_response(session: Session) -> SessionResponse:
    allowed = allowed_operations(session.role, ROUTED_OPERATIONS)
    return SessionResponse(
        signed_in=True,
        username=session.username,
        role=session.role.value,
        csrf_token=session.csrf_token,
        expiration_date=iso_millis(datetime.fromtimestamp(session.expires_at / 1000, UTC)),
        operations=sorted(ROUTED_OPERATIONS if allowed is None else allowed),
    )


async def sign_in(call: Call) -> Any:
    request = call.payload
    assert isinstance(request, SignInRequest)
    services = call.services
    record = {"username": request.username[:80], "action": "ClarionSignIn", "app_id": None, "target": "session"}
    try:
        token, session = await services.console.sign_in(request.username, request.password)
    except PinpointError as refused:
        await audit.record(services.db, services.clock, status=refused.status, request_id=call.ctx.request_id, **record)
        raise
    await audit.record(services.db, services.clock, status=200, request_id=call.ctx.request_id, **record)
    call.response_headers.append(_cookie(token, int(SESSION_LIFETIME.total_seconds()), call.https))
    return _session_response(session)


def _identity(call: Call) -> ConsoleIdentity:
    if call.principal.console is None:
        raise Forbidden(f"{call.operation.name} is for console sessions; requests signed with an access key have none")
    return call.principal.console


async def get_session(call: Call) -> Any:
    if call.principal.console is None:
        return SessionResponse(signed_in=False)
    return _session_response(call.principal.console.session)


async def sign_out(call: Call) -> Any:
    await call.services.console.sign_out(_identity(call).token)
    call.response_headers.append(_cookie("", 0, call.https))


def _user(user: User, password: str | None = None) -> ConsoleUser:
    return ConsoleUser(username=user.username, role=user.role.value, creation_date=user.created_at, password=password)


async def list_users(call: Call) -> Any:
    return ConsoleUsersResponse(item=[_user(user) for user in await call.services.console.users()])


async def create_user(call: Call) -> Any:
    request = call.payload
    assert isinstance(request, CreateConsoleUserRequest)
    password = request.password or generate_password()
    user = await call.services.console.create_user(request.username, parse_role(request.role), password)
    return _user(user, password if request.password is None else None)


async def update_user(call: Call) -> Any:
    request = call.payload
    assert isinstance(request, UpdateConsoleUserRequest)
    username = call.params["Username"]
    if request.role is None and not request.reset_password:
        raise BadRequest("Give a Role, or ResetPassword true")
    role = parse_role(request.role) if request.role is not None else None
    own = call.principal.console is not None and call.principal.console.session.username == username
    if own and role is not None:
        raise BadRequest("Console users cannot change their own role; another admin can")
    password = generate_password() if request.reset_password else None
    return _user(await call.services.console.update_user(username, role, password), password)


async def delete_user(call: Call) -> Any:
    username = call.params["Username"]
    if call.principal.console is not None and call.principal.console.session.username == username:
        raise BadRequest("Console users cannot delete themselves; another admin can")
    await call.services.console.delete_user(username)


def _keys(call: Call) -> AccessKeys:
    return AccessKeys(call.services.db, call.services.channel_secrets, call.services.clock)


def _key_item(key: AccessKey, source: str, created: str | None = None, secret: str | None = None) -> AccessKeyItem:
    return AccessKeyItem(
        access_key_id=key.access_key_id,
        description=key.description,
        projects=key.projects,
        operations=key.operations,
        allow_networks=key.allow_networks,
        creation_date=created,
        source=source,
        secret_access_key=secret,
    )


async def list_access_keys(call: Call) -> Any:
    configured = [_key_item(key, "settings") for key in call.services.settings.all_access_keys()]
    stored = [_key_item(item.key, "store", item.created_at) for item in await _keys(call).stored()]
    return AccessKeysResponse(item=configured + stored)


async def create_access_key(call: Call) -> Any:
    request = call.payload
    assert isinstance(request, CreateAccessKeyRequest)
    scope: dict[str, Any] = {"description": request.description or ""}
    for name, values in (
        ("projects", request.projects),
        ("operations", request.operations),
        ("allow_networks", request.allow_networks),
    ):
        if values:
            scope[name] = values
    try:
        key = await _keys(call).create(generate_key(**scope), known_operations=ROUTED_OPERATIONS)
    except KeyRefused as refused:
        raise BadRequest(str(refused)) from None
    return _key_item(key, "store", iso_millis(call.ctx.now), key.secret_access_key)


async def revoke_access_key(call: Call) -> Any:
    key_id = call.params["AccessKeyId"]
    if any(key.access_key_id == key_id for key in call.services.settings.all_access_keys()):
        raise BadRequest(f"Access key {key_id} comes from the settings; remove it there")
    keys = _keys(call)
    if not any(item.key.access_key_id == key_id for item in await keys.stored()):
        raise NotFound(f"No live stored access key {key_id!r}")
    try:
        await keys.revoke(key_id)
    except KeyRefused as refused:
        raise BadRequest(str(refused)) from None


async def list_audit_events(call: Call) -> Any:
    return await audit.page(call.services.db, page_size(call.params.get("PageSize")), call.params.get("Token"))


HANDLERS: dict[str, Handler] = {
    "ClarionSignIn": sign_in,
    "ClarionGetSession": get_session,
    "ClarionSignOut": sign_out,
    "ClarionListUsers": list_users,
    "ClarionCreateUser": create_user,
    "ClarionUpdateUser": update_user,
    "ClarionDeleteUser": delete_user,
    "ClarionListAccessKeys": list_access_keys,
    "ClarionCreateAccessKey": create_access_key,
    "ClarionRevokeAccessKey": revoke_access_key,
    "ClarionListAuditEvents": list_audit_events,
}
