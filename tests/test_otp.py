"""SendOTPMessage and VerifyOTPMessage through boto3 on both stores: codes go out over the project's SMS channel
to a local SMS gateway (the generic HTTP provider), and expiry is tested by moving the server's clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from botocore.exceptions import ClientError
from conftest import RunningServer, running
from web_recorder import WebRecorder

from clarion.channels.config import DeliverySettings, GenericHttpSettings, SmsSettings
from clarion.config import Settings
from clarion.otp.config import OtpSettings
from clarion.otp.texts import LANGUAGES, TEXTS
from clarion.outbound.config import OutboundSettings
from clarion.store import events as event_store

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

PHONE = "+14255550100"
SENDER = "+12065550199"


@contextmanager
def otp_server(settings: Settings, **otp: Any) -> Iterator[tuple[RunningServer, WebRecorder]]:
    """A server whose SMS provider is a local gateway recording each message; the clock may move by hours."""
    gateway = WebRecorder(lambda body: (200, {"id": f"gw-{body['to']}"}))
    sms = SmsSettings(
        provider="http",
        http=GenericHttpSettings(
            url=f"{gateway.url}/send", body={"to": "{to}", "from": "{from}", "text": "{body}"}, message_id_path="id"
        ),
    )
    tuned = settings.model_copy(
        update={
            "delivery": DeliverySettings(sms=sms),
            "otp": OtpSettings(**otp),
            "outbound": OutboundSettings(allow_networks=["127.0.0.0/8"]),  # where the gateway listens
            "max_clock_skew_seconds": 86_400,  # the tests move the server's clock; boto3 signs with the real one
        }
    )
    try:
        with running(tuned) as server:
            yield server, gateway
    finally:
        gateway.close()


def project(client: Any) -> str:
    app_id = client.create_app(CreateApplicationRequest={"Name": "otp"})["ApplicationResponse"]["Id"]
    client.update_sms_channel(ApplicationId=app_id, SMSChannelRequest={"Enabled": True})
    return app_id


def send(client: Any, app_id: str, **members: Any) -> dict[str, Any]:
    request = {
        "Channel": "SMS",
        "BrandName": "ExampleCorp",
        "OriginationIdentity": SENDER,
        "DestinationIdentity": PHONE,
        "ReferenceId": "login",
        **members,
    }
    response = client.send_otp_message(ApplicationId=app_id, SendOTPMessageRequestParameters=request)
    return dict(response["MessageResponse"])


def verify(client: Any, app_id: str, otp: str, reference: str = "login", destination: str = PHONE) -> bool:
    response = client.verify_otp_message(
        ApplicationId=app_id,
        VerifyOTPMessageRequestParameters={"DestinationIdentity": destination, "Otp": otp, "ReferenceId": reference},
    )
    return bool(response["VerificationResponse"]["Valid"])


def code_in(text: str) -> str:
    found = re.search(r"\d{5,8}", text)
    assert found is not None, text
    return found.group()


def last_code(gateway: WebRecorder) -> str:
    return code_in(gateway.requests[-1][2]["text"])


def outcomes(server: RunningServer, operation: str, outcome: str) -> float:
    value = server.services.metrics.registry.get_sample_value(
        "clarion_otp_outcomes_total", {"operation": operation, "outcome": outcome}
    )
    return value or 0


def test_a_code_goes_by_sms_is_stored_only_as_a_hash_and_is_valid_once(settings: Settings) -> None:
    with otp_server(settings) as (server, gateway):
        client = server.client()
        app_id = project(client)
        response = send(client, app_id, CodeLength=8)
        [(path, _, sms)] = gateway.requests
        code = code_in(sms["text"])
        assert path == "/send" and sms["to"] == PHONE and sms["from"] == SENDER
        assert sms["text"] == f"This is your One Time Password: {code} from ExampleCorp" and len(code) == 8
        result = response["Result"][PHONE]
        assert response["ApplicationId"] == app_id and result["DeliveryStatus"] == "SUCCESSFUL"
        assert result["StatusCode"] == 200 and result["MessageId"]

        def stored(tx: Any) -> list[Any]:
            return tx.fetchall("SELECT * FROM otp_codes")

        [row] = server.run(lambda services: services.db.read(stored))
        assert not any(code in str(value) for value in row)  # the code itself is nowhere in the store
        assert len(row[5]) == 64  # its HMAC-SHA256, hex

        [event] = server.run(lambda services: services.db.read(lambda tx: event_store.recent(tx, app_id, 10)))
        attributes = msgspec.json.decode(event.doc)["Attributes"]
        assert attributes["otp_reference_id"] == "login" and code not in event.doc  # the SMS event, without the code
        assert not verify(client, app_id, code, reference="other")  # codes belong to their reference
        assert not verify(client, app_id, code, destination="+14255550101")  # and to their destination
        assert verify(client, app_id, code)
        assert not verify(client, app_id, code)  # once only
        assert outcomes(server, "verify", "valid") == 1 and outcomes(server, "verify", "used") == 1

        send(client, app_id, ReferenceId="raced")
        raced = last_code(gateway)
        with ThreadPoolExecutor(6) as pool:  # six verifications of one code at once: one wins
            answers = list(pool.map(lambda _: verify(server.client(), app_id, raced, "raced"), range(6)))
        assert sorted(answers) == [False] * 5 + [True]


def test_expiry_attempts_and_replacement_follow_the_request(settings: Settings) -> None:
    with otp_server(settings) as (server, gateway):
        client = server.client()
        app_id = project(client)

        send(client, app_id, ReferenceId="short", ValidityPeriod=5)
        short = last_code(gateway)
        send(client, app_id, ReferenceId="long", ValidityPeriod=6)
        long = last_code(gateway)
        server.clock.offset += timedelta(minutes=5, seconds=1)
        assert not verify(client, app_id, short, reference="short")  # past its 5 minutes
        assert verify(client, app_id, long, reference="long")  # its 6 minutes are not over

        send(client, app_id, ReferenceId="tries", AllowedAttempts=2)
        code = last_code(gateway)
        wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
        assert not verify(client, app_id, wrong, reference="tries")
        assert not verify(client, app_id, "not even digits", reference="tries")
        assert not verify(client, app_id, code, reference="tries")  # two wrong tries used up its two attempts
        assert outcomes(server, "verify", "exhausted") == 1

        send(client, app_id, ReferenceId="again", AllowedAttempts=3)
        first = last_code(gateway)
        assert not verify(client, app_id, wrong, reference="again")
        send(client, app_id, ReferenceId="again")  # a new code replaces the first
        second = last_code(gateway)
        assert first == second or not verify(client, app_id, first, reference="again")
        assert verify(client, app_id, second, reference="again")


def test_sends_to_a_destination_are_rate_limited(settings: Settings) -> None:
    with otp_server(settings, max_sends_per_destination=2, window_seconds=60) as (server, gateway):
        client = server.client(retries={"total_max_attempts": 1, "mode": "standard"})  # a 429 is not retried
        app_id = project(client)
        send(client, app_id)
        send(client, app_id, ReferenceId="other")
        with pytest.raises(ClientError) as refused:
            send(client, app_id)
        error = refused.value.response["Error"]
        assert error["Code"] == "TooManyRequestsException" and PHONE in error["Message"]
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert len(gateway.requests) == 2 and outcomes(server, "send", "rate_limited") == 1
        send(client, app_id, DestinationIdentity="+14255550101")  # another number has its own allowance
        server.clock.offset += timedelta(seconds=61)
        send(client, app_id)  # the window has passed
        assert len(gateway.requests) == 4


def test_every_language_has_its_text_and_operators_may_replace_one(settings: Settings) -> None:
    replaced = "Ihr Code {code} für {brand}"
    with otp_server(settings, max_sends_per_destination=20, texts={"de-DE": replaced}) as (server, gateway):
        client = server.client()
        app_id = project(client)
        for language in LANGUAGES:
            send(client, app_id, Language=language, ReferenceId=language, OriginationIdentity="Acme")
            text = gateway.requests[-1][2]["text"]
            code = code_in(text)
            expected = replaced if language == "de-DE" else TEXTS[language]
            assert text == expected.replace("{code}", code).replace("{brand}", "ExampleCorp"), language
            assert gateway.requests[-1][2]["from"] == "Acme"  # a sender id, not a number
            assert verify(client, app_id, code, reference=language)
        assert gateway.requests[LANGUAGES.index("ja-JP")][2]["text"].startswith("ExampleCorp のワンタイムパスワード: ")


def test_brand_names_are_data_not_template_text(settings: Settings) -> None:
    with otp_server(settings) as (server, gateway):
        client = server.client()
        app_id = project(client)
        send(client, app_id, BrandName="{{Address}} & <Co>")
        assert gateway.requests[-1][2]["text"].endswith(" from {{Address}} & <Co>")


def test_an_opted_out_number_gets_no_code(settings: Settings) -> None:
    with otp_server(settings) as (server, gateway):
        client = server.client()
        app_id = project(client)
        client.update_endpoint(
            ApplicationId=app_id,
            EndpointId="phone",
            EndpointRequest={"ChannelType": "SMS", "Address": PHONE, "OptOut": "ALL"},
        )
        result = send(client, app_id)["Result"][PHONE]
        assert result["DeliveryStatus"] == "OPT_OUT" and gateway.requests == []
        assert outcomes(server, "send", "not_sent") == 1


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"Channel": "EMAIL"}, "Channel"),
        ({"BrandName": "B" * 21}, "BrandName"),
        ({"BrandName": "  "}, "BrandName"),
        ({"OriginationIdentity": ""}, "OriginationIdentity"),
        ({"DestinationIdentity": "4255550100"}, "DestinationIdentity"),
        ({"ReferenceId": "r" * 49}, "ReferenceId"),
        ({"ReferenceId": ""}, "ReferenceId"),
        ({"CodeLength": 4}, "CodeLength must be between 5 and 8"),
        ({"CodeLength": 9}, "CodeLength"),
        ({"ValidityPeriod": 4}, "ValidityPeriod must be between 5 and 60"),
        ({"ValidityPeriod": 61}, "ValidityPeriod"),
        ({"AllowedAttempts": 0}, "AllowedAttempts must be between 1 and 5"),
        ({"AllowedAttempts": 6}, "AllowedAttempts"),
        ({"Language": "nl-NL"}, "Language 'nl-NL' is not one of"),
    ],
)
def test_a_request_pinpoint_would_refuse_is_refused_naming_the_member(
    client: Any, app_id: str, members: dict[str, Any], named: str
) -> None:
    with pytest.raises(ClientError) as refused:
        send(client, app_id, **members)
    error = refused.value.response["Error"]
    assert error["Code"] == "BadRequestException" and named in error["Message"]


def test_an_unknown_project_is_not_found(client: Any) -> None:
    for call in (lambda: send(client, "0" * 32), lambda: verify(client, "0" * 32, "123456")):
        with pytest.raises(ClientError) as missing:
            call()
        assert missing.value.response["Error"]["Code"] == "NotFoundException"
