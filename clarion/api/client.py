"""Calls to a running Clarion's API from the command line, signed with SigV4 as any SDK call is.

CLI commands that act on a server (rather than on the store directly) use this, with the credentials and
endpoint the AWS tools read: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION and
AWS_ENDPOINT_URL_PINPOINT.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from clarion.aws.sigv4 import sign_request


class ApiError(Exception):
    """The server refused the call; the message is its own (`Message` of the Pinpoint error body)."""


@dataclass(frozen=True, slots=True)
class ApiClient:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str
    session_token: str = ""

    @classmethod
    def from_environment(cls, endpoint: str | None, default_endpoint: str, default_region: str) -> ApiClient:
        key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not key_id or not secret:
            raise ApiError("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to a Clarion access key")
        return cls(
            endpoint=endpoint or os.environ.get("AWS_ENDPOINT_URL_PINPOINT") or default_endpoint,
            access_key_id=key_id,
            secret_access_key=secret,
            region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or default_region,
            session_token=os.environ.get("AWS_SESSION_TOKEN", ""),
        )

    def get(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        url = self.endpoint.rstrip("/") + path + ("?" + urlencode(sorted(query.items())) if query else "")
        headers = sign_request(
            "GET",
            url,
            {},
            b"",
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            region=self.region,
            service="mobiletargeting",
            now=datetime.now(UTC),
            session_token=self.session_token,
        )
        request = urllib.request.Request(url, method="GET", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"{}")
            raise ApiError(f"{error.code}: {answer.get('Message') or error.reason}") from None
        except urllib.error.URLError as error:
            raise ApiError(f"cannot reach {self.endpoint}: {error.reason}") from None
