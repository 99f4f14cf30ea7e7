"""Where import files come from and exports go: the project's own folders and S3 prefix (scope.py), and http(s)
URLs on the tenant's servers, reached only through the guarded client (clarion/outbound/).

A location is a URL as the client gives it in S3Url / S3UrlPrefix. Every transfer has an overall time limit
(`jobs.transfer_timeout_seconds`) and an import file a size limit (`jobs.max_file_bytes`), so one slow or endless
source holds a worker for a bounded time.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from clarion.clock import Clock
from clarion.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from clarion.jobs.config import JobSettings
from clarion.jobs.s3 import CHUNK, S3Client, S3Error
from clarion.jobs.scope import BadLocation, OutsideScope, StorageScope
from clarion.outbound.client import OutboundClient

# Pinpoint reads only the files of the chosen format under a prefix; exports (.gz) import as JSON.
EXTENSIONS = {"CSV": (".csv",), "JSON": (".json", ".jsonl", ".ndjson", ".gz")}
GZIP_MAGIC = b"\x1f\x8b"
MAX_LINE_BYTES = 1 << 20  # an endpoint is at most 15 KB; a line this long is not one
ANSWER_BYTES = 1 << 16  # what an upload's answer may hold (it is not read)


class SourceError(Exception):
    """The location cannot be used (missing, not allowed, refused); retrying will not help."""


class TransferError(Exception):
    """A transfer failed in a way that may pass (the far side answered 5xx); the queue tries again."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    url: str  # one file: file:///..., https://..., s3://bucket/key
    size: int | None


class Locations:
    def __init__(self, settings: JobSettings, data_dir: Path, clock: Clock, outbound: OutboundClient) -> None:
        self.settings = settings
        self.clock = clock
        self.outbound = outbound
        self.scope = StorageScope(settings, data_dir)
        for default in (data_dir / "imports", data_dir / "exports"):  # somewhere to drop files from the start
            if default.resolve() in (*self.scope.import_roots, *self.scope.export_roots):
                default.mkdir(parents=True, exist_ok=True)
        self._session: aiohttp.ClientSession | None = None

    @property
    def s3(self) -> S3Client:
        """The operator's S3 store: a trusted endpoint from the settings, so a plain session (not the guarded one)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return S3Client(self.settings.s3, self._session, self.clock, self.settings.transfer_timeout_seconds)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def check(self, app_id: str, url: str, *, export: bool, member: str) -> None:
        """Refuse, before a job is created, a location no job could use or that is not this project's."""
        try:
            self.scope.check(app_id, url, export=export)
        except BadLocation as error:
            raise BadRequest(f"{member}: {error}") from None
        except OutsideScope as error:
            raise Forbidden(f"{member}: {error}") from None

    def _local(self, app_id: str, url: str, *, export: bool) -> Path | None:
        try:
            return self.scope.local(app_id, url, export=export)
        except (BadLocation, OutsideScope) as error:
            raise SourceError(str(error)) from None

    def _s3(self, app_id: str, url: str) -> tuple[str, str]:
        try:
            return self.scope.s3(app_id, url)
        except (BadLocation, OutsideScope) as error:
            raise SourceError(str(error)) from None

    async def list_files(self, app_id: str, url: str, file_format: str) -> list[SourceFile]:
        """The files an import reads: the object itself, or every file of the format under a folder/prefix."""
        path = self._local(app_id, url, export=False)
        if path is not None:
            found = await asyncio.to_thread(self._list_local, path, file_format)
        elif url.startswith("s3://"):
            bucket, key = self._s3(app_id, url)
            objects = await self.s3.list_objects(bucket, key)
            exact = [o for o in objects if o.key == key]
            chosen = exact or [o for o in objects if o.key.lower().endswith(EXTENSIONS[file_format])]
            found = [SourceFile(f"s3://{bucket}/{o.key}", o.size) for o in sorted(chosen, key=lambda o: o.key)]
        else:
            return [SourceFile(url, None)]
        limit = self.settings.max_file_bytes
        for file in found:
            if file.size is not None and file.size > limit:
                raise SourceError(f"{file.url} holds {file.size:,} bytes; import files may hold {limit:,}")
        return found

    def _list_local(self, path: Path, file_format: str) -> list[SourceFile]:
        if path.is_file():
            return [SourceFile(path.as_uri(), path.stat().st_size)]
        if not path.is_dir():
            raise SourceError(f"{path} does not exist")
        found = []
        for folder, _dirs, names in os.walk(path):
            for name in names:
                if name.lower().endswith(EXTENSIONS[file_format]):
                    file = Path(folder, name)
                    found.append(SourceFile(file.as_uri(), file.stat().st_size))
        return sorted(found, key=lambda f: f.url)

    async def read(self, app_id: str, url: str) -> AsyncIterator[bytes]:
        """A file's bytes in chunks, gunzipped when they are gzip (AWS exports are)."""
        inflate: zlib._Decompress | None = None
        first = True
        async for chunk in self._raw(app_id, url):
            if first:
                first = False
                if chunk.startswith(GZIP_MAGIC):
                    inflate = zlib.decompressobj(wbits=31)
            yield inflate.decompress(chunk) if inflate else chunk
        if inflate is not None:
            yield inflate.flush()

    async def _raw(self, app_id: str, url: str) -> AsyncIterator[bytes]:
        path = self._local(app_id, url, export=False)  # again: a link placed since the listing must not lead out
        if path is not None:
            try:
                handle = await asyncio.to_thread(path.open, "rb")
            except OSError as error:
                raise SourceError(f"{path}: {error.strerror}") from None
            with handle:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    yield chunk
        elif url.startswith("s3://"):
            bucket, key = self._s3(app_id, url)
            async for chunk in self.s3.get(bucket, key):
                yield chunk
        else:
            async with self.outbound.open(
                "GET",
                url,
                timeout=self.settings.transfer_timeout_seconds,
                max_bytes=self.settings.max_file_bytes,
                follow_redirects=True,
            ) as response:
                _check_answer("GET", url, response.status)
                async for chunk in response.chunks():
                    yield chunk

    async def keep_upload(self, app_id: str, name: str, body: bytes) -> str:
        """Keep a file sent through the console in the project's first import folder (`uploads/`, a fresh name
        each time); return its file:// URL, which an import job then reads like any other local file."""
        folder = self.scope.folders(app_id, export=False)[0] / "uploads"
        kept = await asyncio.to_thread(_prune, folder, self.clock.now().timestamp() - self.settings.upload_days * 86400)
        limit = self.settings.upload_bytes_per_project
        if kept + len(body) > limit:
            raise PayloadTooLarge(
                f"The project's uploaded files hold {kept} bytes; with this one they would pass the {limit} allowed "
                f"(uploads are kept {self.settings.upload_days} days)"
            )
        target = folder / f"{uuid.uuid4().hex}-{name}"
        await asyncio.to_thread(_write_file, target, body)
        return target.as_uri()

    async def read_written(self, app_id: str, prefix: str, name: str, limit: int) -> bytes:
        """A file an export wrote as `name` under `prefix`, read back whole (at most `limit` bytes): from the
        project's folders or its S3 scope, checked again now; an http(s) prefix is the tenant's server, not read."""
        path = self._local(app_id, prefix, export=True)
        if path is not None:
            try:
                body = await asyncio.to_thread(_read_file, path / name, limit)
            except FileNotFoundError:
                raise NotFound(f"{prefix.rstrip('/')}/{name} is no longer there") from None
        elif prefix.startswith("s3://"):
            bucket, key = self._s3(app_id, prefix.rstrip("/") + "/" + name)
            chunks, size = [], 0
            try:
                async for chunk in self.s3.get(bucket, key):
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"s3://{bucket}/{key} is larger than the {limit} bytes Clarion hands out")
                    chunks.append(chunk)
            except S3Error as error:
                if error.status == 404:
                    raise NotFound(f"s3://{bucket}/{key} is no longer there") from None
                raise
            body = b"".join(chunks)
        else:
            raise BadRequest(f"{prefix} is on the tenant's own server: Clarion wrote the file there and keeps no copy")
        return body

    async def write(self, app_id: str, prefix: str, name: str, body: bytes) -> str:
        """Store `body` as `name` under an export prefix; return the URL written."""
        path = self._local(app_id, prefix, export=True)
        if path is not None:
            target = path / name
            await asyncio.to_thread(_write_file, target, body)
            return target.as_uri()
        url = prefix.rstrip("/") + "/" + name
        if url.startswith("s3://"):
            bucket, key = self._s3(app_id, url)
            await self.s3.put(bucket, key, body)
            return url
        async with self.outbound.open(
            "PUT", url, body=body, timeout=self.settings.transfer_timeout_seconds, max_bytes=ANSWER_BYTES
        ) as response:
            _check_answer("PUT", url, response.status)
        return url


def _check_answer(method: str, url: str, status: int) -> None:
    """Only the status is reported: the body is the far side's, and is never repeated to the tenant."""
    if 200 <= status < 300:
        return
    if status >= 500 or status == 429:
        raise TransferError(f"{method} {url} answered {status}")
    raise SourceError(f"{method} {url} answered {status}")


def _prune(folder: Path, older_than: float) -> int:
    """Remove the files last written before `older_than` (epoch seconds); the bytes the others hold."""
    kept = 0
    for path in folder.glob("*") if folder.is_dir() else ():
        stat = path.stat()
        if stat.st_mtime < older_than:
            path.unlink(missing_ok=True)
        else:
            kept += stat.st_size
    return kept


def _read_file(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        body = handle.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"{path} is larger than the {limit} bytes Clarion hands out")
    return body


def _write_file(target: Path, body: bytes) -> None:
    """Write beside, then rename: a reader never sees half a part, and a rewritten part replaces the old one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(body)
    os.replace(partial, target)


async def lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """Whole lines (without their line ends), a chunk's worth at a time."""
    rest = b""
    async for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        if len(rest) > MAX_LINE_BYTES:  # not a file of endpoint rows: stop before holding all of it in memory
            raise SourceError(f"a line is longer than {MAX_LINE_BYTES:,} bytes")
        if parts:
            yield [line.rstrip(b"\r") for line in parts]
    if rest:
        yield [rest.rstrip(b"\r")]
