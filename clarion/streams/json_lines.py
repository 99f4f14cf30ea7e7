"""The JSON-lines file sink: one record per line, appended and (by default) fsynced before a batch is acknowledged;
the file is rotated to `<name>-<UTC time><suffix>` beside it when it reaches `rotate_bytes` or `rotate_seconds`.

A batch that fails half-written is cut off again (the file is truncated to where it began), so a retry never
leaves a torn line behind. File work runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from clarion.private_files import private_file
from clarion.streams.config import FileSink as FileSettings
from clarion.streams.records import StreamRecord
from clarion.streams.sink import SinkContext, SinkError


class JsonLinesSink:
    def __init__(self, settings: FileSettings, path: Path, context: SinkContext) -> None:
        self.settings = settings
        self.path = path
        self.context = context
        self._file: BinaryIO | None = None
        self._opened_at = 0.0  # monotonic time the current file was started

    async def write(self, records: Sequence[StreamRecord]) -> None:
        data = b"\n".join(record.data for record in records) + b"\n"
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as error:
            self._close_file()
            raise SinkError(f"file: writing {self.path} failed ({error.strerror or error})") from None

    def _append(self, data: bytes) -> None:
        handle = self._current()
        start = handle.tell()
        try:
            handle.write(data)
            handle.flush()
            if self.settings.fsync:
                os.fsync(handle.fileno())
        except OSError:
            handle.truncate(start)
            raise

    def _current(self) -> BinaryIO:
        handle = self._file
        if handle is not None:
            aged = time.monotonic() - self._opened_at >= self.settings.rotate_seconds
            if handle.tell() >= self.settings.rotate_bytes or (aged and handle.tell() > 0):
                self._rotate()
                handle = None
        if handle is None:
            private_file(self.path)  # records hold addresses: readable by Clarion's user only
            handle = self._file = self.path.open("ab")
            self._opened_at = time.monotonic()
        return handle

    def _rotate(self) -> None:
        self._close_file()
        stamp = self.context.clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        os.replace(self.path, target)

    def _close_file(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            try:
                handle.close()
            except OSError:
                return

    async def close(self) -> None:
        self._close_file()
