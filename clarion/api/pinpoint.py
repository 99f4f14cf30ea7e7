"""The Pinpoint wire layer: an ASGI app that turns restJson1 requests into handler calls and back.

Order of work per request: authenticate (the signature checks that need no body first, then the body, read with a
size cap, and its hash), take a token from the key's rate limit, route, check the key's scope, decode
path/query/body against the model, run the handler, encode. Every failure on the way becomes a Pinpoint-style error
that botocore maps to its typed exception.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.responses import Response

from clarion.api.auth import Authenticator, AuthError, Principal
from clarion.api.bodies import read_bounded_body
from clarion.api.call import Call, Handler
from clarion.api.extended import ROUTED_OPERATIONS
from clarion.api.handlers import HANDLERS
from clarion.api.operations import Operation
from clarion.api.rate_limits import RateLimiter
from clarion.api.routing import Router
from clarion.console import audit
from clarion.context import CallContext
from clarion.errors import (
    BadRequest,
    Forbidden,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PinpointError,
)
from clarion.logs import get_logger
from clarion.services import Services
from clarion.tags.service import parse_arn

MAX_BODY_BYTES = 7 * 1024 * 1024  # "Amazon Pinpoint quotas": 7 MB per request
MAX_BODY_BYTES_BY_OPERATION = {"PutEvents": 4 * 1024 * 1024}
# Operations without a project in their path that a project-limited key may still call (each narrows itself;
# PhoneNumberValidate is a lookup that touches no project data).
PROJECT_SCOPED_ACCOUNT_OPERATIONS = frozenset({"GetApps", "CreateApp", "PhoneNumberValidate"})

log = get_logger("clarion.api")

Scope = dict[str, Any]


class PinpointAPI:
    def __init__(
        self,
        services: Services,
        authenticator: Authenticator,
        handlers: dict[str, Handler] = HANDLERS,
    ) -> None:
        self.services = services
        self.authenticator = authenticator
        self.handlers = handlers
        self.router = Router(ROUTED_OPERATIONS)  # Pinpoint's operations plus Clarion's extensions
        self.rate_limiter = RateLimiter(services.metrics, services.buckets)
        self._decoders: dict[type, msgspec.json.Decoder[Any]] = {}
        # The metrics' children by (operation, status): prometheus_client's labels() takes a lock and builds a key
        # on every call, and every request observes two of them.
        self._observed: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        operation_name = "Unrouted"
        principal: Principal | None = None
        params: dict[str, Any] = {}
        extra_headers: list[tuple[bytes, bytes]] = []
        try:
            body = _Body(scope, receive, MAX_BODY_BYTES)
            now = self.services.clock.now()
            try:
                principal = await self.authenticator.authenticate(scope, body.read, now)
            except AuthError as refused:
                self.services.metrics.auth_failures.labels(refused.reason).inc()
                log.warning(
                    "auth_refused",
                    request_id=request_id,
                    reason=refused.reason,
                    detail=refused.message,
                    client=(scope.get("client") or ("",))[0],
                    method=scope["method"],
                    path=scope["path"],
                )
                raise
            await self.rate_limiter.take(principal.access_key_id, principal.rate_limit, now.timestamp())
            raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            operation, path_values = self.router.match(scope["method"], raw_path)
            operation_name = operation.name
            raw_body = await body.read()
            limit = MAX_BODY_BYTES_BY_OPERATION.get(operation.name)
            if limit and len(raw_body) > limit:
                raise PayloadTooLarge(
                    f"{operation.name} accepts at most {limit} bytes; this request has {len(raw_body)}"
                )
            params = {**path_values, **_query_params(operation, scope.get("query_string", b""))}
            _check_scope(principal, operation.name, params)
            handler = self.handlers.get(operation.name)
            if handler is None:
                raise MethodNotAllowed(
                    f"Clarion does not implement {operation.name} yet; the operation is routed but not built"
                )
            call = Call(
                operation=operation,
                ctx=CallContext(request_id, principal.region, self.services.settings.account_id, now),
                principal=principal,
                params=params,
                payload=self._payload(operation, raw_body),
                services=self.services,
                https=scope.get("scheme") == "https",
            )
            result = await handler(call)
            status, payload = _success(operation, result, request_id)
            extra_headers = call.response_headers
        except PinpointError as error:
            await self._audit(scope, principal, operation_name, params, error.status, request_id)
            await _send(send, error.status, _error_body(error, request_id), request_id, error.code)
            self._observe(operation_name, error.status, started, request_id, principal)
            return
        except Exception:
            log.exception("internal_error", request_id=request_id, operation=operation_name)
            error = InternalServerError(f"Clarion failed to answer; the server log has request id {request_id}")
            await self._audit(scope, principal, operation_name, params, error.status, request_id)
            await _send(send, error.status, _error_body(error, request_id), request_id, error.code)
            self._observe(operation_name, error.status, started, request_id, principal)
            return
        await self._audit(scope, principal, operation_name, params, status, request_id)
        await _send(send, status, payload, request_id, extra_headers=extra_headers)
        self._observe(operation_name, status, started, request_id, principal)

    async def _audit(
        self,
        scope: Scope,
        principal: Principal | None,
        operation: str,
        params: dict[str, Any],
        status: int,
        request_id: str,
    ) -> None:
        """Every change a console session asks for goes in the audit log, refused ones too (clarion/console/audit.py),
        before the answer: a change the console was told about is in the log. Sign-ins are recorded by their
        handler, which knows the name tried."""
        if principal is None or principal.console is None or scope["method"] in ("GET", "HEAD"):
            return
        try:
            await audit.record(
                self.services.db,
                self.services.clock,
                username=principal.console.session.username,
                action=operation,
                app_id=params.get("ApplicationId"),
                target=f"{scope['method']} {scope['path']}",
                status=status,
                request_id=request_id,
            )
        except Exception:
            # The change itself is done and answered; a lost audit entry is logged loudly and counted.
            log.exception("console_audit_failed", request_id=request_id, operation=operation)
            self.services.metrics.console_audit_failures.inc()

    def _payload(self, operation: Operation, body: bytes) -> msgspec.Struct | None:
        if operation.input_type is None:
            return None
        if not body.strip():
            if operation.input_required:
                raise BadRequest(f"{operation.name} needs a JSON body ({operation.input_member})")
            return None
        decoder = self._decoders.get(operation.input_type)
        if decoder is None:
            decoder = self._decoders[operation.input_type] = msgspec.json.Decoder(operation.input_type)
        try:
            return decoder.decode(body)
        except msgspec.ValidationError as error:
            raise BadRequest(f"Invalid {operation.input_member}: {error}") from None
        except msgspec.DecodeError as error:
            raise BadRequest(f"The request body is not valid JSON: {error}") from None
        except RecursionError:
            # msgspec bounds nesting by the interpreter's recursion limit (about 1,000 levels; Pinpoint's deepest
            # shapes need about 15) and stops there. A scan for depth before decoding was measured at 0.4 ms per
            # 23 KB batch, more than decoding it, so the decoder's own bound is the one Clarion relies on.
            raise BadRequest(f"The {operation.input_member} JSON is nested too deeply") from None

    def _observe(
        self, operation: str, status: int, started: float, request_id: str, principal: Principal | None
    ) -> None:
        elapsed = time.perf_counter() - started
        children = self._observed.get((operation, status))
        if children is None:
            metrics = self.services.metrics
            children = metrics.requests.labels(operation, str(status)), metrics.latency.labels(operation)
            self._observed[(operation, status)] = children
        children[0].inc()
        children[1].observe(elapsed)
        if self.services.settings.access_log:
            log.info(
                "request",
                request_id=request_id,
                operation=operation,
                status=status,
                ms=round(elapsed * 1000, 2),
                key=principal.access_key_id if principal else None,
            )


def _check_scope(principal: Principal, name: str, params: dict[str, Any]) -> None:
    """Refuse what the caller's key does not cover: the operation, and the project the call touches."""
    if not principal.may_call(name):
        raise Forbidden(f"Access key {principal.access_key_id} may not call {name}")
    app_id = params.get("ApplicationId")
    if app_id is None and "ResourceArn" in params:
        app_id = parse_arn(params["ResourceArn"]).app_id
        if app_id is None and principal.projects is not None:
            raise Forbidden(f"Access key {principal.access_key_id} is limited to projects; this is not one")
    if app_id is None and principal.projects is not None and name not in PROJECT_SCOPED_ACCOUNT_OPERATIONS:
        # Templates, recommenders and the like belong to the whole account, not to the key's projects.
        raise Forbidden(f"Access key {principal.access_key_id} is limited to projects; {name} is account-wide")
    if app_id is not None and not principal.may_use(app_id):
        raise Forbidden(f"Access key {principal.access_key_id} may not use project {app_id}")


def _query_params(operation: Operation, query_string: bytes) -> dict[str, Any]:
    if not operation.query_params or not query_string:
        return {}
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("The query string is not valid UTF-8 once percent-decoded") from None
    values: dict[str, Any] = {}
    for param in operation.query_params:
        given = [value for key, value in pairs if key == param.name]
        if not given:
            continue
        if param.kind == "list":
            values[param.member] = given
        elif param.kind == "bool":
            if given[0] not in ("true", "false"):
                raise BadRequest(f"Query parameter {param.name} must be true or false, not {given[0]!r}")
            values[param.member] = given[0] == "true"
        elif param.kind == "timestamp":
            try:
                values[param.member] = datetime.fromisoformat(given[0])
            except ValueError:
                raise BadRequest(f"Query parameter {param.name} is not an ISO-8601 time: {given[0]!r}") from None
        else:
            values[param.member] = given[0]
    return values


def _success(operation: Operation, result: Any, request_id: str) -> tuple[int, bytes | None]:
    if operation.status == 204:
        return 204, None
    if result is None and operation.output_member == "MessageBody":
        result = {"Message": "Accepted", "RequestID": request_id}
    if result is None:
        result = {}
    if isinstance(result, msgspec.Struct):
        return operation.status, msgspec.json.encode(result)
    return operation.status, msgspec.json.encode(result)


def _error_body(error: PinpointError, request_id: str) -> bytes:
    return msgspec.json.encode({"Message": error.message, "RequestID": request_id, "__type": error.code})


def error_response(error: PinpointError) -> Response:
    """A Pinpoint-shaped error for answers given outside the pipeline (unknown paths, framework refusals)."""
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error.code}
    body = _error_body(error, request_id)
    return Response(body, status_code=error.status, headers=headers, media_type="application/json")


async def not_found(scope: Scope, receive: Any, send: Any) -> None:
    """An ASGI app that answers NotFoundException without reading the request (paths with nothing behind them)."""
    path = scope["path"]
    shown = repr(path if len(path) <= 200 else path[:200] + "...")
    await error_response(NotFound(f"Nothing serves {scope['method']} {shown}"))(scope, receive, send)


class _Body:
    """The request body, read once, when first asked for, refused past `limit` bytes before it is all in memory."""

    def __init__(self, scope: Scope, receive: Any, limit: int) -> None:
        self._scope = scope
        self._receive = receive
        self._limit = limit
        self._body: bytes | None = None

    async def read(self) -> bytes:
        if self._body is None:
            self._body = await read_bounded_body(self._scope, self._receive, self._limit)
        return self._body


async def _send(
    send: Any,
    status: int,
    body: bytes | None,
    request_id: str,
    error_code: str | None = None,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    headers = [(b"x-amzn-requestid", request_id.encode()), *extra_headers]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    else:
        headers.append((b"content-length", b"0"))
    if error_code:
        headers.append((b"x-amzn-errortype", error_code.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body or b""})
