"""A small asyncio HTTP/2 client for the push providers (APNs, FCM): one TLS connection per origin carrying many
concurrent streams, built on the `h2` state machine.

Why our own: a push send is one small POST, and providers want it multiplexed on a long-lived connection. The
general clients we measured either lack HTTP/2 or fail every in-flight request when the server sends GOAWAY
(httpx raised ConnectionTerminated for them). Here GOAWAY is graceful, as RFC 9113 §6.8 means it: streams the server
will not process (above its last_stream_id, or refused) are retried on a fresh connection; streams it will process
complete on the old one, which closes once they are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError

READ_SIZE = 65_536


@dataclass(frozen=True, slots=True)
class H2Response:
    status: int
    headers: dict[str, str]
    body: bytes


class H2Error(Exception):
    """The request failed at the transport level; the server may or may not have acted on it."""


class H2Unprocessed(H2Error):
    """The server said it did not process the stream (GOAWAY above last_stream_id, REFUSED_STREAM): safe to retry."""


class H2Timeout(H2Error):
    """No complete response within the request timeout."""


def client_ssl_context(
    ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """TLS that offers only h2 by ALPN; `ca_file` adds trust (tests, private gateways), cert/key authenticate us."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["h2"])
    return context


class GracefulH2Connection(H2Connection):
    """h2 moves its connection state machine to CLOSED on GOAWAY and then rejects the responses still owed on the
    streams the peer promised to finish. Keep the state as it was: our side never opens a stream after GOAWAY
    (`_Connection.accepting`), so only those owed frames can arrive."""

    def _receive_goaway_frame(self, frame: Any) -> Any:
        state = self.state_machine.state
        result = super()._receive_goaway_frame(frame)
        self.state_machine.state = state
        return result


class _Stream:
    __slots__ = ("chunks", "headers", "response")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.response: asyncio.Future[H2Response] = loop.create_future()
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []


class _Connection:
    """One TLS connection and its streams. A reader task turns h2 events into stream outcomes; requests wait on
    `_changed` for stream capacity and flow-control window."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str) -> None:
        self.reader = reader
        self.writer = writer
        self.authority = authority
        self.h2 = GracefulH2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.streams: dict[int, _Stream] = {}
        self.accepting = True  # False after GOAWAY or loss: no new streams here
        self.closed = False
        self.settings_received = asyncio.Event()
        self._changed = asyncio.Event()
        self._reader_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int, context: ssl.SSLContext, timeout: float) -> _Connection:
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
                protocol = writer.get_extra_info("ssl_object").selected_alpn_protocol()
                if protocol != "h2":
                    writer.close()
                    raise H2Error(f"{host}:{port} did not negotiate HTTP/2 by ALPN (got {protocol!r})")
                authority = host if port == 443 else f"{host}:{port}"
                connection = cls(reader, writer, authority)
                connection.h2.initiate_connection()
                connection._flush()
                connection._reader_task = asyncio.create_task(connection._read_loop())
                # The server's SETTINGS (its stream limit above all) come first; wait for them before opening streams.
                await connection.settings_received.wait()
                return connection
        except TimeoutError as error:
            if connection is not None:
                await connection.close()
            raise H2Error(f"connecting to {host}:{port} timed out after {timeout:g}s") from error
        except (OSError, ssl.SSLError) as error:
            raise H2Error(f"cannot connect to {host}:{port}: {error}") from error

    async def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> H2Response:
        # Our own count: h2's open_outbound_streams scans every stream it holds, which costs more than the send.
        await self._wait_for(lambda: not self.accepting or len(self.streams) < self._stream_limit())
        if not self.accepting:
            raise H2Unprocessed("connection is going away")
        stream_id = self.h2.get_next_available_stream_id()
        stream = _Stream(asyncio.get_running_loop())
        self.streams[stream_id] = stream
        request_headers = [
            (":method", method),
            (":scheme", "https"),
            (":authority", self.authority),
            (":path", path),
            *headers,
            ("content-length", str(len(body))),
        ]
        try:
            self.h2.send_headers(stream_id, request_headers, end_stream=not body)
            self._flush()
            if body:
                await self._send_body(stream_id, stream, body)
            await self._drain()
            return await stream.response
        except asyncio.CancelledError:
            self._cancel(stream_id)
            raise
        except ProtocolError as error:
            self._cancel(stream_id)
            raise H2Error(f"HTTP/2 protocol error: {error}") from error

    def _stream_limit(self) -> int:
        return self.h2.remote_settings.max_concurrent_streams

    async def _send_body(self, stream_id: int, stream: _Stream, body: bytes) -> None:
        """Send DATA as the stream and connection windows allow (flow control, RFC 9113 §5.2)."""
        remaining = memoryview(body)
        while remaining:
            if stream.response.done():
                return  # reset or answered early; nothing more to send
            window = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size)
            if window <= 0:
                await self._wait_for(lambda: stream.response.done() or self.h2.local_flow_control_window(stream_id) > 0)
                continue
            chunk, remaining = remaining[:window], remaining[window:]
            self.h2.send_data(stream_id, chunk.tobytes(), end_stream=not remaining)
            self._flush()

    async def _wait_for(self, ready: Callable[[], bool]) -> None:
        while not ready():
            if self.closed:
                raise H2Unprocessed("connection closed before the stream was opened")
            await self._changed.wait()

    async def _drain(self) -> None:
        """Wait while the socket's write buffer is full. A broken socket is the reader's to report: it fails
        every stream with the cause."""
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.drain()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _cancel(self, stream_id: int) -> None:
        if self.streams.pop(stream_id, None) is not None and not self.closed:
            with contextlib.suppress(ProtocolError, KeyError):
                self.h2.reset_stream(stream_id, ErrorCodes.CANCEL)
                self._flush()
        self._notify()
        self._close_if_drained()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def _read_loop(self) -> None:
        error: Exception | None = None
        try:
            while True:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    raise H2Error("the server closed the connection")
                for event in self.h2.receive_data(data):
                    self._handle(event)
                self._flush()
                if self.closed:
                    return
        except (OSError, ssl.SSLError, ProtocolError, H2Error) as failure:
            error = failure
        finally:
            self._shut(error)

    def _handle(self, event: Any) -> None:
        if isinstance(event, ResponseReceived):
            if (stream := self.streams.get(event.stream_id)) is not None:
                stream.headers = event.headers
        elif isinstance(event, DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if (stream := self.streams.get(event.stream_id)) is not None:
                stream.chunks.append(event.data)
        elif isinstance(event, StreamEnded):
            if (stream := self.streams.pop(event.stream_id, None)) is not None:
                stream.response.set_result(_response(stream))
            self._notify()
            self._close_if_drained()
        elif isinstance(event, StreamReset):
            if (stream := self.streams.pop(event.stream_id, None)) is not None and not stream.response.done():
                failure = H2Unprocessed if event.error_code == ErrorCodes.REFUSED_STREAM else H2Error
                stream.response.set_exception(failure(f"stream reset by the server ({event.error_code!r})"))
            self._notify()
            self._close_if_drained()
        elif isinstance(event, RemoteSettingsChanged):
            self.settings_received.set()
            self._notify()
        elif isinstance(event, WindowUpdated):
            self._notify()
        elif isinstance(event, ConnectionTerminated):
            self._going_away(event)

    def _going_away(self, event: ConnectionTerminated) -> None:
        self.accepting = False
        last = event.last_stream_id if event.last_stream_id is not None else 0
        for stream_id in [sid for sid in self.streams if sid > last]:
            stream = self.streams.pop(stream_id)
            if not stream.response.done():
                stream.response.set_exception(H2Unprocessed(f"GOAWAY ({event.error_code!r}) above stream {last}"))
        self._notify()
        self._close_if_drained()

    def _close_if_drained(self) -> None:
        if not self.accepting and not self.streams and not self.closed:
            self._shut(None)

    def _shut(self, error: Exception | None) -> None:
        """Close the socket and fail what is still waiting: with `H2Error`, since the server may have acted."""
        self.accepting = False
        self.closed = True
        for stream in self.streams.values():
            if not stream.response.done():
                stream.response.set_exception(H2Error(f"connection lost: {error or 'closed'}"))
        self.streams.clear()
        self.settings_received.set()
        self._notify()
        if not self.writer.is_closing():
            with contextlib.suppress(ProtocolError):
                self.h2.close_connection()
                self._flush()
            self.writer.close()

    async def close(self) -> None:
        self._shut(None)
        if self._reader_task is not None and self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()


def _response(stream: _Stream) -> H2Response:
    headers = {name.decode(): value.decode() for name, value in stream.headers}
    return H2Response(status=int(headers.pop(":status", "0")), headers=headers, body=b"".join(stream.chunks))


class H2Client:
    """Requests to one origin (`https://host[:port]`) over one shared HTTP/2 connection at a time.

    A connection is opened on first use and after the previous one went away; a GOAWAY'd connection keeps
    draining its processed streams on its own. `request` retries only what the server reported as unprocessed.
    """

    def __init__(
        self,
        base_url: str,
        context: ssl.SSLContext,
        *,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        unprocessed_retries: int = 3,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"an HTTP/2 push origin must be https://host[:port], got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.context = context
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.unprocessed_retries = unprocessed_retries
        self.connections_opened = 0
        self._current: _Connection | None = None
        self._all: set[_Connection] = set()
        self._lock = asyncio.Lock()

    async def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> H2Response:
        try:
            async with asyncio.timeout(self.request_timeout):
                for _ in range(self.unprocessed_retries + 1):
                    connection = await self._connection()
                    try:
                        return await connection.request(method, path, headers, body)
                    except H2Unprocessed as unprocessed:
                        last = unprocessed
                raise H2Error(f"not processed after {self.unprocessed_retries + 1} attempts: {last}")
        except TimeoutError as error:
            raise H2Timeout(f"no response within {self.request_timeout:g}s") from error

    async def _connection(self) -> _Connection:
        async with self._lock:
            self._all = {c for c in self._all if not c.closed}
            if self._current is None or not self._current.accepting:
                self._current = await _Connection.open(self.host, self.port, self.context, self.connect_timeout)
                self._all.add(self._current)
                self.connections_opened += 1
            return self._current

    async def close(self) -> None:
        connections, self._all, self._current = self._all, set(), None
        for connection in connections:
            await connection.close()
