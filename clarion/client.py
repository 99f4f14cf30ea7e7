"""A small SigV4-signed HTTP client for Clarion's own API, for CLI commands that follow a server from any machine.

It finds the endpoint and the access key where the AWS CLI does (AWS_ENDPOINT_URL_PINPOINT, AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, or a profile of the shared credentials file), and signs with Clarion's own signer
(clarion/aws/sigv4.py), so the commands need neither boto3 nor the store.
"""

from __future__ import annotations

import configparser
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from clarion.aws.sigv4 import sign_request

SERVICE = "mobiletargeting"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str = ""


class ApiError(Exception):
    """The server answered with an error (Pinpoint's error body: a type and a message)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{error_type} ({status}): {message}")
        self.status = status
        self.error_type = error_type
        self.message = message


class Unreachable(Exception):
    """No answer from the server: refused, timed out, or not HTTP."""


def find_credentials(profile: str | None = None) -> Credentials | None:
    """The access key from the environment, else from a profile of the shared credentials file (as the AWS CLI)."""
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret and not profile:
        return Credentials(key_id, secret, os.environ.get("AWS_SESSION_TOKEN", ""))
    path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    shared = configparser.ConfigParser()
    try:
        shared.read(path)
    except configparser.Error:
        return None
    section = profile or os.environ.get("AWS_PROFILE") or "default"
    if not shared.has_option(section, "aws_access_key_id") or not shared.has_option(section, "aws_secret_access_key"):
        return None
    return Credentials(
        shared.get(section, "aws_access_key_id"),
        shared.get(section, "aws_secret_access_key"),
        shared.get(section, "aws_session_token", fallback=""),
    )


class ApiClient:
    def __init__(self, endpoint_url: str, credentials: Credentials, region: str, timeout: float = 10.0) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.credentials = credentials
        self.region = region
        self.timeout = timeout

    def get(self, *segments: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        """GET the resource at /v1/<segments...> (each segment quoted) and return its JSON body."""
        return self.call("GET", segments, query=query)

    def post(self, *segments: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body to /v1/<segments...> and return the JSON answer."""
        return self.call("POST", segments, body=body)

    def call(
        self,
        method: str,
        segments: tuple[str, ...],
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.endpoint_url}/v1/" + "/".join(quote(segment, safe="") for segment in segments)
        if query:
            url += "?" + urlencode(query)
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        signed = sign_request(
            method,
            url,
            headers,
            data,
            access_key_id=self.credentials.access_key_id,
            secret_access_key=self.credentials.secret_access_key,
            session_token=self.credentials.session_token,
            region=self.region,
            service=SERVICE,
            now=datetime.now(UTC),
        )
        request = urllib.request.Request(url, data=data if body is not None else None, headers=signed, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            answer = _json_or_empty(error.read())
            error_type = error.headers.get("x-amzn-ErrorType", "").split(":")[0] or "HTTPError"
            message = str(answer.get("Message") or answer.get("message") or error.reason)
            raise ApiError(error.code, error_type, message) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise Unreachable(f"no answer from {self.endpoint_url}: {reason}") from None


def _json_or_empty(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
