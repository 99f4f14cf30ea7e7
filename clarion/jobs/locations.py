"""Where import files come from and exports go: local folders the operator allows, http(s) URLs, and s3:// on
the configured S3-compatible store.

A location is a URL as the client gives it in S3Url / S3UrlPrefix. `file:///...` and plain paths must resolve
inside the allowed roots (after following links), so a client cannot read or write elsewhere on the machine.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp

from clarion.clock import Clock
from clarion.errors import BadRequest
from clarion.jobs.config import JobSettings
from clarion.jobs.s3 import CHUNK, S3Client, parse_s3_url

# Pinpoint reads only the files of the chosen format under a prefix; exports (.gz) import as JSON.
EXTENSIONS = {"CSV": (".csv",), "JSON": (".json", ".jsonl", ".ndjson", ".gz")}
GZIP_MAGIC = b"\x1f\x8b"
MAX_LINE_BYTES = 1 << 20  # an endpoint is at most 15 KB; a line this long is not one


class SourceError(Exception):
    """The location cannot be used (missing, not allowed, refused); retrying will not help."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    url: str  # one file: file:///..., https://..., s3://bucket/key
    size: int | None


def _local_path(url: str) -> Path | None:
    """The path a file:// URL or plain path names; None for other schemes."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if url.startswith("/") or "://" not in url:
        return Path(url)
    return None


class Locations:
    def __init__(self, settings: JobSettings, data_dir: Path, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.import_roots = [p.resolve() for p in settings.import_roots or [data_dir / "imports"]]
        self.export_roots = [p.resolve() for p in settings.export_roots or [data_dir / "exports"]]
        for default in (data_dir / "imports", data_dir / "exports"):  # somewhere to drop files from the start
            if default.resolve() in (*self.import_roots, *self.export_roots):
                default.mkdir(parents=True, exist_ok=True)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=300))
        return self._session

    @property
    def s3(self) -> S3Client:
        return S3Client(self.settings.s3, self.session, self.clock)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def check(self, url: str, *, export: bool, member: str) -> None:
        """Refuse, before a job is created, a location no job could use."""
        path = _local_path(url)
        if path is not None:
            roots = self.export_roots if export else self.import_roots
            if not path.is_absolute():
                raise BadRequest(f"{member}: {url!r} must be an absolute path or a file:// URL")
            resolved = path.resolve()
            if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
                allowed = ", ".join(str(root) for root in roots)
                raise BadRequest(f"{member}: {url!r} is outside the folders this server allows ({allowed})")
            return
        if url.startswith("s3://"):
            try:
                parse_s3_url(url)
            except ValueError as error:
                raise BadRequest(f"{member}: {error}") from None
            return
        if not url.startswith(("http://", "https://")):
            raise BadRequest(f"{member}: {url!r} must be an s3://, http(s)://, file:// URL or an absolute path")

    async def list_files(self, url: str, file_format: str) -> list[SourceFile]:
        """The files an import reads: the object itself, or every file of the format under a folder/prefix."""
        path = _local_path(url)
        if path is not None:
            return await asyncio.to_thread(self._list_local, path.resolve(), file_format)
        if url.startswith("s3://"):
            bucket, key = parse_s3_url(url)
            objects = await self.s3.list_objects(bucket, key)
            exact = [o for o in objects if o.key == key]
            chosen = exact or [o for o in objects if o.key.lower().endswith(EXTENSIONS[file_format])]
            return [SourceFile(f"s3://{bucket}/{o.key}", o.size) for o in sorted(chosen, key=lambda o: o.key)]
        return [SourceFile(url, None)]

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

    async def read(self, url: str) -> AsyncIterator[bytes]:
        """A file's bytes in chunks, gunzipped when they are gzip (AWS exports are)."""
        inflate: zlib._Decompress | None = None
        first = True
        async for chunk in self._raw(url):
            if first:
                first = False
                if chunk.startswith(GZIP_MAGIC):
                    inflate = zlib.decompressobj(wbits=31)
            yield inflate.decompress(chunk) if inflate else chunk
        if inflate is not None:
            yield inflate.flush()

    async def _raw(self, url: str) -> AsyncIterator[bytes]:
        path = _local_path(url)
        if path is not None:
            try:
                handle = await asyncio.to_thread(path.open, "rb")
            except OSError as error:
                raise SourceError(f"{path}: {error.strerror}") from None
            with handle:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    yield chunk
        elif url.startswith("s3://"):
            bucket, key = parse_s3_url(url)
            async for chunk in self.s3.get(bucket, key):
                yield chunk
        else:
            async with self.session.get(url) as response:
                if response.status in (401, 403, 404, 410):
                    raise SourceError(f"GET {url} answered {response.status}")
                response.raise_for_status()
                async for chunk in response.content.iter_chunked(CHUNK):
                    yield chunk

    async def write(self, prefix: str, name: str, body: bytes) -> str:
        """Store `body` as `name` under an export prefix; return the URL written."""
        path = _local_path(prefix)
        if path is not None:
            target = path.resolve() / name
            await asyncio.to_thread(_write_file, target, body)
            return target.as_uri()
        url = prefix.rstrip("/") + "/" + name
        if url.startswith("s3://"):
            bucket, key = parse_s3_url(url)
            await self.s3.put(bucket, key, body)
            return url
        async with self.session.put(url, data=body) as response:
            if response.status in (401, 403, 404, 405):
                raise SourceError(f"PUT {url} answered {response.status}")
            response.raise_for_status()
        return url


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
