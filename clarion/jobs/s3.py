"""Just enough of the S3 REST API for import and export jobs: ListObjectsV2, streamed GetObject, PutObject.

Requests are signed with Clarion's own SigV4 signer (path-style URLs, so any S3-compatible store works);
boto3 stays a test dependency.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from clarion.aws.sigv4 import sign_request
from clarion.clock import Clock
from clarion.jobs.config import S3Settings

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
CHUNK = 1 << 20


class S3Error(Exception):
    """The store refused a request; `status` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class S3Object:
    key: str
    size: int


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key/or/prefix` → (bucket, key)."""
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"{url!r} names no bucket")
    return bucket, key


class S3Client:
    def __init__(self, settings: S3Settings, session: aiohttp.ClientSession, clock: Clock, timeout: float) -> None:
        self.settings = settings
        self.session = session
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)  # each request, an object's whole body included
        self.base = (settings.endpoint_url or f"https://s3.{settings.region}.amazonaws.com").rstrip("/")

    def _request_args(
        self, method: str, bucket: str, key: str, query: dict[str, str], body: bytes
    ) -> tuple[URL, dict[str, str]]:
        query_string = "?" + urlencode(sorted(query.items()), quote_via=quote) if query else ""
        url = self.base + "/" + quote(bucket, safe="") + ("/" + quote(key, safe="/") if key else "") + query_string
        # The signer percent-encodes the path it is given: S3 signs the key encoded once, so it gets the key raw.
        headers = sign_request(
            method,
            self.base + "/" + bucket + ("/" + key if key else "") + query_string,
            {"x-amz-content-sha256": hashlib.sha256(body).hexdigest()},
            body,
            access_key_id=self.settings.access_key_id,
            secret_access_key=self.settings.secret_access_key,
            region=self.settings.region,
            service="s3",
            now=self.clock.now(),
            session_token=self.settings.session_token,
        )
        return URL(url, encoded=True), headers

    async def list_objects(self, bucket: str, prefix: str) -> list[S3Object]:
        """Every object under `prefix`, following continuation tokens."""
        objects: list[S3Object] = []
        token = ""
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            url, headers = self._request_args("GET", bucket, "", query, b"")
            async with self.session.get(url, headers=headers, timeout=self.timeout) as response:
                body = await response.read()
                if response.status != 200:
                    raise S3Error(response.status, f"ListObjectsV2 s3://{bucket}/{prefix}: {_message(body)}")
            root = ET.fromstring(body)
            for item in root.iter(f"{_NS}Contents"):
                objects.append(S3Object(item.findtext(f"{_NS}Key", ""), int(item.findtext(f"{_NS}Size", "0"))))
            token = root.findtext(f"{_NS}NextContinuationToken") or ""
            if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return objects

    async def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """The object's bytes, streamed in chunks."""
        url, headers = self._request_args("GET", bucket, key, {}, b"")
        async with self.session.get(url, headers=headers, timeout=self.timeout) as response:
            if response.status != 200:
                raise S3Error(response.status, f"GetObject s3://{bucket}/{key}: {_message(await response.read())}")
            async for chunk in response.content.iter_chunked(CHUNK):
                yield chunk

    async def put(self, bucket: str, key: str, body: bytes) -> None:
        url, headers = self._request_args("PUT", bucket, key, {}, body)
        async with self.session.put(url, headers=headers, data=body, timeout=self.timeout) as response:
            if response.status not in (200, 201, 204):
                raise S3Error(response.status, f"PutObject s3://{bucket}/{key}: {_message(await response.read())}")


def _message(body: bytes) -> str:
    """The <Message> of an S3 error document, else the start of the body."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return body[:200].decode("utf-8", "replace")
    return root.findtext("Message") or root.findtext("Code") or body[:200].decode("utf-8", "replace")
