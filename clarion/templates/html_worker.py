"""A child process for the native HTML libraries (mrml, css-inline), so that a crash in them is not the server's.

Both libraries are Rust and recurse over the document: deep enough nesting overflows their stack and the process
dies with SIGSEGV, which no Python `except` can catch. Their input is bounded before it gets here
(email_html.py), and they also run in this child: one JSON request per line on its stdin, one answer per line on
its stdout. When the child dies or takes too long, the request that did it fails with a clear error and the next
request starts a new child. The child gets no environment of the server's (no secrets), only what Python needs
to find Clarion.

    python -m clarion.templates.html_worker     # the child; the server starts it, nobody else needs to
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import msgspec

__all__ = ["HtmlWorker", "WorkerFailed", "serve"]


class WorkerFailed(Exception):
    """The child died or hung on a request; the message says how."""


def _child_environment() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the `clarion` package
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}


def _died(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class HtmlWorker:
    """The server's side: one child at a time, one request at a time (template writes are rare)."""

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None and self._child.poll() is None else None

    def compile(self, html: str) -> dict[str, Any]:
        """`{"html": compiled or None}` or `{"error": message}` from the child; blocking (run it in a thread).

        Raises WorkerFailed when the child dies on the request or answers nothing within the timeout.
        """
        with self._lock:
            child = self._running()
            assert child.stdin is not None and child.stdout is not None
            try:
                child.stdin.write(msgspec.json.encode({"html": html}) + b"\n")
                child.stdin.flush()
                answer = _read_line(child.stdout, self.timeout_seconds)
            except BrokenPipeError:
                answer = b""
            except TimeoutError:
                self._stop()
                raise WorkerFailed(f"took longer than {self.timeout_seconds:g} s") from None
            if not answer.endswith(b"\n"):
                self._stop()
                raise WorkerFailed(_died(child.wait()))
            return msgspec.json.decode(answer)

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._child is not None and self._child.poll() is None:
            return self._child
        self._child = subprocess.Popen(
            [sys.executable, "-m", "clarion.templates.html_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_environment(),
            close_fds=True,
        )
        return self._child

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    """One line, or what there is when the child stops writing (EOF); TimeoutError when nothing comes in time."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError
    return stream.readline()


def serve() -> None:
    """The child's loop: compile each request's HtmlPart until stdin closes (the server exited)."""
    from clarion.errors import BadRequest
    from clarion.templates.email_html import compile_html

    for line in sys.stdin.buffer:
        try:
            answer: dict[str, Any] = {"html": compile_html(msgspec.json.decode(line)["html"])}
        except BadRequest as error:
            answer = {"error": error.message}
        except Exception as error:  # anything else the libraries raise fails this request, not the child
            answer = {"error": f"HtmlPart could not be compiled: {type(error).__name__}: {error}"}
        sys.stdout.buffer.write(msgspec.json.encode(answer) + b"\n")
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    serve()
