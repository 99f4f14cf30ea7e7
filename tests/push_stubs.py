"""Local stand-ins for the push providers, for tests and bench/push.py: a TLS HTTP/2 server on the `h2` package
(ALPN h2, optional client-certificate check, a configurable stream limit, GOAWAY on demand) whose answers come
from an async handler, and handlers that check requests as APNs and FCM document them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded, StreamReset
from h2.settings import SettingCodes, Settings


@dataclass
class StubRequest:
    connection: int  # 1 for the first connection the server accepted, 2 for the next, ...
    stream_id: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    peer_certificate: dict[str, Any] | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StubResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Handler = Callable[[StubRequest], Awaitable[StubResponse]]


def json_response(status: int, value: Any, **headers: str) -> StubResponse:
    return StubResponse(status, {"content-type": "application/json", **headers}, json.dumps(value).encode())


class H2Stub:
    """`goaway_after=N`: on the first connection, after the N-th complete request, send GOAWAY naming that stream
    as the last one processed; hold the answers to those N until then, answer them after it, ignore later streams."""

    def __init__(
        self,
        handler: Handler,
        context: ssl.SSLContext,
        *,
        max_concurrent_streams: int = 1000,
        goaway_after: int | None = None,
    ) -> None:
        self.handler = handler
        self.context = context
        self.max_concurrent_streams = max_concurrent_streams
        self.goaway_after = goaway_after
        self.requests: list[StubRequest] = []
        self.connections = 0
        self.peak_concurrent_streams = 0
        self.refused_streams = 0
        self.goaway_sent = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        port = self._server.sockets[0].getsockname()[1]
        return f"https://localhost:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        number = self.connections
        peer = writer.get_extra_info("peercert")
        conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        # The stream limit goes in the first SETTINGS frame, as providers announce theirs. A client may open streams
        # before that frame arrives (RFC 9113 §6.5.2): those beyond the limit are refused with REFUSED_STREAM, as a
        # server may (§5.1.2), by the stub itself, since h2's own check raises and loses the rest of the read.
        conn.local_settings = Settings(
            client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: self.max_concurrent_streams}
        )
        conn.initiate_connection()
        conn.local_settings = Settings(client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: 2**31 - 1})
        writer.write(conn.data_to_send())
        partial: dict[int, StubRequest] = {}
        held: list[StubRequest] = []
        goaway_here = self.goaway_after is not None and number == 1
        last_processed: int | None = None
        answering: set[asyncio.Task[None]] = set()

        async def answer(request: StubRequest) -> None:
            response = await self.handler(request)
            if writer.is_closing():
                return
            headers = [(":status", str(response.status)), *response.headers.items()]
            headers.append(("content-length", str(len(response.body))))
            conn.send_headers(request.stream_id, headers, end_stream=not response.body)
            if response.body:
                conn.send_data(request.stream_id, response.body, end_stream=True)
            writer.write(conn.data_to_send())

        def start_answer(request: StubRequest) -> None:
            task = asyncio.create_task(answer(request))
            answering.add(task)
            task.add_done_callback(answering.discard)

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, RequestReceived):
                        if last_processed is not None:
                            continue  # opened after our GOAWAY: never processed
                        if conn.open_inbound_streams > self.max_concurrent_streams:
                            conn.reset_stream(event.stream_id, ErrorCodes.REFUSED_STREAM)
                            self.refused_streams += 1
                            continue
                        headers = dict(event.headers)
                        partial[event.stream_id] = StubRequest(
                            number,
                            event.stream_id,
                            headers.pop(":method"),
                            headers.pop(":path"),
                            headers,
                            peer_certificate=peer,
                        )
                        self.peak_concurrent_streams = max(self.peak_concurrent_streams, conn.open_inbound_streams)
                    elif isinstance(event, DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        if event.stream_id in partial:
                            partial[event.stream_id].body += event.data
                    elif isinstance(event, StreamEnded) and event.stream_id in partial:
                        request = partial.pop(event.stream_id)
                        if last_processed is not None and request.stream_id > last_processed:
                            continue
                        self.requests.append(request)
                        if not goaway_here:
                            start_answer(request)
                            continue
                        held.append(request)
                        if len(held) == self.goaway_after:
                            last_processed = request.stream_id
                            conn.close_connection(last_stream_id=last_processed)
                            # h2 closes its state machine on GOAWAY; we still owe answers to `held`.
                            conn.state_machine.state = ConnectionState.SERVER_OPEN
                            self.goaway_sent = True
                            writer.write(conn.data_to_send())
                            for owed in held:
                                start_answer(owed)
                    elif isinstance(event, StreamReset):
                        partial.pop(event.stream_id, None)
                    elif isinstance(event, ConnectionTerminated):
                        return
                writer.write(conn.data_to_send())
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            if answering:
                await asyncio.gather(*answering, return_exceptions=True)
            with contextlib.suppress(Exception):
                writer.write(conn.data_to_send())
                writer.close()


class ApnsStub:
    """Apple's side of `POST /3/device/<token>`: checks method, path, headers and the provider token's ES256
    signature, and answers like Apple. Device tokens choose the answer: one starting `410` is Unregistered, `400`
    BadDeviceToken, `429` TooManyRequests, `503` ServiceUnavailable; any other is delivered."""

    def __init__(self, public_key: Any = None, key_id: str = "", team_id: str = "", topic: str = "") -> None:
        self.public_key = public_key
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self.expired_tokens: set[str] = set()  # provider tokens to answer 403 ExpiredProviderToken
        self.tokens_seen: list[str] = []
        self.delivered: list[StubRequest] = []
        self.delay = 0.0

    async def __call__(self, request: StubRequest) -> StubResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4()).upper()
        problem = self._check(request)
        if problem is not None:
            status, reason = problem
            return json_response(status, {"reason": reason}, **{"apns-id": apns_id})
        token = request.path.removeprefix("/3/device/")
        for prefix, status, reason in (
            ("410", 410, "Unregistered"),
            ("400", 400, "BadDeviceToken"),
            ("429", 429, "TooManyRequests"),
            ("503", 503, "ServiceUnavailable"),
        ):
            if token.startswith(prefix):
                body: dict[str, Any] = {"reason": reason}
                if status == 410:
                    body["timestamp"] = 1_700_000_000_000
                return json_response(status, body, **{"apns-id": apns_id})
        self.delivered.append(request)
        return StubResponse(200, {"apns-id": apns_id})

    def _check(self, request: StubRequest) -> tuple[int, str] | None:
        if request.method != "POST":
            return 405, "MethodNotAllowed"
        if not request.path.startswith("/3/device/"):
            return 404, "BadPath"
        if request.headers.get("apns-topic") != self.topic:
            return 400, "DeviceTokenNotForTopic"
        if request.headers.get("apns-push-type") not in (
            "alert",
            "background",
            "voip",
            "complication",
            "fileprovider",
            "mdm",
            "location",
            "liveactivity",
            "pushtotalk",
        ):
            return 400, "InvalidPushType"
        if request.headers.get("apns-priority") not in (None, "1", "5", "10"):
            return 400, "BadPriority"
        try:
            payload = request.json()
        except ValueError:
            return 400, "PayloadEmpty"
        if not isinstance(payload, dict) or "aps" not in payload:
            return 400, "PayloadEmpty"
        if self.public_key is None:
            return None  # certificate authentication: TLS already checked the client
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("bearer "):
            return 403, "MissingProviderToken"
        token = authorization.removeprefix("bearer ")
        self.tokens_seen.append(token)
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"], options={"verify_iat": False})
        except jwt.InvalidTokenError:
            return 403, "InvalidProviderToken"
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id or "iat" not in claims:
            return 403, "InvalidProviderToken"
        if token in self.expired_tokens:
            return 403, "ExpiredProviderToken"
        return None


class FcmStub:
    """Google's side of FCM v1 `messages:send`: the bearer must be a token `issued` by the OAuth stub, the body a
    v1 message to a token. Tokens choose the answer: `unregistered...` 404 UNREGISTERED, `invalid...` 400
    INVALID_ARGUMENT, `quota...` 429 QUOTA_EXCEEDED with Retry-After, `unavailable...` 503 UNAVAILABLE."""

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.valid_tokens: set[str] = set()
        self.delivered: list[StubRequest] = []
        self.unauthorized = 0

    async def __call__(self, request: StubRequest) -> StubResponse:
        if request.method != "POST" or request.path != f"/v1/projects/{self.project_id}/messages:send":
            return _google_error(404, "NOT_FOUND", f"no such resource {request.path}")
        authorization = request.headers.get("authorization", "")
        if authorization.removeprefix("Bearer ") not in self.valid_tokens:
            self.unauthorized += 1
            return _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _google_error(400, "INVALID_ARGUMENT", "content-type must be JSON")
        message = request.json().get("message", {})
        token = message.get("token", "")
        for prefix, status, code, extra in (
            ("unregistered", 404, "UNREGISTERED", {}),
            ("invalid", 400, "INVALID_ARGUMENT", {}),
            ("quota", 429, "QUOTA_EXCEEDED", {"retry-after": "30"}),
            ("unavailable", 503, "UNAVAILABLE", {}),
        ):
            if token.startswith(prefix):
                return _google_error(status, code, f"{code} for {token}", fcm_code=code, **extra)
        self.delivered.append(request)
        return json_response(200, {"name": f"projects/{self.project_id}/messages/0:{uuid.uuid4().hex}"})


def _google_error(
    status: int, rpc_status: str, message: str, fcm_code: str | None = None, **headers: str
) -> StubResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if fcm_code:
        error["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}]
    return json_response(status, {"error": error}, **headers)


class OAuthStub:
    """Google's token endpoint: checks the RS256 assertion and issues access tokens FCM's stub accepts."""

    def __init__(self, public_key: Any, fcm_stub: FcmStub, expires_in: int = 3600) -> None:
        self.public_key = public_key
        self.fcm_stub = fcm_stub
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.assertions: list[dict[str, Any]] = []
        self.url = ""

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                str(form["assertion"]),
                self.public_key,
                algorithms=["RS256"],
                audience=self.url,
                options={"verify_iat": False, "verify_exp": False},
            )
        except jwt.InvalidTokenError as error:
            return web.json_response({"error": "invalid_grant", "error_description": str(error)}, status=400)
        claims["kid"] = jwt.get_unverified_header(str(form["assertion"])).get("kid")
        self.assertions.append(claims)
        access = f"ya29.test-{len(self.issued)}"
        self.issued.append(access)
        self.fcm_stub.valid_tokens.add(access)
        return web.json_response({"access_token": access, "expires_in": self.expires_in, "token_type": "Bearer"})


@asynccontextmanager
async def oauth_server(stub: OAuthStub) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/token", stub.token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    stub.url = f"http://127.0.0.1:{port}/token"
    try:
        yield stub.url
    finally:
        await runner.cleanup()


def server_context(certificate: Any, *, client_ca: Any = None) -> ssl.SSLContext:
    """TLS for a stub: a trustme server certificate, ALPN h2, and a required client certificate if `client_ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    context.set_alpn_protocols(["h2"])
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
