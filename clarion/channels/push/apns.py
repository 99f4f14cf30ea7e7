"""Apple Push Notification service over HTTP/2: `POST /3/device/<token>`, streams multiplexed on one connection
(one per client certificate) by the guarded client.

Two ways to authenticate, as the Pinpoint APNs channels offer (API Reference, "APNs Channel"): a provider token (an
ES256 JWT signed with the channel's TokenKey, `kid` = TokenKeyId, `iss` = TeamId), or a client TLS certificate
(Certificate + PrivateKey PEM). APNS_SANDBOX and APNS_VOIP_SANDBOX talk to Apple's development host.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import NameOID

from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound, PushContent, Transport
from clarion.channels.push.provider import PushProvider
from clarion.channels.push.sdk_keys import attribution
from clarion.channels.push.unusable import UnusableChannel
from clarion.channels.retry_after import retry_after_seconds
from clarion.clock import Clock, SystemClock
from clarion.outbound.client import Answer, OutboundClient, Tls

DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{16,200}")
# Reasons that will not change by sending again (Apple's "Handling notification responses" table).
PERMANENT_STATUSES = frozenset({400, 403, 404, 405, 410, 413})


class ApnsTokenSigner:
    """The provider token: signed once, reused by every request, re-signed before Apple's one-hour limit and at
    once when Apple answers ExpiredProviderToken."""

    def __init__(self, key_pem: str, key_id: str, team_id: str, clock: Clock, refresh_seconds: int) -> None:
        try:
            key = load_pem_private_key(key_pem.encode(), password=None)
        except (ValueError, TypeError) as error:
            raise ValueError(f"TokenKey is not a PEM private key: {error}") from error
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("TokenKey must be the P-256 (ES256) key of an Apple .p8 file")
        self._key = key
        self.key_id = key_id
        self.team_id = team_id
        self.clock = clock
        self.refresh = timedelta(seconds=refresh_seconds)
        self.signed = 0  # how many tokens this signer made (Apple throttles frequent refreshes)
        self._token: str | None = None
        self._issued: datetime | None = None

    def token(self) -> str:
        now = self.clock.now()
        if self._token is None or self._issued is None or now - self._issued >= self.refresh:
            claims = {"iss": self.team_id, "iat": int(now.timestamp())}
            self._token = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.key_id})
            self._issued = now
            self.signed += 1
        return self._token

    def expire(self, stale: str) -> None:
        """Apple rejected `stale`; sign anew on next use unless a concurrent send already did."""
        if self._token == stale:
            self._token = None


class ApnsTransport:
    def __init__(
        self,
        provider: PushProvider,
        base_url: str,
        topic: str,
        *,
        signer: ApnsTokenSigner | None,
        voip: bool,
        clock: Clock,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.topic = topic
        self.signer = signer
        self.voip = voip
        self.clock = clock

    async def send(self, message: Outbound) -> DeliveryResult:
        return (await self.send_many([message]))[0]

    async def send_many(self, messages: Sequence[Outbound]) -> list[DeliveryResult]:
        """A batch's notifications, posted all at once with one provider token, each with its own headers (its
        apns-id); `send` is a batch of one. A token Apple calls expired is signed anew once, and only the
        notifications it refused go again."""
        results: list[DeliveryResult | None] = [None] * len(messages)
        waiting: list[tuple[int, str, bytes, list[tuple[str, str]]]] = []  # (index, url, body, own headers)
        payloads: dict[tuple[int, int], bytes] = {}  # by (content, context) identity: a campaign's are shared
        for index, message in enumerate(messages):
            content = message.content
            if not isinstance(content, PushContent):
                results[index] = DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, "APNs sends push content only")
                continue
            if not DEVICE_TOKEN.fullmatch(message.address):
                results[index] = DeliveryResult(
                    DeliveryStatus.PERMANENT_FAILURE, 400, "BadDeviceToken: not a hexadecimal token"
                )
                continue
            key = (id(content), id(message.context))
            body = payloads.get(key)
            if body is None:
                body = payloads[key] = apns_payload(content, message.context)
            url = f"{self.base_url}/3/device/{message.address}"
            waiting.append((index, url, body, self._headers(content, message.message_id)))
        project = messages[0].app_id if messages else ""
        for attempt in range(2):
            if not waiting:
                break
            token = self.signer.token() if self.signer else None
            common = [("authorization", f"bearer {token}")] if token else []
            posts = [(url, body) for _, url, body, _ in waiting]
            answers = await self.provider.post_many(posts, common, project, [own for *_, own in waiting])
            refused: list[tuple[int, str, bytes, list[tuple[str, str]]]] = []
            now = self.clock.now()
            for post, answer in zip(waiting, answers, strict=True):
                if isinstance(answer, DeliveryResult):
                    results[post[0]] = answer
                elif not attempt and token and answer.status == 403 and _reason(answer) == "ExpiredProviderToken":
                    refused.append(post)
                else:
                    results[post[0]] = apns_result(answer, now)
            if refused:
                self.signer.expire(token)  # type: ignore[union-attr,arg-type]
            waiting = refused
        return results  # type: ignore[return-value]

    def _headers(self, content: PushContent, message_id: str) -> list[tuple[str, str]]:
        push_type = content.apns_push_type or (
            "voip" if self.voip else "background" if content.silent_push else "alert"
        )
        # Apple requires priority 5 for background pushes; Pinpoint accepts FCM's words too (API Reference,
        # "Messages": Priority).
        priority = {"10": "10", "high": "10", "5": "5", "normal": "5", "1": "1"}.get(
            (content.priority or "").lower(), "5" if push_type == "background" else "10"
        )
        topic = f"{self.topic}.voip" if push_type == "voip" and not self.topic.endswith(".voip") else self.topic
        headers = [("apns-topic", topic), ("apns-push-type", push_type), ("apns-priority", priority)]
        if content.time_to_live is not None:
            now = int(self.clock.now().timestamp())
            headers.append(("apns-expiration", str(now + content.time_to_live if content.time_to_live > 0 else 0)))
        if content.collapse_key:
            headers.append(("apns-collapse-id", content.collapse_key[:64]))
        if _is_uuid(message_id):
            headers.append(("apns-id", message_id))  # Apple echoes it back; it must be a canonical UUID
        return headers

    async def close(self) -> None:
        """The guarded client is the process's, which closes it."""


def apns_payload(content: PushContent, context: Mapping[str, str]) -> bytes:
    """Apple's JSON payload: `aps` for the system, the message's Data keys beside it, Pinpoint's own under
    `data.pinpoint` (deep link, Context) as its SDKs read them. RawContent goes out verbatim."""
    if content.raw_content is not None:
        return content.raw_content.encode()
    aps: dict[str, Any] = {}
    if content.silent_push:
        aps["content-available"] = 1
    else:
        alert = {key: value for key, value in (("title", content.title), ("body", content.body)) if value}
        if alert:
            aps["alert"] = alert
        if content.sound:
            aps["sound"] = content.sound
        if content.media_url or content.image_url:
            aps["mutable-content"] = 1  # lets the app's notification service extension fetch the media
    if content.badge is not None:
        aps["badge"] = content.badge
    if content.category:
        aps["category"] = content.category
    if content.thread_id:
        aps["thread-id"] = content.thread_id
    payload: dict[str, Any] = {"aps": aps}
    payload.update({key: value for key, value in content.data.items() if key != "aps"})
    pinpoint: dict[str, Any] = {**context, **attribution(context)}  # the SDKs' campaign or journey, sdk_keys.py
    if content.url and content.action in ("DEEP_LINK", "URL"):
        pinpoint["deeplink"] = content.url
    extra: dict[str, Any] = {}
    if pinpoint:
        extra["pinpoint"] = pinpoint
    if content.media_url or content.image_url:
        extra["media-url"] = content.media_url or content.image_url
    if extra:
        payload["data"] = extra  # Data values are strings, so a Data key named "data" cannot hold these
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def apns_result(response: Answer, now: datetime) -> DeliveryResult:
    if response.status == 200:
        return DeliveryResult(DeliveryStatus.SUCCESSFUL, 200, provider_message_id=response.headers.get("apns-id"))
    reason = _reason(response) or "no reason given"
    text = f"APNs {response.status} {reason}"
    if response.status == 429:
        status = DeliveryStatus.THROTTLED
    elif response.status >= 500 or reason == "ExpiredProviderToken":
        status = DeliveryStatus.TEMPORARY_FAILURE
    elif response.status in PERMANENT_STATUSES:
        status = DeliveryStatus.PERMANENT_FAILURE
    else:
        status = DeliveryStatus.UNKNOWN_FAILURE
    retry_after = retry_after_seconds(response.headers.get("retry-after"), now)
    return DeliveryResult(
        status, response.status, text, provider_message_id=response.headers.get("apns-id"), retry_after=retry_after
    )


def _reason(response: Answer) -> str | None:
    try:
        reason = json.loads(response.body).get("reason")
    except (ValueError, AttributeError):
        return None
    return reason if isinstance(reason, str) else None


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def open_transport(
    settings: DeliverySettings, channel: Mapping[str, Any], outbound: OutboundClient, clock: Clock | None = None
) -> Transport:
    """A transport for one project's APNS, APNS_SANDBOX, APNS_VOIP or APNS_VOIP_SANDBOX channel record."""
    clock = clock or SystemClock()
    push = settings.push
    platform = str(channel.get("Platform") or channel.get("ChannelType") or "APNS")
    base_url = push.apns_sandbox_url if platform.endswith("_SANDBOX") else push.apns_url
    method = channel.get("DefaultAuthenticationMethod") or ("TOKEN" if channel.get("TokenKey") else "CERTIFICATE")
    try:
        if method == "TOKEN":
            missing = [name for name in ("TokenKey", "TokenKeyId", "TeamId", "BundleId") if not channel.get(name)]
            if missing:
                raise ValueError(f"token authentication needs {', '.join(missing)} on the {platform} channel")
            signer: ApnsTokenSigner | None = ApnsTokenSigner(
                channel["TokenKey"], channel["TokenKeyId"], channel["TeamId"], clock, push.apns_token_refresh_seconds
            )
            tls = Tls(ca_file=push.ca_file)
            topic = str(channel["BundleId"])
        else:
            if not channel.get("Certificate") or not channel.get("PrivateKey"):
                raise ValueError(f"the {platform} channel has neither a token key nor a Certificate and PrivateKey")
            signer = None
            tls = certificate_tls(channel["Certificate"], channel["PrivateKey"], push.ca_file)
            topic = str(channel.get("BundleId") or certificate_topic(channel["Certificate"]))
    except ValueError as error:
        return UnusableChannel(f"{platform} channel cannot be used: {error}")
    provider = PushProvider("APNs", outbound, tls, push.request_timeout, push.connect_timeout)
    return ApnsTransport(provider, base_url, topic, signer=signer, voip="VOIP" in platform, clock=clock)


def certificate_tls(certificate_pem: str, key_pem: str, ca_file: str | None) -> Tls:
    """TLS presenting the channel's certificate, handed to libcurl from memory (never written to a file). A pair
    that does not load fails here, when the channel is opened, rather than at each send."""
    try:
        x509.load_pem_x509_certificate(certificate_pem.encode())
        load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"the Certificate and PrivateKey are not a PEM certificate and key: {error}") from None
    return Tls(ca_file=ca_file, certificate_pem=certificate_pem.encode(), key_pem=key_pem.encode())


def certificate_topic(certificate_pem: str) -> str:
    """An APNs certificate names its app in the subject's UID (the bundle id), which is the default apns-topic."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    uids = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
    if not uids:
        raise ValueError("the certificate has no UID (bundle id) in its subject; set BundleId on the channel")
    return str(uids[0].value)
