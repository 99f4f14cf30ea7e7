"""The Channels page in a real browser: APNs by certificate (a .p12 file as Keychain exports it, a modern AES one, a
PEM file) and by token key on each of the four APNs channels, ADM and Baidu, credentials that are written and never
read back, and the server's refusals shown on the field they name. What the server stored is read with its own
secrets opened, so the test sees that the certificate in the file is the one stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import RunningServer
from console_browser import VISIBLE_TEXT, ConsolePage, console_server, english_messages, keep_for_docs, untranslated
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from clarion.channels.service import channel_config

P12 = "Certificate file (.p12 or .pem)"
P12_PASSWORD = "Password of the .p12 file"
TOKEN_KEY = "Token key (.p8 file contents)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(tmp_path_factory.mktemp("channels")) as running:
        yield running


@pytest.fixture(scope="module")
def push_certificate() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """An RSA key and a certificate shaped like the one Apple issues for push."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Apple Push Services: com.example.shop")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def p12(key: rsa.RSAPrivateKey, certificate: x509.Certificate, password: bytes, legacy: bool) -> bytes:
    """Keychain's export (3DES and RC2 with a SHA-1 MAC) or OpenSSL 3's default (AES-256, PBKDF2, SHA-256)."""
    if legacy:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(password)
        )
    else:
        encryption = serialization.BestAvailableEncryption(password)
    return pkcs12.serialize_key_and_certificates(b"push", key, certificate, None, encryption)


def stored(server: RunningServer, app_id: str, channel_type: str) -> dict[str, Any]:
    """The channel as the send path reads it, secrets opened."""
    found = server.run(lambda s: channel_config(s.db, app_id, channel_type, s.channel_secrets))
    assert found is not None, channel_type
    return found


def field_error(card: Any, label: str) -> str:
    """The message shown on a field: its accessible description that the field is invalid."""
    field = card.get_by_label(label, exact=True)
    assert field.get_attribute("aria-invalid") == "true", label
    ids = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(card.page.locator(f"[id='{i}']").inner_text() for i in ids if "error" in i)


def choose_certificate(card: Any, name: str, content: bytes, password: str = "") -> None:
    """Switch a card to certificate authentication and choose a file (and its password), as a person would."""
    card.locator("label", has_text="Certificate (.p12 or PEM)").click()
    card.locator("input[type=file]").set_input_files(
        {"name": name, "mimeType": "application/octet-stream", "buffer": content}
    )
    card.get_by_label(P12_PASSWORD).fill(password)
    card.get_by_role("button", name="Save channel").click()


def test_apns_by_certificate_file_and_by_token_with_refusals_on_the_field(
    console: ConsolePage, server: RunningServer, push_certificate: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    key, certificate = push_certificate
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "push"})["ApplicationResponse"]["Id"]
    console.sign_in("ada", f"apps/{app_id}/channels")
    page = console.page
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()

    # Production APNs from a .p12 as Keychain exports it: a wrong password is said on the password field.
    apns = page.get_by_test_id("channel-apns")
    choose_certificate(apns, "push.p12", p12(key, certificate, b"s3cret", True), "wrong")
    apns.get_by_text("This password does not open the file.").wait_for()
    assert field_error(apns, P12_PASSWORD) == "This password does not open the file."
    apns.get_by_label(P12_PASSWORD).fill("s3cret")
    apns.get_by_role("button", name="Save channel").click()
    apns.get_by_text("Credentials are stored and never shown").first.wait_for()
    answer = client.get_apns_channel(ApplicationId=app_id)["APNSChannelResponse"]
    assert (answer["HasCredential"], answer["DefaultAuthenticationMethod"]) == (True, "CERTIFICATE")
    config = stored(server, app_id, "APNS")
    assert x509.load_pem_x509_certificate(config["Certificate"].encode()) == certificate
    opened = serialization.load_pem_private_key(config["PrivateKey"].encode(), None)
    assert opened.private_numbers() == key.private_numbers()  # type: ignore[union-attr]

    # The sandbox from OpenSSL 3's AES .p12; VoIP from a PEM file holding both.
    sandbox = page.get_by_test_id("channel-apns_sandbox")
    choose_certificate(sandbox, "sandbox.p12", p12(key, certificate, b"pw", False), "pw")
    sandbox.get_by_text("Saved.").wait_for()
    assert stored(server, app_id, "APNS_SANDBOX")["Certificate"] == certificate_pem

    voip = page.get_by_test_id("channel-apns_voip")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    choose_certificate(voip, "voip.pem", key_pem + certificate_pem.encode())
    voip.get_by_text("Saved.").wait_for()
    assert stored(server, app_id, "APNS_VOIP")["Certificate"] == certificate_pem
    assert client.get_apns_voip_channel(ApplicationId=app_id)["APNSVoipChannelResponse"]["HasCredential"] is True

    # The VoIP sandbox by token: an RSA key where the .p8's EC key belongs is refused on the token key's field,
    # and a token key without its team and bundle names those two fields.
    voip_sandbox = page.get_by_test_id("channel-apns_voip_sandbox")
    voip_sandbox.get_by_label(TOKEN_KEY).fill(key_pem.decode())
    voip_sandbox.get_by_label("Key ID").fill("KEY1234567")
    voip_sandbox.get_by_role("button", name="Save channel").click()
    message = "TokenKey must be the EC (P-256) key of an APNs .p8 file"
    voip_sandbox.get_by_text(message).wait_for()
    assert field_error(voip_sandbox, TOKEN_KEY) == message
    assert voip_sandbox.get_by_role("alert").count() == 0  # on the field, not above the button
    console.forget_refused_calls()
    console.screenshot("channels-apns")
    keep_for_docs("channels-apns", "console-channels.png")


def test_adm_and_baidu_credentials_are_write_only_and_refusals_name_their_field(
    console: ConsolePage, server: RunningServer
) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "android"})["ApplicationResponse"]["Id"]
    console.sign_in("ada", f"apps/{app_id}/channels")
    page = console.page

    adm = page.get_by_test_id("channel-adm")
    adm.get_by_label("Client ID").fill("amzn1.application-oa2-client.1")
    adm.get_by_label("Client secret").fill("adm secret")
    adm.get_by_role("button", name="Save channel").click()
    adm.get_by_text("Saved.").wait_for()
    adm.get_by_text("Credentials are stored and never shown").first.wait_for()
    assert adm.get_by_label("Client secret").input_value() == ""
    assert client.get_adm_channel(ApplicationId=app_id)["ADMChannelResponse"]["HasCredential"] is True
    assert stored(server, app_id, "ADM")["ClientSecret"] == "adm secret"

    # Baidu without its secret key: the server's reason is shown on that field alone.
    baidu = page.get_by_test_id("channel-baidu")
    baidu.get_by_label("API key").fill("baidu api key")
    baidu.get_by_role("button", name="Save channel").click()
    message = "Invalid BaiduChannelRequest: Object missing required field `SecretKey`"
    baidu.get_by_text(message).wait_for()
    assert field_error(baidu, "Secret key") == message
    assert baidu.get_by_label("API key").get_attribute("aria-invalid") == "false"
    console.forget_refused_calls()
    baidu.get_by_label("Secret key").fill("baidu secret")
    baidu.get_by_role("button", name="Save channel").click()
    baidu.get_by_text("Saved.").wait_for()
    assert stored(server, app_id, "BAIDU")["SecretKey"] == "baidu secret"

    sms = page.get_by_test_id("channel-sms")
    sms.get_by_label("Sender ID").fill("TOO-LONG-SENDER")
    sms.get_by_role("button", name="Save channel").click()
    sms.get_by_text("must be 1 to 11 letters and digits").wait_for()
    assert "SenderId 'TOO-LONG-SENDER'" in field_error(sms, "Sender ID")
    console.forget_refused_calls()
    console.screenshot("channels-android")


def test_the_channels_page_in_korean(korean_console: ConsolePage, server: RunningServer) -> None:
    app_id = server.client().create_app(CreateApplicationRequest={"Name": "채널"})["ApplicationResponse"]["Id"]
    korean_console.sign_in("ada", f"apps/{app_id}/channels")
    page = korean_console.page
    apns = page.get_by_test_id("channel-apns")
    apns.locator("label", has_text="인증서(.p12 또는 PEM)").click()
    apns.get_by_label(".p12 파일 비밀번호").wait_for()
    page.get_by_test_id("channel-baidu").get_by_label("시크릿 키").wait_for()
    assert untranslated(page.evaluate(VISIBLE_TEXT), english_messages()) == []
    assert page.evaluate("window.clarionMissingTranslations ?? []") == []
    korean_console.screenshot("channels-ko")


def test_a_certificate_is_set_from_the_keyboard(
    console: ConsolePage, server: RunningServer, push_certificate: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    key, certificate = push_certificate
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "keys only"})["ApplicationResponse"]["Id"]
    console.sign_in("ada", f"apps/{app_id}/channels")
    page = console.page
    # The browser's file chooser answers with the .p12 (set up first: Playwright turns interception on without
    # waiting for the browser to confirm it).
    upload = {"name": "push.p12", "mimeType": "application/x-pkcs12", "buffer": p12(key, certificate, b"k", True)}
    page.on("filechooser", lambda chooser: chooser.set_files(upload))
    sandbox = page.get_by_test_id("channel-apns_sandbox")
    sandbox.locator("input[value=TOKEN]").focus()  # the method switch: arrows move between its choices
    page.keyboard.press("ArrowRight")
    assert sandbox.locator("input[value=CERTIFICATE]").is_checked()
    page.keyboard.press("Tab")  # the file field is a button: Enter opens the browser's file chooser
    page.keyboard.press("Enter")
    sandbox.get_by_text("push.p12").wait_for()
    page.keyboard.press("Tab")  # the chosen file's clear button
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('.mantine-InputWrapper-root').innerText")
    assert focused.startswith(P12_PASSWORD)
    page.keyboard.type("k")
    page.keyboard.press("Enter")  # Enter in a field submits its form
    sandbox.get_by_text("Saved.").wait_for()
    assert (
        stored(server, app_id, "APNS_SANDBOX")["Certificate"]
        == certificate.public_bytes(serialization.Encoding.PEM).decode()
    )
