"""Firebase Cloud Messaging HTTP v1 for the GCM channel: `POST /v1/projects/<project>/messages:send` over HTTP/2
through the process's guarded client, authorised by an OAuth2 access token the channel's service account obtains itself.

The token comes from Google's token endpoint in exchange for an RS256 JWT assertion signed with the service
account's private key (RFC 7523 grant). It is cached until a minute before it expires and fetched anew at once
when FCM answers 401. The legacy GCM/FCM API keyed by ApiKey was shut down by Google; a channel that has only an
ApiKey answers every send with PERMANENT_FAILURE saying so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import jwt
import msgspec

from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound, PushContent, Transport
from clarion.channels.push.provider import ANSWER_BYTES, PushProvider
from clarion.channels.push.sdk_keys import attribution
from clarion.channels.push.unusable import UnusableChannel
from clarion.channels.retry_after import retry_after_seconds
from clarion.clock import Clock, SystemClock
from clarion.outbound.client import Answer, OutboundClient, OutboundError, Tls

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = timedelta(hours=1)  # Google's maximum
EXPIRY_MARGIN = timedelta(seconds=60)
LEGACY_API_KEY = (
    "The GCM channel has only a legacy ApiKey; Google has shut down the legacy FCM API. Update the channel with "
    "ServiceJson (a Firebase service account key) and DefaultAuthenticationMethod TOKEN."
)
# FCM v1 error codes (FcmError.errorCode, else the google.rpc status) and what they mean for this send.
ERROR_STATUS = {
    "UNREGISTERED": DeliveryStatus.PERMANENT_FAILURE,
    "NOT_FOUND": DeliveryStatus.PERMANENT_FAILURE,
    "INVALID_ARGUMENT": DeliveryStatus.PERMANENT_FAILURE,
    "SENDER_ID_MISMATCH": DeliveryStatus.PERMANENT_FAILURE,
    "THIRD_PARTY_AUTH_ERROR": DeliveryStatus.PERMANENT_FAILURE,
    "PERMISSION_DENIED": DeliveryStatus.PERMANENT_FAILURE,
    "UNAUTHENTICATED": DeliveryStatus.PERMANENT_FAILURE,
    "QUOTA_EXCEEDED": DeliveryStatus.THROTTLED,
    "RESOURCE_EXHAUSTED": DeliveryStatus.THROTTLED,
    "UNAVAILABLE": DeliveryStatus.TEMPORARY_FAILURE,
    "INTERNAL": DeliveryStatus.TEMPORARY_FAILURE,
}


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key: Any  # an RSA private key object
    private_key_id: str | None
    token_uri: str

    @classmethod
    def parse(cls, text: str) -> ServiceAccount:
        """Read a Google service-account key file; the error names what is missing."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValueError(f"ServiceJson is not JSON: {error}") from error
        if not isinstance(data, dict):
            raise ValueError("ServiceJson must be a JSON object (a service account key file)")
        missing = [name for name in ("project_id", "client_email", "private_key") if not data.get(name)]
        if missing:
            raise ValueError(f"ServiceJson lacks {', '.join(missing)}")
        try:
            key = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).prepare_key(data["private_key"])
        except (ValueError, TypeError, jwt.InvalidKeyError) as error:
            raise ValueError(f"ServiceJson private_key is not an RSA PEM key: {error}") from error
        return cls(
            project_id=data["project_id"],
            client_email=data["client_email"],
            private_key=key,
            private_key_id=data.get("private_key_id"),
            token_uri=data.get("token_uri") or "https://oauth2.googleapis.com/token",
        )


class Sent(msgspec.Struct):
    """FCM's answer to a send: the message's resource name."""

    name: str | None = None


class TokenError(Exception):
    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.message)
        self.result = result


class GoogleAccessToken:
    """The service account's OAuth2 access token, fetched once and shared by concurrent sends. The token URI can
    come from the tenant's ServiceJson, so it is fetched through the guarded client like any tenant URL."""

    def __init__(
        self, account: ServiceAccount, token_uri: str, clock: Clock, outbound: OutboundClient, tls: Tls
    ) -> None:
        self.account = account
        self.token_uri = token_uri
        self.clock = clock
        self.outbound = outbound
        self.tls = tls
        self.fetched = 0
        self._token: str | None = None
        self._expires: datetime | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._expires is None or self.clock.now() >= self._expires - EXPIRY_MARGIN:
                self._token, self._expires = await self._fetch()
                self.fetched += 1
            return self._token

    def expire(self, stale: str) -> None:
        if self._token == stale:
            self._token = None

    async def _fetch(self) -> tuple[str, datetime]:
        now = self.clock.now()
        claims = {
            "iss": self.account.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": int(now.timestamp()),
            "exp": int((now + ASSERTION_LIFETIME).timestamp()),
        }
        headers = {"kid": self.account.private_key_id} if self.account.private_key_id else None
        assertion = jwt.encode(claims, self.account.private_key, algorithm="RS256", headers=headers)
        try:
            response = await self.outbound.request(
                "POST",
                self.token_uri,
                body=urlencode({"grant_type": JWT_BEARER, "assertion": assertion}).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=30,
                max_bytes=ANSWER_BYTES,  # the token endpoint's answer is as small as FCM's
                tls=self.tls,
            )
            if response.status != 200:
                status = (
                    DeliveryStatus.TEMPORARY_FAILURE if response.status >= 500 else DeliveryStatus.PERMANENT_FAILURE
                )
                text = response.body[:300].decode(errors="replace")
                raise TokenError(DeliveryResult(status, response.status, f"OAuth token for FCM refused: {text}"))
            answer = json.loads(response.body)
            return answer["access_token"], now + timedelta(seconds=int(answer.get("expires_in", 3600)))
        except (OutboundError, ValueError, KeyError, TypeError) as error:
            raise TokenError(
                DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, 503, f"OAuth token for FCM unavailable: {error!r}")
            ) from error


class FcmTransport:
    def __init__(
        self, provider: PushProvider, base_url: str, account: ServiceAccount, tokens: GoogleAccessToken, clock: Clock
    ) -> None:
        self.provider = provider
        self.account = account
        self.tokens = tokens
        self.clock = clock
        self.url = f"{base_url.rstrip('/')}/v1/projects/{quote(account.project_id, safe='')}/messages:send"

    async def send(self, message: Outbound) -> DeliveryResult:
        return (await self.send_many([message]))[0]

    async def send_many(self, messages: Sequence[Outbound]) -> list[DeliveryResult]:
        """A batch's messages, posted all at once with one token (a campaign batch; `send` is a batch of one)."""
        results: list[DeliveryResult | None] = [None] * len(messages)
        waiting: list[tuple[int, bytes]] = []  # (index, body) still to post
        bodies = _Bodies()
        for index, message in enumerate(messages):
            content = message.content
            if not isinstance(content, PushContent):
                results[index] = DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, "FCM sends push content only")
                continue
            try:
                waiting.append((index, bodies.body(message.address, content, message.context)))
            except ValueError as error:
                results[index] = DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, str(error))
        project = messages[0].app_id if messages else ""
        for attempt in range(2):
            if not waiting:
                break
            try:
                token = await self.tokens.token()
            except TokenError as error:
                for index, _ in waiting:
                    results[index] = error.result
                break
            headers = [("authorization", f"Bearer {token}"), ("content-type", "application/json; charset=UTF-8")]
            answers = await self.provider.post_many([(self.url, body) for _, body in waiting], headers, project)
            refused: list[tuple[int, bytes]] = []
            now = self.clock.now()
            for (index, body), answer in zip(waiting, answers, strict=True):
                if isinstance(answer, DeliveryResult):
                    results[index] = answer
                elif not attempt and answer.status == 401 and _error_code(answer) == "UNAUTHENTICATED":
                    refused.append((index, body))  # revoked or expired early: one more try with a fresh token
                else:
                    results[index] = fcm_result(answer, now)
            if refused:
                self.tokens.expire(token)
            waiting = refused
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """The guarded client is the process's, which closes it."""


# Stands for the token in a body encoded once for a batch's messages (a NUL cannot be in a device token).
_TOKEN_MARK = "\x00clarion-fcm-token\x00"
_ENCODED_MARK = msgspec.json.encode(_TOKEN_MARK)[1:-1]


class _Bodies:
    """A batch's request bodies. Its messages usually share one content and context (a campaign's message, rendered
    once: clarion/messages/rendering.py): their body is encoded once around a mark, and each message's is that body
    with its token in place of the mark, byte for byte what encoding the message alone gives."""

    def __init__(self) -> None:
        self._split: dict[tuple[int, int], tuple[bytes, ...]] = {}  # by (content, context) identity, this batch

    def body(self, token: str, content: PushContent, context: Mapping[str, str]) -> bytes:
        if content.raw_content is not None:  # RawContent puts the token last, after what the sender wrote
            return msgspec.json.encode(fcm_message(token, content, context))
        key = (id(content), id(context))
        parts = self._split.get(key)
        if parts is None:
            parts = self._split[key] = tuple(
                msgspec.json.encode(fcm_message(_TOKEN_MARK, content, context)).split(_ENCODED_MARK)
            )
        if len(parts) != 2:  # the mark appears elsewhere too (a NUL in the message's own data)
            return msgspec.json.encode(fcm_message(token, content, context))
        return parts[0] + msgspec.json.encode(token)[1:-1] + parts[1]


def fcm_message(token: str, content: PushContent, context: Mapping[str, str]) -> dict[str, Any]:
    """The v1 request body. A silent push is a data-only message; RawContent is a v1 `message` object (or a
    whole request body holding one) that goes out as written, addressed to this token."""
    if content.raw_content is not None:
        try:
            raw = json.loads(content.raw_content)
        except ValueError as error:
            raise ValueError(f"RawContent is not JSON: {error}") from error
        inner = raw.get("message", raw) if isinstance(raw, dict) else None
        if not isinstance(inner, dict):
            raise ValueError("RawContent for FCM must be a JSON object (an FCM v1 message)")
        return {"message": {**inner, "token": token}}
    message: dict[str, Any] = {"token": token}
    android: dict[str, Any] = {}
    if not content.silent_push:
        notification = _present({"title": content.title, "body": content.body, "image": content.image_url})
        if notification:
            message["notification"] = notification
        android_notification = _present(
            {"icon": content.small_image_icon_url or content.icon_reference, "sound": content.sound}
        )
        if android_notification:
            android["notification"] = android_notification
    data = _pinpoint_data(content, context)
    if data:
        message["data"] = data
    priority = {"high": "HIGH", "10": "HIGH", "normal": "NORMAL", "5": "NORMAL"}.get((content.priority or "").lower())
    android.update(
        _present(
            {
                "priority": priority,
                "ttl": f"{content.time_to_live}s" if content.time_to_live is not None else None,
                "collapse_key": content.collapse_key,
                "restricted_package_name": content.restricted_package_name,
            }
        )
    )
    if android:
        message["android"] = android
    return {"message": message}


def _pinpoint_data(content: PushContent, context: Mapping[str, str]) -> dict[str, str]:
    """FCM data values are flat strings: the message's Data, then Pinpoint's own keys as its Android SDK reads
    them (`pinpoint.deeplink`, `pinpoint.url`, `pinpoint.openApp`, the campaign or journey: clarion/channels/push/
    sdk_keys.py) and Context as `pinpoint.<key>`."""
    data = {str(key): str(value) for key, value in content.data.items()}
    if content.action == "DEEP_LINK" and content.url:
        data["pinpoint.deeplink"] = content.url
    elif content.action == "URL" and content.url:
        data["pinpoint.url"] = content.url
    elif content.action == "OPEN_APP":
        data["pinpoint.openApp"] = "true"
    data.update({f"pinpoint.{key}": str(value) for key, value in context.items()})
    found = attribution(context)
    if "campaign" in found:
        data.update({f"pinpoint.campaign.{key}": value for key, value in found["campaign"].items()})
    if "journey" in found:
        data["pinpoint.journey"] = json.dumps(found["journey"], separators=(",", ":"))
    return data


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None and value != ""}


def fcm_result(response: Answer, now: datetime) -> DeliveryResult:
    if response.status == 200:
        try:
            name = msgspec.json.decode(response.body, type=Sent).name
        except (msgspec.DecodeError, msgspec.ValidationError):
            name = None
        return DeliveryResult(DeliveryStatus.SUCCESSFUL, 200, provider_message_id=name)
    code = _error_code(response)
    status = ERROR_STATUS.get(code or "")
    if status is None:
        status = (
            DeliveryStatus.THROTTLED
            if response.status == 429
            else DeliveryStatus.TEMPORARY_FAILURE
            if response.status >= 500
            else DeliveryStatus.PERMANENT_FAILURE
            if 400 <= response.status < 500
            else DeliveryStatus.UNKNOWN_FAILURE
        )
    return DeliveryResult(
        status,
        response.status,
        f"FCM {response.status} {code or ''}: {_error_message(response)}".strip(),
        retry_after=retry_after_seconds(response.headers.get("retry-after"), now),
    )


def _error(response: Answer) -> dict[str, Any]:
    try:
        error = json.loads(response.body).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _error_code(response: Answer) -> str | None:
    error = _error(response)
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.firebase.fcm.v1.FcmError"):
            return detail.get("errorCode")
    return error.get("status")


def _error_message(response: Answer) -> str:
    return str(_error(response).get("message") or response.body[:200].decode(errors="replace"))


def open_transport(
    settings: DeliverySettings, channel: Mapping[str, Any], outbound: OutboundClient, clock: Clock | None = None
) -> Transport:
    """A transport for one project's GCM channel record (ServiceJson; a lone ApiKey gets the shutdown notice)."""
    clock = clock or SystemClock()
    push = settings.push
    if not channel.get("ServiceJson"):
        return UnusableChannel(LEGACY_API_KEY if channel.get("ApiKey") else "The GCM channel has no ServiceJson")
    try:
        account = ServiceAccount.parse(channel["ServiceJson"])
    except ValueError as error:
        return UnusableChannel(f"GCM channel cannot be used: {error}")
    token_uri = push.fcm_token_uri or account.token_uri
    if not (push.fcm_token_uri or token_uri.startswith("https://")):
        return UnusableChannel(f"GCM channel cannot be used: ServiceJson token_uri {token_uri!r} is not https")
    tls = Tls(ca_file=push.ca_file)
    tokens = GoogleAccessToken(account, token_uri, clock, outbound, tls)
    provider = PushProvider("FCM", outbound, tls, push.request_timeout, push.connect_timeout)
    return FcmTransport(provider, push.fcm_url, account, tokens, clock)
