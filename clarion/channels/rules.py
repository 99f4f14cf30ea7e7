"""What each channel resource holds and what Pinpoint accepts in it (the channel resources of Pinpoint's API Reference
and their shapes in clarion/api/model/pinpoint-2016-12-01.json).

An update is partial, as Pinpoint's is: members a request gives replace the stored ones, members it leaves out keep
their value (Amplify disables an APNs channel by sending only `Enabled: false`), and a member sent as an empty
string is cleared. The rules below check the channel as it will be after the update, so "missing" means missing
from both the request and the stored channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from email_validator import EmailNotValidError, validate_email

from clarion.errors import BadRequest

Members = dict[str, Any]

APNS_CERTIFICATE = ("Certificate", "PrivateKey")
APNS_TOKEN = ("TokenKey", "TokenKeyId", "TeamId", "BundleId")
SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9]{1,11}")  # alphanumeric sender ids: at most 11, one letter or more
SHORT_CODE = re.compile(r"[0-9]{3,8}")


@dataclass(frozen=True, slots=True)
class ChannelKind:
    channel_type: str  # the ChannelType value; also the response's Platform and the GetChannels key
    stem: str  # operation names: Get{stem}Channel, Update{stem}Channel, Delete{stem}Channel
    settings: tuple[str, ...]  # request members stored in the clear
    secrets: tuple[str, ...]  # request members sealed at rest and never answered
    echoed: tuple[str, ...]  # settings members the response carries (BundleId, TeamId, ClientId... it does not)
    check: Callable[[Members, Members], None]  # (request, channel after the update) -> raises BadRequest; normalises
    flags: Callable[[Members, frozenset[str]], Members]  # (settings, secret names) -> HasCredential and the like

    @property
    def resource_id(self) -> str:
        """Pinpoint answers `Id` as the channel's path segment ("apns_sandbox"): deprecated, kept for old clients."""
        return self.channel_type.lower()

    @property
    def members(self) -> tuple[str, ...]:
        return self.settings + self.secrets


# --- checks ---------------------------------------------------------------------------------------------------


def _require(channel: Members, members: tuple[str, ...], why: str) -> None:
    missing = [member for member in members if not channel.get(member)]
    if missing:
        raise BadRequest(f"{why} needs {_names(missing)}")


def _names(members: list[str]) -> str:
    return members[0] if len(members) == 1 else ", ".join(members[:-1]) + " and " + members[-1]


def _complete_or_absent(channel: Members, group: tuple[str, ...]) -> None:
    present = [member for member in group if channel.get(member)]
    missing = [member for member in group if not channel.get(member)]
    if present and missing:
        raise BadRequest(f"{_names(missing)} must be given with {_names(present)}")


def _method(request: Members, channel: Members, allowed: dict[str, str], derived: str) -> str:
    """DefaultAuthenticationMethod, upper-cased and mapped to Clarion's canonical name; when not given, the stored
    one, else `derived`."""
    given = request.get("DefaultAuthenticationMethod")
    if given is None:
        return channel.get("DefaultAuthenticationMethod") or derived
    method = allowed.get(given.upper())
    if method is None:
        raise BadRequest(f"DefaultAuthenticationMethod must be one of {', '.join(allowed)}, not {given!r}")
    return method


def _check_pem(request: Members) -> None:
    """Catch a pasted file of the wrong kind now rather than at the first send."""
    if request.get("Certificate"):
        try:
            x509.load_pem_x509_certificate(request["Certificate"].encode())
        except ValueError:
            raise BadRequest("Certificate must be a PEM-encoded X.509 certificate") from None
    for member in ("PrivateKey", "TokenKey"):
        if request.get(member):
            try:
                key = load_pem_private_key(request[member].encode(), password=None)
            except (ValueError, TypeError):
                raise BadRequest(f"{member} must be an unencrypted PEM-encoded private key") from None
            if member == "TokenKey" and not isinstance(key, ec.EllipticCurvePrivateKey):
                raise BadRequest("TokenKey must be the EC (P-256) key of an APNs .p8 file")


def check_apns(request: Members, channel: Members) -> None:
    """Certificate auth needs Certificate and PrivateKey; token auth needs TokenKey, TokenKeyId, TeamId and BundleId.

    Pinpoint documents the method as "key or certificate" and Amplify sends "Key" and "Certificate": any case of
    CERTIFICATE, TOKEN or KEY is accepted and stored as CERTIFICATE or TOKEN.
    """
    _check_pem(request)
    gave_certificate = any(request.get(member) for member in APNS_CERTIFICATE)
    gave_token = any(request.get(member) for member in APNS_TOKEN)
    if gave_certificate != gave_token:  # the request switches to the one method it gives
        derived = "CERTIFICATE" if gave_certificate else "TOKEN"
        request = {"DefaultAuthenticationMethod": derived, **request}
    else:
        derived = "CERTIFICATE" if channel.get("Certificate") else "TOKEN"
    method = _method(request, channel, {"CERTIFICATE": "CERTIFICATE", "TOKEN": "TOKEN", "KEY": "TOKEN"}, derived)
    for group in (APNS_CERTIFICATE, APNS_TOKEN):
        _complete_or_absent(channel, group)
    _require(channel, APNS_CERTIFICATE if method == "CERTIFICATE" else APNS_TOKEN, f"Missing credentials: {method}")
    channel["DefaultAuthenticationMethod"] = method


def check_gcm(request: Members, channel: Members) -> None:
    """KEY (Pinpoint's default) uses the legacy ApiKey; TOKEN uses ServiceJson, a service account's JSON key."""
    if request.get("ServiceJson"):
        try:
            account = msgspec.json.decode(request["ServiceJson"])
        except msgspec.DecodeError:
            raise BadRequest("ServiceJson must be the JSON key file of a Firebase service account") from None
        if not isinstance(account, dict):
            raise BadRequest("ServiceJson must be a JSON object")
        missing = [field for field in ("project_id", "client_email", "private_key") if not account.get(field)]
        if missing:
            raise BadRequest(f"ServiceJson lacks {_names(missing)}")
    if "DefaultAuthenticationMethod" not in request and (request.get("ApiKey") or request.get("ServiceJson")):
        request = {**request, "DefaultAuthenticationMethod": "KEY" if request.get("ApiKey") else "TOKEN"}
    derived = "TOKEN" if channel.get("ServiceJson") and not channel.get("ApiKey") else "KEY"
    method = _method(request, channel, {"KEY": "KEY", "TOKEN": "TOKEN"}, derived)
    _require(channel, ("ApiKey",) if method == "KEY" else ("ServiceJson",), f"Missing credentials: {method}")
    channel["DefaultAuthenticationMethod"] = method


def check_email(request: Members, channel: Members) -> None:
    """Identity names an SES identity in Pinpoint; Clarion has no SES, so any non-empty string is kept as given."""
    _require(channel, ("FromAddress", "Identity"), "The email channel")
    _name, address = parseaddr(channel["FromAddress"])  # "Shop <shop@example.com>" or a bare address
    try:
        # No DNS lookups; private relays may send as test and internal domains (`.test`).
        validate_email(address, check_deliverability=False, test_environment=True, globally_deliverable=False)
    except EmailNotValidError as error:
        raise BadRequest(f"FromAddress {channel['FromAddress']!r} is not an email address: {error}") from None


def check_sms(request: Members, channel: Members) -> None:
    if channel.get("SenderId") and not SENDER_ID.fullmatch(channel["SenderId"]):
        raise BadRequest(
            f"SenderId {channel['SenderId']!r} must be 1 to 11 letters and digits, at least one of them a letter"
        )
    if channel.get("ShortCode") and not SHORT_CODE.fullmatch(channel["ShortCode"]):
        raise BadRequest(f"ShortCode {channel['ShortCode']!r} must be 3 to 8 digits")


def check_nothing(request: Members, channel: Members) -> None:
    """Voice has only Enabled."""


def _required(*members: str) -> Callable[[Members, Members], None]:
    def check(request: Members, channel: Members) -> None:
        _require(channel, members, "Missing credentials: the channel")

    return check


# --- flags ----------------------------------------------------------------------------------------------------


def apns_flags(settings: Members, secrets: frozenset[str]) -> Members:
    return {
        "DefaultAuthenticationMethod": settings.get("DefaultAuthenticationMethod"),
        "HasCredential": "Certificate" in secrets,
        "HasTokenKey": "TokenKey" in secrets,
    }


def gcm_flags(settings: Members, secrets: frozenset[str]) -> Members:
    return {
        "DefaultAuthenticationMethod": settings.get("DefaultAuthenticationMethod"),
        "HasCredential": bool(secrets),
        "HasFcmServiceCredentials": "ServiceJson" in secrets,
    }


def credential_flag(settings: Members, secrets: frozenset[str]) -> Members:
    return {"HasCredential": bool(secrets)}


def no_flags(settings: Members, secrets: frozenset[str]) -> Members:
    return {}


# --- the kinds ------------------------------------------------------------------------------------------------


def _apns(channel_type: str, stem: str) -> ChannelKind:
    return ChannelKind(
        channel_type,
        stem,
        settings=("BundleId", "TeamId", "TokenKeyId", "DefaultAuthenticationMethod"),
        secrets=("Certificate", "PrivateKey", "TokenKey"),
        echoed=(),
        check=check_apns,
        flags=apns_flags,
    )


KINDS: tuple[ChannelKind, ...] = (
    ChannelKind(
        "EMAIL",
        "Email",
        settings=("FromAddress", "Identity", "ConfigurationSet", "RoleArn", "OrchestrationSendingRoleArn"),
        secrets=(),
        echoed=("FromAddress", "Identity", "ConfigurationSet", "RoleArn", "OrchestrationSendingRoleArn"),
        check=check_email,
        flags=no_flags,
    ),
    ChannelKind(
        "SMS",
        "Sms",
        settings=("SenderId", "ShortCode"),
        secrets=(),
        echoed=("SenderId", "ShortCode"),
        check=check_sms,
        flags=no_flags,
    ),
    ChannelKind("VOICE", "Voice", settings=(), secrets=(), echoed=(), check=check_nothing, flags=no_flags),
    _apns("APNS", "Apns"),
    _apns("APNS_SANDBOX", "ApnsSandbox"),
    _apns("APNS_VOIP", "ApnsVoip"),
    _apns("APNS_VOIP_SANDBOX", "ApnsVoipSandbox"),
    ChannelKind(
        "GCM",
        "Gcm",
        settings=("DefaultAuthenticationMethod",),
        secrets=("ApiKey", "ServiceJson"),
        echoed=(),
        check=check_gcm,
        flags=gcm_flags,
    ),
    ChannelKind(
        "BAIDU",
        "Baidu",
        settings=(),
        secrets=("ApiKey", "SecretKey"),
        echoed=(),
        check=_required("ApiKey", "SecretKey"),
        flags=credential_flag,
    ),
    ChannelKind(
        "ADM",
        "Adm",
        settings=("ClientId",),
        secrets=("ClientSecret",),
        echoed=(),
        check=_required("ClientId", "ClientSecret"),
        flags=credential_flag,
    ),
)

BY_TYPE: dict[str, ChannelKind] = {kind.channel_type: kind for kind in KINDS}
