"""Channels through boto3 against a running Clarion (the channel resources of Pinpoint's API Reference), and their
secrets at rest.

GetChannels and Get/Update/Delete for all ten channel types, partial updates, validation messages, secrets never in
a response nor in plaintext in the store, the send pipeline's decrypted view (channel_config), key rotation and a
wrong key, and DeleteApp. Tests taking `server` or `client` run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trustme
from conftest import ADMIN, RunningServer, free_port
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clarion.api.handlers import HANDLERS
from clarion.api.operations import OPERATIONS
from clarion.channels.config import DeliverySettings
from clarion.channels.secrets import KEY_FILE, SecretBox, SecretKeyError, key_id, load_secret_box
from clarion.channels.service import channel_config
from clarion.config import Settings
from clarion.store.apps import PROJECT_TABLES

_CA = trustme.CA()
_LEAF = _CA.issue_cert("push.example.com")
CERTIFICATE = _LEAF.cert_chain_pems[0].bytes().decode()
PRIVATE_KEY = _LEAF.private_key_pem.bytes().decode()
TOKEN_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)
RSA_KEY = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)
SERVICE_JSON = json.dumps(
    {
        "type": "service_account",
        "project_id": "clarion-test",
        "client_email": "push@clarion-test.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nsecret-fcm-material\n-----END PRIVATE KEY-----\n",
    }
)
API_KEY = "AIzaSy-secret-gcm-api-key-0123456789"
TOKEN_AUTH = {"TokenKey": TOKEN_KEY, "TokenKeyId": "ABC123DEFG", "TeamId": "TEAM123456", "BundleId": "com.example.app"}
CERT_AUTH = {"Certificate": CERTIFICATE, "PrivateKey": PRIVATE_KEY}

# Per type: the boto3 method stem, the request member, the response member, a valid request, and its secrets.
CHANNELS: dict[str, tuple[str, str, str, dict[str, Any], list[str]]] = {
    "EMAIL": (
        "email",
        "EmailChannelRequest",
        "EmailChannelResponse",
        {"FromAddress": "Shop <shop@example.com>", "Identity": "example.com", "ConfigurationSet": "marketing"},
        [],
    ),
    "SMS": ("sms", "SMSChannelRequest", "SMSChannelResponse", {"SenderId": "Shop", "ShortCode": "12345"}, []),
    "VOICE": ("voice", "VoiceChannelRequest", "VoiceChannelResponse", {}, []),
    "APNS": ("apns", "APNSChannelRequest", "APNSChannelResponse", TOKEN_AUTH, [TOKEN_KEY]),
    "APNS_SANDBOX": (
        "apns_sandbox",
        "APNSSandboxChannelRequest",
        "APNSSandboxChannelResponse",
        CERT_AUTH,
        [CERTIFICATE, PRIVATE_KEY],
    ),
    "APNS_VOIP": ("apns_voip", "APNSVoipChannelRequest", "APNSVoipChannelResponse", TOKEN_AUTH, [TOKEN_KEY]),
    "APNS_VOIP_SANDBOX": (
        "apns_voip_sandbox",
        "APNSVoipSandboxChannelRequest",
        "APNSVoipSandboxChannelResponse",
        CERT_AUTH,
        [PRIVATE_KEY],
    ),
    "GCM": ("gcm", "GCMChannelRequest", "GCMChannelResponse", {"ApiKey": API_KEY}, [API_KEY]),
    "BAIDU": (
        "baidu",
        "BaiduChannelRequest",
        "BaiduChannelResponse",
        {"ApiKey": "baidu-api-key-secret", "SecretKey": "baidu-secret-key-secret"},
        ["baidu-api-key-secret", "baidu-secret-key-secret"],
    ),
    "ADM": (
        "adm",
        "ADMChannelRequest",
        "ADMChannelResponse",
        {"ClientId": "amzn1.application-oa2-client.1", "ClientSecret": "adm-client-secret-value"},
        ["adm-client-secret-value"],
    ),
}


# --- helpers -------------------------------------------------------------------------------------------------


def update(client: Any, app_id: str, channel_type: str, request: dict[str, Any]) -> dict[str, Any]:
    stem, request_member, response_member, _, _ = CHANNELS[channel_type]
    response = getattr(client, f"update_{stem}_channel")(ApplicationId=app_id, **{request_member: request})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    return response[response_member]


def get(client: Any, app_id: str, channel_type: str) -> dict[str, Any]:
    stem, _, response_member, _, _ = CHANNELS[channel_type]
    return getattr(client, f"get_{stem}_channel")(ApplicationId=app_id)[response_member]


def delete(client: Any, app_id: str, channel_type: str) -> dict[str, Any]:
    stem, _, response_member, _, _ = CHANNELS[channel_type]
    return getattr(client, f"delete_{stem}_channel")(ApplicationId=app_id)[response_member]


def bad_request(client: Any, app_id: str, channel_type: str, request: dict[str, Any]) -> str:
    with pytest.raises(client.exceptions.BadRequestException) as info:
        update(client, app_id, channel_type, request)
    return info.value.response["Error"]["Message"]


def assert_no_secret(response: Any, secrets: list[str]) -> None:
    text = json.dumps(response, default=str)
    for secret in secrets:
        assert secret not in text
    for member in ("ApiKey", "ServiceJson", "Certificate", "PrivateKey", "TokenKey", "SecretKey", "ClientSecret"):
        assert f'"{member}"' not in text


def config(server: RunningServer, app_id: str, channel_type: str) -> dict[str, Any] | None:
    return server.run(lambda services: channel_config(services.db, app_id, channel_type, services.channel_secrets))


def raw_rows(server: RunningServer) -> list[tuple[Any, ...]]:
    return server.run(lambda services: services.db.read(lambda tx: tx.fetchall("SELECT * FROM channels")))


def restart(server: RunningServer, **delivery: Any) -> RunningServer:
    """Stop `server` and start another on the same store and data directory with other delivery settings."""
    server.stop()
    settings = server.settings.model_copy(update={"port": free_port(), "delivery": DeliverySettings(**delivery)})
    return RunningServer(settings).start()


# --- routing --------------------------------------------------------------------------------------------------


def test_all_31_channel_operations_have_handlers() -> None:
    channel_operations = {name for name in OPERATIONS if "Channel" in name}
    assert len(channel_operations) == 31
    assert channel_operations <= set(HANDLERS)


# --- every type -----------------------------------------------------------------------------------------------


def test_every_channel_type_updates_gets_and_deletes(client: Any, app_id: str) -> None:
    for channel_type, (stem, _, _, request, secrets) in CHANNELS.items():
        created = update(client, app_id, channel_type, request)
        assert created["ApplicationId"] == app_id
        assert created["Platform"] == channel_type
        assert created["Id"] == stem
        assert created["Version"] == 1
        assert created["Enabled"] is True  # Update enables a channel unless told otherwise
        assert created["IsArchived"] is False
        assert created["LastModifiedBy"] == ADMIN.access_key_id
        assert created["CreationDate"] == created["LastModifiedDate"]
        assert_no_secret(created, secrets)
        assert get(client, app_id, channel_type) == created
        assert delete(client, app_id, channel_type) == created
        with pytest.raises(client.exceptions.NotFoundException):
            get(client, app_id, channel_type)


def test_responses_echo_settings_and_flags_only(client: Any, app_id: str) -> None:
    email = update(client, app_id, "EMAIL", CHANNELS["EMAIL"][3])
    assert (email["FromAddress"], email["Identity"], email["ConfigurationSet"]) == (
        "Shop <shop@example.com>",
        "example.com",
        "marketing",
    )
    sms = update(client, app_id, "SMS", {"SenderId": "Shop", "ShortCode": "12345"})
    assert (sms["SenderId"], sms["ShortCode"]) == ("Shop", "12345")
    apns = update(client, app_id, "APNS", TOKEN_AUTH)
    assert (apns["DefaultAuthenticationMethod"], apns["HasTokenKey"], apns["HasCredential"]) == ("TOKEN", True, False)
    sandbox = update(client, app_id, "APNS_SANDBOX", CERT_AUTH)
    assert (sandbox["DefaultAuthenticationMethod"], sandbox["HasCredential"], sandbox["HasTokenKey"]) == (
        "CERTIFICATE",
        True,
        False,
    )
    gcm = update(client, app_id, "GCM", {"ServiceJson": SERVICE_JSON})
    assert gcm["DefaultAuthenticationMethod"] == "TOKEN"
    assert gcm["HasFcmServiceCredentials"] is True
    assert "Credential" not in gcm  # Pinpoint documents it as the API key: Clarion never answers it
    assert_no_secret(gcm, [SERVICE_JSON, "secret-fcm-material"])
    baidu = update(client, app_id, "BAIDU", CHANNELS["BAIDU"][3])
    assert baidu["HasCredential"] is True
    assert "Credential" not in baidu


def test_missing_project_and_missing_channel(client: Any, app_id: str) -> None:
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_email_channel(ApplicationId="0" * 32)
    with pytest.raises(client.exceptions.NotFoundException):
        update(client, "0" * 32, "SMS", {})
    with pytest.raises(client.exceptions.NotFoundException) as info:
        client.delete_gcm_channel(ApplicationId=app_id)
    assert "GCM channel is not configured" in info.value.response["Error"]["Message"]


# --- updates --------------------------------------------------------------------------------------------------


def test_update_is_partial_and_versions_grow(client: Any, server: RunningServer, app_id: str) -> None:
    created = update(client, app_id, "APNS", TOKEN_AUTH)
    server.clock.offset += timedelta(seconds=2)
    disabled = update(client, app_id, "APNS", {"Enabled": False})  # how Amplify disables a channel
    assert disabled["Version"] == 2
    assert disabled["Enabled"] is False
    assert disabled["HasTokenKey"] is True
    assert disabled["DefaultAuthenticationMethod"] == "TOKEN"
    assert disabled["CreationDate"] == created["CreationDate"]
    assert disabled["LastModifiedDate"] > created["LastModifiedDate"]

    switched = update(client, app_id, "APNS", CERT_AUTH)  # giving one method's credentials switches to it
    assert (switched["Version"], switched["Enabled"]) == (3, False)
    assert (switched["DefaultAuthenticationMethod"], switched["HasCredential"], switched["HasTokenKey"]) == (
        "CERTIFICATE",
        True,
        True,
    )
    back = update(client, app_id, "APNS", {"DefaultAuthenticationMethod": "Key", "Enabled": True})  # Amplify's word
    assert (back["DefaultAuthenticationMethod"], back["Enabled"], back["Version"]) == ("TOKEN", True, 4)
    stored = config(server, app_id, "APNS")
    assert stored is not None
    assert stored["TokenKey"] == TOKEN_KEY
    assert stored["Certificate"] == CERTIFICATE

    email = update(client, app_id, "EMAIL", {**CHANNELS["EMAIL"][3], "RoleArn": "arn:aws:iam::1:role/events"})
    email = update(client, app_id, "EMAIL", {"FromAddress": "news@example.com", "Identity": "example.com"})
    assert email["ConfigurationSet"] == "marketing"  # left out: kept
    assert email["FromAddress"] == "news@example.com"
    cleared = update(client, app_id, "EMAIL", {"FromAddress": "news@example.com", "Identity": "x", "RoleArn": ""})
    assert "RoleArn" not in cleared  # an empty string clears an optional member

    update(
        client, app_id, "GCM", {"ApiKey": API_KEY, "ServiceJson": SERVICE_JSON, "DefaultAuthenticationMethod": "KEY"}
    )
    gcm = update(client, app_id, "GCM", {"ApiKey": "", "DefaultAuthenticationMethod": "token"})
    assert (gcm["DefaultAuthenticationMethod"], gcm["HasFcmServiceCredentials"]) == ("TOKEN", True)
    stored = config(server, app_id, "GCM")
    assert stored is not None
    assert "ApiKey" not in stored  # cleared secrets are gone from the sealed value too
    assert stored["ServiceJson"] == SERVICE_JSON


def test_validation_names_the_field(client: Any, app_id: str) -> None:
    assert (
        bad_request(client, app_id, "APNS", {})
        == "Missing credentials: TOKEN needs TokenKey, TokenKeyId, TeamId and BundleId"
    )
    assert bad_request(client, app_id, "APNS", {"Certificate": CERTIFICATE}) == (
        "PrivateKey must be given with Certificate"
    )
    assert bad_request(client, app_id, "APNS", {"TokenKey": TOKEN_KEY, "TeamId": "T"}) == (
        "TokenKeyId and BundleId must be given with TokenKey and TeamId"
    )
    assert "DefaultAuthenticationMethod must be one of" in bad_request(
        client, app_id, "APNS_SANDBOX", {**CERT_AUTH, "DefaultAuthenticationMethod": "PASSWORD"}
    )
    assert bad_request(client, app_id, "APNS", {**CERT_AUTH, "Certificate": "not a certificate"}) == (
        "Certificate must be a PEM-encoded X.509 certificate"
    )
    assert bad_request(client, app_id, "APNS", {**TOKEN_AUTH, "TokenKey": RSA_KEY}) == (
        "TokenKey must be the EC (P-256) key of an APNs .p8 file"
    )
    assert bad_request(client, app_id, "GCM", {"DefaultAuthenticationMethod": "TOKEN", "ApiKey": API_KEY}) == (
        "Missing credentials: TOKEN needs ServiceJson"
    )
    assert bad_request(client, app_id, "GCM", {}) == "Missing credentials: KEY needs ApiKey"
    assert bad_request(client, app_id, "GCM", {"ServiceJson": "{not json"}).startswith("ServiceJson must be")
    assert bad_request(client, app_id, "GCM", {"ServiceJson": '{"project_id": "p"}'}) == (
        "ServiceJson lacks client_email and private_key"
    )
    assert "FromAddress 'not-an-address' is not an email address" in bad_request(
        client, app_id, "EMAIL", {"FromAddress": "not-an-address", "Identity": "example.com"}
    )
    assert bad_request(client, app_id, "EMAIL", {"FromAddress": "a@example.com", "Identity": ""}) == (
        "The email channel needs Identity"
    )
    assert "SenderId 'TOO-LONG-SENDER'" in bad_request(client, app_id, "SMS", {"SenderId": "TOO-LONG-SENDER"})
    assert "SenderId '12345'" in bad_request(client, app_id, "SMS", {"SenderId": "12345"})
    assert bad_request(client, app_id, "SMS", {"ShortCode": "12ab"}) == "ShortCode '12ab' must be 3 to 8 digits"
    assert bad_request(client, app_id, "ADM", {"ClientId": "id", "ClientSecret": ""}) == (
        "Missing credentials: the channel needs ClientSecret"
    )
    # Nothing of the refused requests was stored.
    assert client.get_channels(ApplicationId=app_id)["ChannelsResponse"]["Channels"].keys() == {"IN_APP"}


# --- GetChannels ----------------------------------------------------------------------------------------------


def test_get_channels_lists_configured_channels_and_in_app(client: Any, app_id: str) -> None:
    assert client.get_channels(ApplicationId=app_id)["ChannelsResponse"]["Channels"] == {
        "IN_APP": {"Enabled": True, "IsArchived": False, "Version": 0}
    }
    email = update(client, app_id, "EMAIL", CHANNELS["EMAIL"][3])
    gcm = update(client, app_id, "GCM", {"ApiKey": API_KEY})
    update(client, app_id, "APNS", TOKEN_AUTH)
    update(client, app_id, "SMS", {"Enabled": False})
    channels = client.get_channels(ApplicationId=app_id)["ChannelsResponse"]["Channels"]
    assert set(channels) == {"EMAIL", "GCM", "APNS", "SMS", "IN_APP"}
    assert channels["GCM"] == {member: gcm[member] for member in channels["GCM"]}
    assert set(channels["GCM"]) == {
        "ApplicationId",
        "CreationDate",
        "Enabled",
        "HasCredential",
        "Id",
        "IsArchived",
        "LastModifiedBy",
        "LastModifiedDate",
        "Version",
    }
    assert "FromAddress" not in channels["EMAIL"]  # the generic ChannelResponse only
    assert channels["EMAIL"]["Version"] == email["Version"]
    assert channels["SMS"]["Enabled"] is False
    assert_no_secret(channels, [API_KEY, TOKEN_KEY])


# --- secrets at rest ------------------------------------------------------------------------------------------


def test_secrets_are_sealed_in_the_store_and_open_for_the_send_pipeline(
    client: Any, server: RunningServer, app_id: str, store: str
) -> None:
    update(
        client, app_id, "GCM", {"ApiKey": API_KEY, "ServiceJson": SERVICE_JSON, "DefaultAuthenticationMethod": "KEY"}
    )
    update(client, app_id, "APNS_VOIP", TOKEN_AUTH)
    update(client, app_id, "EMAIL", {**CHANNELS["EMAIL"][3], "Enabled": False})
    secrets = [API_KEY, "secret-fcm-material", TOKEN_KEY.splitlines()[1]]

    rows = raw_rows(server)
    assert len(rows) == 3
    for row in rows:
        text = repr(row)
        for secret in secrets:
            assert secret not in text
    sealed = [value for row in rows for value in row if isinstance(value, str) and value.startswith("v1:")]
    assert len(sealed) == 2  # GCM and APNS_VOIP; email has no secret
    if store == "sqlite":
        files = [server.settings.sqlite_path, *server.settings.data_dir.glob("clarion.sqlite3-*")]
        raw = b"".join(path.read_bytes() for path in files)
        assert b"shop@example.com" in raw  # the file is readable: settings are there in the clear
        for secret in secrets:
            assert secret.encode() not in raw

    gcm = config(server, app_id, "GCM")
    assert gcm == {
        "DefaultAuthenticationMethod": "KEY",
        "ApiKey": API_KEY,
        "ServiceJson": SERVICE_JSON,
        "Enabled": True,
        "Version": 1,
        "Platform": "GCM",
    }
    voip = config(server, app_id, "APNS_VOIP")
    assert voip is not None
    assert {member: voip[member] for member in TOKEN_AUTH} == TOKEN_AUTH
    email = config(server, app_id, "EMAIL")
    assert email is not None
    assert (email["FromAddress"], email["Enabled"]) == ("Shop <shop@example.com>", False)
    assert config(server, app_id, "SMS") is None
    assert config(server, app_id, "IN_APP") is None


def test_a_sealed_value_opens_only_in_its_own_row(client: Any, server: RunningServer, app_id: str) -> None:
    other = client.create_app(CreateApplicationRequest={"Name": "other"})["ApplicationResponse"]["Id"]
    update(client, app_id, "GCM", {"ApiKey": API_KEY})
    update(client, other, "GCM", {"ApiKey": "other-key"})

    def copy_secrets(tx: Any) -> None:
        value = tx.scalar("SELECT secrets FROM channels WHERE app_id = ?", (app_id,))
        tx.execute("UPDATE channels SET secrets = ? WHERE app_id = ?", (value, other))

    server.run(lambda services: services.db.write(copy_secrets))
    with pytest.raises(SecretKeyError, match="altered or belong to another row"):
        config(server, other, "GCM")


def test_wrong_key_is_a_clear_error_and_rotation_reseals(client: Any, server: RunningServer, app_id: str) -> None:
    update(client, app_id, "GCM", {"ApiKey": API_KEY})
    key_file = server.settings.data_dir / KEY_FILE
    first_key = key_file.read_text().strip()
    new_key = base64.b64encode(bytes(range(32))).decode()

    wrong = restart(server, secret_key=new_key)
    try:
        assert get(wrong.client(), app_id, "GCM")["HasCredential"] is True  # reading flags needs no key
        with pytest.raises(wrong.client().exceptions.InternalServerErrorException) as info:
            update(wrong.client(), app_id, "GCM", {"Enabled": False})
        message = info.value.response["Error"]["Message"]
        assert f"sealed with key {key_id(base64.b64decode(first_key))}" in message
        assert "delivery.secret_key" in message
        with pytest.raises(SecretKeyError, match="which this server does not have"):
            config(wrong, app_id, "GCM")
    finally:
        wrong.stop()

    rotated = restart(wrong, secret_key=new_key, retired_secret_keys=[first_key])
    try:
        sealed = next(row for row in raw_rows(rotated) if row[1] == "GCM")
        assert f"v1:{key_id(bytes(range(32)))}:" in repr(sealed)  # re-sealed under the new key at start
    finally:
        rotated.stop()

    only_new = restart(rotated, secret_key=new_key)  # the retired key is no longer needed
    try:
        stored = config(only_new, app_id, "GCM")
        assert stored is not None
        assert stored["ApiKey"] == API_KEY
        assert update(only_new.client(), app_id, "GCM", {"Enabled": False})["Version"] == 2
    finally:
        only_new.stop()


def test_delete_app_removes_its_channels(client: Any, server: RunningServer, app_id: str) -> None:
    update(client, app_id, "GCM", {"ApiKey": API_KEY})
    update(client, app_id, "EMAIL", CHANNELS["EMAIL"][3])
    assert server.project_row_counts(app_id)["channels"] == 2
    client.delete_app(ApplicationId=app_id)
    assert server.project_row_counts(app_id) == dict.fromkeys(PROJECT_TABLES, 0)
    assert raw_rows(server) == []


# --- the key --------------------------------------------------------------------------------------------------


def test_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    first = load_secret_box(DeliverySettings(), tmp_path / "data")
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no draft left behind
    second = load_secret_box(DeliverySettings(), tmp_path / "data")
    assert first.current_id == second.current_id
    assert second.open(first.seal(b"payload", "ctx"), "ctx") == b"payload"


def test_configured_key_wins_and_bad_keys_are_refused(tmp_path: Path) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    box = load_secret_box(DeliverySettings(secret_key=key), tmp_path)
    assert box.current_id == key_id(b"k" * 32)
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(SecretKeyError, match="must decode to 32 bytes, not 16"):
        load_secret_box(DeliverySettings(secret_key=base64.b64encode(b"k" * 16).decode()), tmp_path)
    with pytest.raises(SecretKeyError, match="is not base64"):
        load_secret_box(DeliverySettings(secret_key="not base64!"), tmp_path)
    with pytest.raises(SecretKeyError, match=r"retired_secret_keys\[0\]"):
        load_secret_box(DeliverySettings(secret_key=key, retired_secret_keys=["short"]), tmp_path)
    settings = Settings(data_dir=tmp_path, delivery={"secret_key": key})
    assert "k" * 8 not in repr(settings)  # the key never shows in a repr or a log line


def test_seal_round_trip() -> None:
    box = SecretBox.from_keys(b"a" * 32)
    plaintext = msgspec.json.encode({"ApiKey": API_KEY})
    first, second = box.seal(plaintext, "apps/x/channels/GCM"), box.seal(plaintext, "apps/x/channels/GCM")
    assert first != second  # a fresh nonce every time
    assert box.open(first, "apps/x/channels/GCM") == plaintext
    assert API_KEY not in first
    assert box.sealed_with_current(first)
    with pytest.raises(SecretKeyError, match="altered or belong to another row"):
        box.open(first, "apps/y/channels/GCM")
    with pytest.raises(SecretKeyError, match="not in a format"):
        box.open("plain text", "apps/x/channels/GCM")
    rotated = SecretBox.from_keys(b"b" * 32, retired=[b"a" * 32])
    assert rotated.open(first, "apps/x/channels/GCM") == plaintext
    assert not rotated.sealed_with_current(first)
