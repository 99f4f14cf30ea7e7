"""libcurl's multi interface driven by the asyncio event loop: many transfers on few connections, HTTP/2 streams
multiplexed on one connection per origin, with framing, HPACK and TLS done in C.

libcurl tells us which sockets to watch (`M_SOCKETFUNCTION`) and when to wake it (`M_TIMERFUNCTION`); the loop
watches them and calls `socket_action`, and finished transfers are collected from `info_read`. Everything runs on
the loop's thread, so no locking: a request costs Python only the setting of its options and the collecting of its
answer (about 50 µs against about 300 µs for the same HTTP/2 request through the pure-Python `h2` library,
docs/benchmarks.md, "Push sending").

`Transfer` holds one request's state; what a request may do (addresses, schemes, sizes, times) is decided by the
guarded client in client.py, the only user of this module.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Mapping

import pycurl

# Unread answer bytes a transfer buffers before libcurl is told to pause it (a slow reader of a large download).
HIGH_WATER = 1 << 20


class Headers(Mapping[str, str]):
    """An answer's headers, looked up in any case (names are kept in lower case; the last of a repeated one wins).

    A batch's answers come with their raw header lines, parsed only if someone looks (most are never read)."""

    __slots__ = ("_lines", "_parsed")

    def __init__(self, values: dict[str, str] | None = None, lines: list[bytes] | None = None) -> None:
        self._lines = lines
        self._parsed = values if values is not None else None if lines is not None else {}

    @property
    def _values(self) -> dict[str, str]:
        if self._parsed is None:
            self._parsed = {}
            for line in self._lines or ():
                if line.startswith(b"HTTP/"):
                    self._parsed = {}  # a new answer's head: its headers only
                    continue
                name, separator, value = line.decode("latin-1").partition(":")
                if separator:
                    self._parsed[name.strip().lower()] = value.strip()
        return self._parsed

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._values.get(name.lower(), default)


class Transfer:
    """One request on its easy handle: the answer's head and body as they arrive, and how it ended."""

    __slots__ = (
        "body_limit",
        "buffered",
        "chunks",
        "done",
        "error",
        "handle",
        "head",
        "header_values",
        "paused",
        "readable",
        "received",
        "refused",
        "status",
        "streaming",
        "too_large",
    )

    def __init__(self, handle: pycurl.Curl, body_limit: int, streaming: bool, loop: asyncio.AbstractEventLoop):
        self.handle = handle
        self.body_limit = body_limit
        self.streaming = streaming  # a reader takes chunks as they come; otherwise the body is wanted whole
        self.header_values: dict[str, str] = {}
        self.head: asyncio.Future[None] = loop.create_future()  # the answer's status and headers are in
        self.done: asyncio.Future[None] = loop.create_future()  # the transfer ended (error holds why, if it failed)
        self.readable = asyncio.Event()
        self.chunks: list[bytes] = []
        self.received = 0
        self.buffered = 0  # received but not yet taken by the reader
        self.error: tuple[int, str] | None = None
        self.refused: object = None  # set by the client's socket check when it refused an address
        self.too_large = False
        self.paused = False
        self.status = 0  # the answer's HTTP status, once its head is in

    def on_header(self, line: bytes) -> None:
        if line.startswith(b"HTTP/"):
            self.header_values = {}  # a new answer (after a 100 Continue, say): its headers only
            fields = line.split(None, 2)
            self.status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        elif line == b"\r\n" or line == b"\n":
            if self.status >= 200 and not self.head.done():
                self.head.set_result(None)
        else:
            name, separator, value = line.decode("latin-1").partition(":")
            if separator:
                self.header_values[name.strip().lower()] = value.strip()

    def on_body(self, data: bytes) -> int | None:
        if self.streaming and self.buffered >= HIGH_WATER:
            self.paused = True
            return pycurl.WRITEFUNC_PAUSE  # libcurl keeps `data` and hands it over again once resumed
        self.received += len(data)
        if self.received > self.body_limit:
            self.too_large = True
            return 0  # ends the transfer with CURLE_WRITE_ERROR
        self.chunks.append(data)
        self.buffered += len(data)
        self.readable.set()
        return None

    def take(self) -> list[bytes]:
        chunks, self.chunks, self.buffered = self.chunks, [], 0
        self.readable.clear()
        return chunks

    def finish(self, error: tuple[int, str] | None) -> None:
        self.error = error
        if not self.head.done():
            self.head.set_result(None)
        if not self.done.done():
            self.done.set_result(None)
        self.readable.set()


class Batch:
    """Posts started together and awaited together: one future for all of them, not one per request."""

    __slots__ = ("done", "left")

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.left = size
        self.done: asyncio.Future[None] = loop.create_future()


class Posted:
    """One post of a Batch on its easy handle: the answer's raw head lines and body, collected with the fewest
    Python calls (libcurl appends the head lines itself; the status is read from the handle at the end)."""

    __slots__ = ("batch", "body_limit", "chunks", "error", "handle", "head", "received", "refused", "too_large")

    def __init__(self, batch: Batch, handle: pycurl.Curl, body_limit: int) -> None:
        self.batch = batch
        self.handle = handle
        self.body_limit = body_limit
        self.head: list[bytes] = []
        self.chunks: list[bytes] = []
        self.received = 0
        self.error: tuple[int, str] | None = None
        self.refused: object = None
        self.too_large = False

    def on_body(self, data: bytes) -> int | None:
        self.received += len(data)
        if self.received > self.body_limit:
            self.too_large = True
            return 0  # ends the transfer with CURLE_WRITE_ERROR
        self.chunks.append(data)
        return None

    def finish(self, error: tuple[int, str] | None) -> None:
        self.error = error
        batch = self.batch
        batch.left -= 1
        if not batch.left and not batch.done.done():
            batch.done.set_result(None)


class Turns:
    """A project's requests in flight, at most `limit`: a request or a batch waits for one turn and takes as many
    more as are free, so that two batches never each hold part of what the other waits for. Turns go to waiters
    in the order they came."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def take(self, wanted: int) -> int:
        if self.free <= 0 or self._waiting:
            future = asyncio.get_running_loop().create_future()
            self._waiting.append(future)
            try:
                await future  # set once `give` handed this waiter a turn
            except BaseException:
                if future.done() and not future.cancelled():
                    self.give(1)  # handed a turn, then cancelled: it goes to the next
                raise
            wanted -= 1
            taken = 1
        else:
            taken = 0
        more = min(wanted, self.free)
        self.free -= more
        return taken + more

    def give(self, count: int) -> None:
        self.free += count
        while self.free > 0 and self._waiting:
            future = self._waiting.popleft()
            if not future.done():  # a waiter cancelled meanwhile is passed over
                self.free -= 1
                future.set_result(None)


class CurlLoop:
    """A libcurl multi handle on one event loop: `start` a configured handle, await its Transfer's futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._transfers: dict[pycurl.Curl, Transfer | Posted] = {}
        self._watched: dict[int, int] = {}  # fd -> the events watched on it (pycurl.POLL_IN/OUT bits)
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0  # when the timer runs, on the loop's clock
        self._closed = False
        self.turns: dict[str, Turns] = {}  # each project's requests in flight (the client's fairness)

    def start(self, transfer: Transfer | Posted) -> None:
        self._transfers[transfer.handle] = transfer
        self.multi.add_handle(transfer.handle)  # libcurl asks for a timer at once; the work starts from there

    def abandon(self, transfer: Transfer | Posted) -> None:
        """Stop a transfer nobody waits for any more (a stream reset on HTTP/2, a closed connection on HTTP/1)."""
        if self._transfers.pop(transfer.handle, None) is not None:
            self.multi.remove_handle(transfer.handle)
            transfer.finish((pycurl.E_ABORTED_BY_CALLBACK, "abandoned"))

    def resume(self, transfer: Transfer) -> None:
        """The reader caught up: let a paused transfer deliver again."""
        if transfer.paused and transfer.handle in self._transfers:
            transfer.paused = False
            transfer.handle.pause(pycurl.PAUSE_CONT)
            self.loop.call_soon(self._act, pycurl.SOCKET_TIMEOUT, 0)

    def _on_socket(self, event: int, fd: int, multi: object, data: object) -> None:
        if self._closed:
            return  # libcurl closing its sockets as the multi handle goes; the watchers are gone already
        wanted = 0 if event == pycurl.POLL_REMOVE else event
        watched = self._watched.get(fd, 0)
        if watched & pycurl.POLL_IN and not wanted & pycurl.POLL_IN:
            self.loop.remove_reader(fd)
        if watched & pycurl.POLL_OUT and not wanted & pycurl.POLL_OUT:
            self.loop.remove_writer(fd)
        if wanted & pycurl.POLL_IN and not watched & pycurl.POLL_IN:
            self.loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        if wanted & pycurl.POLL_OUT and not watched & pycurl.POLL_OUT:
            self.loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        if wanted:
            self._watched[fd] = wanted
        else:
            self._watched.pop(fd, None)

    def _on_timer(self, milliseconds: int) -> None:
        timer = self._timer
        if milliseconds == 0 and timer is not None and self._due <= self.loop.time():
            # "now" again, with a timer for "now" set already: it runs after this, when this deadline has passed
            # too. A batch's every transfer asks for 0 ms as it is added, and replacing the timer each time cost a
            # heap entry each. (A later deadline must not be left to an earlier timer: libcurl asks only when its
            # next deadline changes, so it would never be woken for it.)
            return
        if timer is not None:
            timer.cancel()
            self._timer = None
        if milliseconds >= 0 and not self._closed:
            # socket_action may not be called from inside this callback: always through the loop.
            self._due = self.loop.time() + milliseconds / 1000  # uvloop's handles do not say when they run
            self._timer = self.loop.call_later(milliseconds / 1000, self._on_due)

    def _on_due(self) -> None:
        self._timer = None  # it ran: a "now" asked from here on needs a timer of its own
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, events: int) -> None:
        if self._closed:
            return
        while self.multi.socket_action(fd, events)[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, succeeded, failed = self.multi.info_read()
            for handle in succeeded:
                self._finish(handle, None)
            for handle, code, message in failed:
                self._finish(handle, (code, message))
            if not queued:
                break

    def _finish(self, handle: pycurl.Curl, error: tuple[int, str] | None) -> None:
        transfer = self._transfers.pop(handle, None)
        self.multi.remove_handle(handle)
        if transfer is not None:
            transfer.finish(error)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for transfer in list(self._transfers.values()):
            self.abandon(transfer)
        if not self.loop.is_closed():
            for fd in self._watched:
                self.loop.remove_reader(fd)
                self.loop.remove_writer(fd)
        self._watched.clear()
        self.multi.close()
