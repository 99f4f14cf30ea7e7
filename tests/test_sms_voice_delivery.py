"""SMS and voice delivery against local servers that speak each provider's documented wire contract.

The fake providers check what they receive the way the real services do (basic auth for Twilio, SigV4 recomputed
with botocore for AWS) and answer with the providers' own success and error documents; boto3's client for
pinpoint-sms-voice-v2 is the reference for the AWS request body and for how its errors read.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode
from xml.etree import ElementTree

import boto3
import pytest
import trustme
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import RunningServer
from web_recorder import WebRecorder

from clarion.channels import sms, voice
from clarion.channels.config import DeliverySettings, GenericHttpSettings, SmsSettings, TwilioSettings
from clarion.channels.custom import sign as clarion_sign
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound, SmsContent, Transport, VoiceContent
from clarion.channels.sms import generic_webhooks, twilio_webhooks
from clarion.channels.sms.keywords import Keyword, inbound_report, keyword_of
from clarion.config import Settings
from clarion.outbound.client import OutboundClient
from clarion.outbound.config import OutboundSettings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

OK = "+12065550100"
THROTTLED = "+12065550101"
INVALID = "+12065550102"
OPTED_OUT = "+12065550103"
NOT_MOBILE = "+12065550104"
BROKEN = "+12065550105"
QUOTA = "+12065550106"
DENIED = "+12065550107"
CLARION_NUMBER = "+12065550199"
# The guarded client every transport sends through, allowed onto the loopback network where the providers listen.
PROVIDERS = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8", "::1/128"]))


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Seen], web.Response | Awaitable[web.Response]]


class FakeProvider:
    """A provider API on a local socket: records every request and answers through `answer`."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.seen: list[Seen] = []
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        seen = Seen(request.method, request.path, request.query_string, dict(request.headers), await request.read())
        self.seen.append(seen)
        response = self.answer(seen)
        return await response if isinstance(response, Awaitable) else response

    async def __aenter__(self) -> FakeProvider:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock, ssl_context=self.tls).start()
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://{'localhost' if self.tls else '127.0.0.1'}:{sock.getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._runner.cleanup()


def outbound(to: str, content: SmsContent | VoiceContent, message_id: str = "msg-1") -> Outbound:
    channel = "SMS" if isinstance(content, SmsContent) else "VOICE"
    return Outbound(channel=channel, address=to, message_id=message_id, app_id="app-1", content=content)


async def send_all(transport: Transport, messages: list[Outbound]) -> list[DeliveryResult]:
    try:
        return [await transport.send(message) for message in messages]
    finally:
        await transport.close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for "localhost" and the CA file a client must trust for it."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return context, str(ca_file)


# --- Twilio ---------------------------------------------------------------------------------------------------

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "twilio-auth-token"
TWILIO_ERRORS = {
    THROTTLED: (429, 20429, "Too Many Requests"),
    INVALID: (400, 21211, f"The 'To' number {INVALID[:-2]}XX is not a valid phone number."),
    OPTED_OUT: (400, 21610, "Attempt to send to unsubscribed recipient"),
    NOT_MOBILE: (400, 21614, f"'To' number {NOT_MOBILE} is not a valid mobile number"),
    BROKEN: (500, 20500, "An internal server error has occurred"),
}


def twilio_error(status: int, code: int, message: str, **headers: str) -> web.Response:
    document = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return web.json_response(document | {"status": status}, status=status, headers=headers)


def twilio_api(seen: Seen) -> web.Response:
    """Twilio's Messages and Calls resources as documented: basic auth, form fields, 201 with the new resource."""
    expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    if seen.headers.get("Authorization") != expected:
        return twilio_error(401, 20003, "Authenticate")
    match = re.fullmatch(rf"/2010-04-01/Accounts/{ACCOUNT_SID}/(Messages|Calls)\.json", seen.path)
    if seen.method != "POST" or match is None:
        return twilio_error(404, 20404, "The requested resource was not found")
    form = seen.form()
    if form["To"] in TWILIO_ERRORS:
        status, code, message = TWILIO_ERRORS[form["To"]]
        return twilio_error(status, code, message, **({"Retry-After": "7"} if status == 429 else {}))
    prefix = "SM" if match[1] == "Messages" else "CA"
    sid = prefix + hashlib.md5(form["To"].encode()).hexdigest()
    resource = {"sid": sid, "account_sid": ACCOUNT_SID, "to": form["To"], "from": form.get("From"), "status": "queued"}
    return web.json_response(resource | {"api_version": "2010-04-01"}, status=201)


def twilio_settings(url: str, ca_file: str, **sms: Any) -> DeliverySettings:
    account = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "base_url": url}
    phone = {"provider": "twilio", "twilio": account, "ca_file": ca_file}
    return DeliverySettings(sms=phone | sms, voice=phone | {"default_origination": CLARION_NUMBER})


def test_twilio_sms_request_and_statuses_over_tls(tls: tuple[ssl.SSLContext, str]) -> None:
    context, ca_file = tls

    async def scenario() -> tuple[list[DeliveryResult], list[Seen]]:
        async with FakeProvider(twilio_api, context) as provider:
            settings = twilio_settings(provider.url, ca_file, webhook_base_url="https://clarion.example.com/")
            transport = sms.open_transport(settings, {"ShortCode": "12345", "SenderId": "CLARION"}, PROVIDERS)
            messages = [outbound(OK, SmsContent("Your code is 42 & more"), message_id="m-1")]
            messages += [outbound(to, SmsContent("x")) for to in (THROTTLED, INVALID, OPTED_OUT, NOT_MOBILE, BROKEN)]
            return await send_all(transport, messages), provider.seen

    results, seen = asyncio.run(scenario())
    first = seen[0]
    assert first.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert first.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert first.form() == {
        "To": OK,
        "From": "12345",  # the channel's short code: the message named no sender
        "Body": "Your code is 42 & more",
        "StatusCallback": "https://clarion.example.com/webhooks/sms/twilio/status?message_id=m-1",
    }
    ok, throttled, invalid, opted_out, not_mobile, broken = results
    assert ok.status is DeliveryStatus.SUCCESSFUL and ok.status_code == 201
    assert ok.provider_message_id == "SM" + hashlib.md5(OK.encode()).hexdigest()
    assert (throttled.status, throttled.status_code, throttled.retry_after) == (DeliveryStatus.THROTTLED, 429, 7.0)
    assert invalid.status is DeliveryStatus.PERMANENT_FAILURE
    assert invalid.message.startswith("Twilio error 21211: The 'To' number")
    assert opted_out.status is DeliveryStatus.OPT_OUT
    assert not_mobile.status is DeliveryStatus.PERMANENT_FAILURE and "21614" in not_mobile.message
    assert (broken.status, broken.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 500)
    assert not any(result.status.retryable for result in (ok, invalid, opted_out, not_mobile))


def test_twilio_sender_choice_and_bad_credentials(tls: tuple[ssl.SSLContext, str]) -> None:
    context, ca_file = tls

    async def scenario() -> tuple[list[DeliveryResult], list[Seen]]:
        async with FakeProvider(twilio_api, context) as provider:
            settings = twilio_settings(provider.url, ca_file)
            good = sms.open_transport(settings, {"SenderId": "CLARION"}, PROVIDERS)
            results = await send_all(
                good,
                [
                    outbound(OK, SmsContent("a")),
                    outbound(OK, SmsContent("b", sender_id="SHOP")),
                    outbound(OK, SmsContent("c", sender_id="SHOP", origination_number=CLARION_NUMBER)),
                ],
            )
            wrong = settings.model_copy(deep=True)
            wrong.sms.twilio.auth_token = "not-the-token"
            results += await send_all(sms.open_transport(wrong, {}, PROVIDERS), [outbound(OK, SmsContent("d"))])
            return results, provider.seen

    results, seen = asyncio.run(scenario())
    assert [request.form().get("From") for request in seen] == ["CLARION", "SHOP", CLARION_NUMBER, None]
    assert "StatusCallback" not in seen[0].form()  # no public URL configured: no callbacks asked for
    refused = results[-1]
    # An account problem, not the recipient's: worth retrying once the operator fixes it.
    assert (refused.status, refused.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 401)
    assert refused.message == "Twilio error 20003: Authenticate"


def test_twilio_voice_call_says_the_message(tls: tuple[ssl.SSLContext, str]) -> None:
    context, ca_file = tls

    async def scenario() -> tuple[list[DeliveryResult], list[Seen]]:
        async with FakeProvider(twilio_api, context) as provider:
            transport = voice.open_transport(twilio_settings(provider.url, ca_file), {"Enabled": True}, PROVIDERS)
            ssml = '<speak>Your code is <say-as interpret-as="digits">1234</say-as></speak>'
            return await send_all(
                transport,
                [
                    outbound(OK, VoiceContent("Hello <there> & welcome", language_code="en-GB", voice_id="Amy")),
                    outbound(OK, VoiceContent(ssml)),
                    outbound(OK, VoiceContent("<speak>unclosed")),
                ],
            ), provider.seen

    results, seen = asyncio.run(scenario())
    assert [request.path for request in seen] == [f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"] * 2
    plain, ssml = (request.form() for request in seen)
    assert (plain["To"], plain["From"]) == (OK, CLARION_NUMBER)
    say = ElementTree.fromstring(plain["Twiml"]).find("Say")
    assert say is not None and say.text == "Hello <there> & welcome"
    assert say.attrib == {"language": "en-GB", "voice": "Polly.Amy"}
    said = ElementTree.fromstring(ssml["Twiml"]).find("Say")
    assert said is not None and said.text == "Your code is " and said[0].tag == "say-as" and said[0].text == "1234"
    assert results[0].status is DeliveryStatus.SUCCESSFUL and results[0].provider_message_id.startswith("CA")
    assert results[2].status is DeliveryStatus.PERMANENT_FAILURE and "not well-formed SSML" in results[2].message


# --- AWS End User Messaging SMS and voice -----------------------------------------------------------------------

AWS_KEY, AWS_SECRET, AWS_REGION = "AKIDSMSVOICE0001", "aws/secret+key", "eu-west-2"
AWS_ERRORS = {
    THROTTLED: (400, "ThrottlingException", {"Message": "Rate exceeded"}),
    INVALID: (400, "ValidationException", {"Message": "Invalid destination", "Reason": "INVALID_PARAMETER"}),
    OPTED_OUT: (
        400,
        "ConflictException",
        {"Message": "opted out", "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT", "ResourceType": "opt-out-list"},
    ),
    NOT_MOBILE: (400, "ConflictException", {"Message": "mismatch", "Reason": "NUMBER_CAPABILITIES_MISMATCH"}),
    QUOTA: (400, "ServiceQuotaExceededException", {"Message": "Spend limit reached", "Reason": "MONTHLY_SPEND_LIMIT"}),
    DENIED: (400, "AccessDeniedException", {"Message": "Not authorized", "Reason": "ACCOUNT_DISABLED"}),
    BROKEN: (500, "InternalServerException", {"Message": "Internal failure", "RequestId": "r-1"}),
}


def botocore_signature(seen: Seen, url: str) -> str:
    """The signature botocore computes for the received request at its own X-Amz-Date."""
    names = re.search(r"SignedHeaders=([^,]+)", seen.headers["Authorization"])[1].split(";")  # type: ignore[index]
    headers = {name: value for name, value in seen.headers.items() if name.lower() in names}
    request = AWSRequest(method=seen.method, url=url + seen.path, data=seen.body, headers=headers)
    request.context["timestamp"] = seen.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(AWS_KEY, AWS_SECRET), "sms-voice", AWS_REGION)
    return signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)


def aws_api(provider: FakeProvider) -> Answer:
    """pinpoint-sms-voice-v2 over AWS JSON 1.0: the signature must verify, errors carry `__type`."""

    def answer(seen: Seen) -> web.Response:
        claimed = seen.headers.get("Authorization", "").rsplit("Signature=", 1)[-1]
        if not hmac.compare_digest(claimed, botocore_signature(seen, provider.url)):
            return aws_error(403, "InvalidSignatureException", {"message": "The request signature does not match"})
        payload = seen.json()
        if payload["DestinationPhoneNumber"] in AWS_ERRORS:
            return aws_error(*AWS_ERRORS[payload["DestinationPhoneNumber"]])
        body = json.dumps({"MessageId": "aws-" + payload["DestinationPhoneNumber"][-4:]}).encode()
        return web.Response(body=body, headers=JSON_1_0)

    return answer


JSON_1_0 = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "5e1f0b6c-0000-4000-8000-000000000000"}


def aws_error(status: int, code: str, members: dict[str, str]) -> web.Response:
    body = json.dumps({"__type": f"com.amazonaws.pinpointsmsvoicev2#{code}", **members})
    return web.Response(status=status, body=body.encode(), headers=JSON_1_0)


def aws_settings(url: str) -> DeliverySettings:
    aws = {"region": AWS_REGION, "endpoint_url": url, "access_key_id": AWS_KEY, "secret_access_key": AWS_SECRET}
    phone = {"provider": "aws", "aws": aws | {"configuration_set_name": "clarion-events"}}
    return DeliverySettings(sms=phone, voice=phone | {"default_origination": CLARION_NUMBER})


def test_aws_text_message_is_signed_and_shaped_like_boto3() -> None:
    async def scenario() -> tuple[list[DeliveryResult], list[Seen], dict[str, Any]]:
        async with FakeProvider(lambda seen: web.Response(status=500)) as provider:
            provider.answer = aws_api(provider)
            transport = sms.open_transport(aws_settings(provider.url), {"SenderId": "CLARION"}, PROVIDERS)
            content = SmsContent("Olá, código 42", message_type="PROMOTIONAL", keyword="JOIN", entity_id="E1")
            results = await send_all(transport, [outbound(OK, content, message_id="m-9")])
            client = boto3.client(
                "pinpoint-sms-voice-v2",
                endpoint_url=provider.url,
                region_name=AWS_REGION,
                aws_access_key_id=AWS_KEY,
                aws_secret_access_key=AWS_SECRET,
            )
            reference = await asyncio.to_thread(
                client.send_text_message,
                DestinationPhoneNumber=OK,
                OriginationIdentity="CLARION",
                MessageBody="Olá, código 42",
                MessageType="PROMOTIONAL",
                Keyword="JOIN",
                ConfigurationSetName="clarion-events",
                Context={"ClarionMessageId": "m-9", "ClarionApplicationId": "app-1"},
                DestinationCountryParameters={"IN_ENTITY_ID": "E1"},
            )
            return results, provider.seen, reference

    results, seen, reference = asyncio.run(scenario())
    ours, boto = seen
    assert ours.json() == boto.json()
    for header in ("Content-Type", "X-Amz-Target"):
        assert ours.headers[header] == boto.headers[header]
    assert ours.headers["X-Amz-Target"] == "PinpointSMSVoiceV2.SendTextMessage"
    assert ours.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY}/")
    assert f"/{AWS_REGION}/sms-voice/aws4_request" in ours.headers["Authorization"]
    assert reference["MessageId"] == "aws-0100"  # the fake answered boto3 like the real service would
    assert results == [DeliveryResult(DeliveryStatus.SUCCESSFUL, 200, provider_message_id="aws-0100")]


def test_aws_errors_map_to_delivery_statuses_and_read_like_botocore() -> None:
    failing = [THROTTLED, INVALID, OPTED_OUT, NOT_MOBILE, QUOTA, DENIED, BROKEN]

    async def scenario() -> tuple[list[DeliveryResult], list[str]]:
        async with FakeProvider(lambda seen: web.Response(status=500)) as provider:
            provider.answer = aws_api(provider)
            transport = sms.open_transport(aws_settings(provider.url), {}, PROVIDERS)
            results = await send_all(transport, [outbound(to, SmsContent("x")) for to in failing])
            client = boto3.client(
                "pinpoint-sms-voice-v2",
                endpoint_url=provider.url,
                region_name=AWS_REGION,
                aws_access_key_id=AWS_KEY,
                aws_secret_access_key=AWS_SECRET,
                config=Config(retries={"max_attempts": 1, "mode": "standard"}),
            )
            codes = []
            for to in failing:
                try:
                    await asyncio.to_thread(client.send_text_message, DestinationPhoneNumber=to, MessageBody="x")
                except ClientError as error:
                    codes.append(error.response["Error"]["Code"])
            return results, codes

    results, codes = asyncio.run(scenario())
    assert codes == [AWS_ERRORS[to][1] for to in failing]
    assert [result.status for result in results] == [
        DeliveryStatus.THROTTLED,
        DeliveryStatus.PERMANENT_FAILURE,
        DeliveryStatus.OPT_OUT,
        DeliveryStatus.PERMANENT_FAILURE,
        DeliveryStatus.TEMPORARY_FAILURE,
        DeliveryStatus.TEMPORARY_FAILURE,
        DeliveryStatus.TEMPORARY_FAILURE,
    ]
    assert results[1].message == "ValidationException: Invalid destination (INVALID_PARAMETER)"
    assert results[-1].status_code == 500


def test_aws_voice_message_and_wrong_secret() -> None:
    async def scenario() -> tuple[list[DeliveryResult], list[Seen]]:
        async with FakeProvider(lambda seen: web.Response(status=500)) as provider:
            provider.answer = aws_api(provider)
            settings = aws_settings(provider.url)
            results = await send_all(
                voice.open_transport(settings, {}, PROVIDERS),
                [outbound(OK, VoiceContent("<speak>Hi</speak>", voice_id="Joanna", origination_number="+12065550198"))],
            )
            temporary = settings.model_copy(deep=True)
            temporary.voice.aws.session_token = "session/token=="  # temporary credentials sign their token too
            results += await send_all(
                voice.open_transport(temporary, {}, PROVIDERS), [outbound(OK, VoiceContent("Hi"))]
            )
            wrong = settings.model_copy(deep=True)
            wrong.voice.aws.secret_access_key = "guessed"
            results += await send_all(voice.open_transport(wrong, {}, PROVIDERS), [outbound(OK, VoiceContent("Hi"))])
            return results, provider.seen

    (spoken, with_token, refused), seen = asyncio.run(scenario())
    assert seen[0].headers["X-Amz-Target"] == "PinpointSMSVoiceV2.SendVoiceMessage"
    assert seen[0].json() == {
        "DestinationPhoneNumber": OK,
        "OriginationIdentity": "+12065550198",
        "MessageBody": "<speak>Hi</speak>",
        "MessageBodyTextType": "SSML",
        "VoiceId": "JOANNA",
        "ConfigurationSetName": "clarion-events",
        "Context": {"ClarionMessageId": "msg-1", "ClarionApplicationId": "app-1"},
    }
    assert spoken.status is DeliveryStatus.SUCCESSFUL
    assert seen[1].json()["OriginationIdentity"] == CLARION_NUMBER  # the operator's default caller id
    assert seen[1].headers["X-Amz-Security-Token"] == "session/token=="
    assert "x-amz-security-token" in seen[1].headers["Authorization"] and with_token.status is DeliveryStatus.SUCCESSFUL
    assert refused.status is DeliveryStatus.PERMANENT_FAILURE and refused.status_code == 403
    assert refused.message.startswith("InvalidSignatureException: The request signature does not match")


# --- The generic HTTP adapter -----------------------------------------------------------------------------------


def gateway(seen: Seen) -> web.Response | Awaitable[web.Response]:
    """A made-up gateway: bearer token, recipient in JSON, form or query; answers by recipient."""
    if seen.headers.get("Authorization") != "Bearer gw-key":
        return web.json_response({"error": {"detail": "bad key"}}, status=401)
    to = seen.json()["recipient"] if seen.method == "POST" and seen.body.startswith(b"{") else None
    to = to or seen.form().get("to") or dict(parse_qsl(seen.query)).get("to")
    answers = {
        THROTTLED: web.json_response({"error": {"detail": "slow down"}}, status=429, headers={"Retry-After": "3"}),
        INVALID: web.json_response({"error": {"detail": "unknown number"}}, status=422),
        BROKEN: web.Response(status=503, text="<html>maintenance</html>"),
        QUOTA: web.json_response({"error": {"detail": "no credit"}}, status=402),
    }
    return answers.get(to) or web.json_response({"messages": [{"id": f"gw-{to[-4:]}", "state": "queued"}]})


def generic_settings(origin: str, **http: Any) -> DeliverySettings:
    base = {
        "url": origin + "/v1/messages",
        "headers": {"Authorization": "Bearer gw-key", "X-Reference": "{message_id}"},
        "body": {"recipient": "{to}", "sender": "{from}", "text": "{body}", "meta": {"app": "{app_id}", "n": 1}},
        "message_id_path": "messages.0.id",
        "error_message_path": "error.detail",
        "statuses": {402: "TEMPORARY_FAILURE"},
    }
    return DeliverySettings(sms={"provider": "http", "http": base | http, "default_origination": "CLARION"})


def test_generic_http_json_template_and_status_mapping() -> None:
    async def scenario() -> tuple[list[DeliveryResult], list[Seen]]:
        async with FakeProvider(gateway) as provider:
            transport = sms.open_transport(generic_settings(provider.url), {}, PROVIDERS)
            messages = [outbound(OK, SmsContent('Say "hi" & {to}', sender_id="SHOP"), message_id="m-7")]
            messages += [outbound(to, SmsContent("x")) for to in (THROTTLED, INVALID, BROKEN, QUOTA)]
            return await send_all(transport, messages), provider.seen

    results, seen = asyncio.run(scenario())
    assert seen[0].path == "/v1/messages" and seen[0].headers["X-Reference"] == "m-7"
    assert seen[0].headers["Content-Type"] == "application/json"
    # The body's own braces are text, not placeholders: filled values are never filled again.
    assert seen[0].json() == {
        "recipient": OK,
        "sender": "SHOP",
        "text": 'Say "hi" & {to}',
        "meta": {"app": "app-1", "n": 1},
    }
    ok, throttled, invalid, broken, no_credit = results
    assert (ok.status, ok.provider_message_id) == (DeliveryStatus.SUCCESSFUL, "gw-0100")
    assert (throttled.status, throttled.retry_after, throttled.message) == (DeliveryStatus.THROTTLED, 3.0, "slow down")
    assert (invalid.status, invalid.message) == (DeliveryStatus.PERMANENT_FAILURE, "unknown number")
    assert (broken.status, broken.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 503)
    assert broken.message == "<html>maintenance</html>"
    assert no_credit.status is DeliveryStatus.TEMPORARY_FAILURE  # the operator's override of 402


def test_generic_http_form_and_query_bodies_and_voice() -> None:
    async def scenario() -> list[Seen]:
        async with FakeProvider(gateway) as provider:
            form = generic_settings(provider.url, body_format="form", body={"to": "{to}", "text": "{body}"})
            query = generic_settings(
                provider.url, method="get", body_format="none", url=provider.url + "/send?to={to}&text={body}"
            )
            spoken = DeliverySettings(
                voice={
                    "provider": "http",
                    "http": {
                        "url": provider.url + "/calls",
                        "headers": {"Authorization": "Bearer gw-key"},
                        "body": {
                            "recipient": "{to}",
                            "say": "{body}",
                            "lang": "{language_code}",
                            "voice": "{voice_id}",
                        },
                    },
                }
            )
            await send_all(sms.open_transport(form, {}, PROVIDERS), [outbound(OK, SmsContent("a&b=c"))])
            await send_all(sms.open_transport(query, {}, PROVIDERS), [outbound(OK, SmsContent("a&b c/é"))])
            await send_all(
                voice.open_transport(spoken, {}, PROVIDERS), [outbound(OK, VoiceContent("Hi", "de-DE", "Vicki"))]
            )
            return provider.seen

    form, query, call = asyncio.run(scenario())
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form.form() == {"to": OK, "text": "a&b=c"}
    assert query.method == "GET" and dict(parse_qsl(query.query)) == {"to": OK, "text": "a&b c/é"}
    assert call.json() == {"recipient": OK, "say": "Hi", "lang": "de-DE", "voice": "Vicki"}


def test_unreachable_slow_and_unconfigured_providers() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}"

    async def scenario() -> list[DeliveryResult]:
        release = asyncio.Event()

        async def hang(seen: Seen) -> web.Response:
            await release.wait()
            return web.Response(status=200)

        results = await send_all(
            sms.open_transport(generic_settings(refused_url), {}, PROVIDERS), [outbound(OK, SmsContent("x"))]
        )
        async with FakeProvider(hang) as provider:
            slow = generic_settings(provider.url).model_copy(deep=True)
            slow.sms.timeout_seconds = 0.3
            results += await send_all(sms.open_transport(slow, {}, PROVIDERS), [outbound(OK, SmsContent("x"))])
            release.set()
        results += await send_all(
            sms.open_transport(DeliverySettings(), {}, PROVIDERS), [outbound(OK, SmsContent("x"))]
        )
        results += await send_all(
            voice.open_transport(DeliverySettings(), {}, PROVIDERS), [outbound(OK, VoiceContent("x"))]
        )
        return results

    refused, slow, no_sms, no_voice = asyncio.run(scenario())
    assert (refused.status, refused.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 502)
    assert refused.message.startswith(f"Could not reach {refused_url}/v1/messages")
    assert (slow.status, slow.status_code) == (DeliveryStatus.TEMPORARY_FAILURE, 504)
    assert no_sms.status is DeliveryStatus.PERMANENT_FAILURE and "delivery.sms.provider" in no_sms.message
    assert "delivery.voice.provider" in no_voice.message


def test_destinations_must_be_e164_and_no_provider_is_called() -> None:
    async def scenario() -> tuple[list[DeliveryResult], list[Seen]]:
        async with FakeProvider(gateway) as provider:
            addresses = ["2065550100", "+1 206 555 0100", "+1206555", "+44770090012", "jane@example.com"]
            transport = sms.open_transport(generic_settings(provider.url), {}, PROVIDERS)
            return await send_all(
                transport, [outbound(address, SmsContent("x")) for address in addresses]
            ), provider.seen

    results, seen = asyncio.run(scenario())
    assert seen == []
    assert {result.status for result in results} == {DeliveryStatus.PERMANENT_FAILURE}
    assert (
        results[1].message
        == "'+1 206 555 0100' is not a valid phone number in E.164 form (+, country code, digits only)"
    )


def test_provider_settings_need_their_account() -> None:
    with pytest.raises(ValueError, match=r"provider 'twilio' needs twilio.account_sid, twilio.auth_token"):
        SmsSettings(provider="twilio")
    with pytest.raises(ValueError, match=r"provider 'aws' needs aws.access_key_id, aws.secret_access_key"):
        DeliverySettings(voice={"provider": "aws"})
    with pytest.raises(ValueError, match=r"provider 'http' needs http.url"):
        SmsSettings(provider="http")
    assert SmsSettings(provider="http", http=GenericHttpSettings(url="https://gw.example/send")).provider == "http"


# --- Inbound keywords and webhooks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", Keyword.OPT_OUT),
        ("  stop \n", Keyword.OPT_OUT),
        ("StopAll", Keyword.OPT_OUT),
        ("unsubscribe", Keyword.OPT_OUT),
        ("Cancel", Keyword.OPT_OUT),
        ("END", Keyword.OPT_OUT),
        ("quit", Keyword.OPT_OUT),
        ("Arrêt", Keyword.OPT_OUT),
        ("OPT-OUT", Keyword.OPT_OUT),
        ("td", Keyword.OPT_OUT),
        ("start", Keyword.OPT_IN),
        ("UNSTOP", Keyword.OPT_IN),
        ("Help", Keyword.HELP),
        ("info", Keyword.HELP),
        ("please stop", None),
        ("STOP!", None),
        ("", None),
    ],
)
def test_keywords(body: str, keyword: Keyword | None) -> None:
    assert keyword_of(body) is keyword


def test_inbound_reports_opt_out_and_back_in() -> None:
    stop = inbound_report(OK, CLARION_NUMBER, " Stop ", "twilio")
    assert stop is not None and (stop.event_type, stop.address, stop.opt_out, stop.opt_in) == (
        "_SMS.OPTOUT",
        OK,
        True,
        False,
    )
    assert stop.attributes["keyword"] == "STOP" and stop.attributes["origination_phone_number"] == CLARION_NUMBER
    start = inbound_report(OK, CLARION_NUMBER, "start", "twilio")
    assert start is not None and (start.event_type, start.opt_out, start.opt_in) == ("_SMS.OPTIN", False, True)
    assert inbound_report(OK, CLARION_NUMBER, "HELP", "twilio") is None
    assert inbound_report(OK, CLARION_NUMBER, "thanks!", "twilio") is None


def test_twilio_signature_matches_twilios_published_vectors() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234"}
    params |= {"From": "+14158675309", "To": "+18005551212"}
    items = list(params.items())
    assert twilio_webhooks.twilio_signature("12345", url, items) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_webhooks.verify_twilio_signature("12345", url, items[::-1], "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]
    assert twilio_webhooks.twilio_signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert not twilio_webhooks.verify_twilio_signature("12345", url + "&x=1", items, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not twilio_webhooks.verify_twilio_signature("", url, items, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_twilio_status_callbacks_become_reports() -> None:
    base = {"MessageSid": "SM1", "AccountSid": ACCOUNT_SID, "To": OK, "From": CLARION_NUMBER}
    delivered = twilio_webhooks.status_report(base | {"MessageStatus": "delivered"}, "m-1")
    assert delivered is not None and (delivered.event_type, delivered.provider_message_id, delivered.message_id) == (
        "_SMS.SUCCESS",
        "SM1",
        "m-1",
    )
    assert delivered.attributes["record_status"] == "DELIVERED"
    failed = twilio_webhooks.status_report(base | {"MessageStatus": "undelivered", "ErrorCode": "30003"}, None)
    assert failed is not None and failed.event_type == "_SMS.FAILURE"
    assert failed.attributes["record_status"] == "UNREACHABLE" and failed.attributes["provider_error_code"] == "30003"
    assert "undelivered" in failed.attributes["reason"]
    assert twilio_webhooks.status_report(base | {"MessageStatus": "sent"}, None) is None


def test_generic_webhook_signature_and_format() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    body = b'[{"type":"status","provider_message_id":"gw-1","status":"delivered"}]'
    header = clarion_sign("s3cret", int(now.timestamp()), body)
    generic_webhooks.verify_signature("s3cret", header, body, now)
    for secret, signed, at, reason in [
        ("", header, now, "not enabled"),
        ("other", header, now, "does not match"),
        ("s3cret", header.replace("v1=", "v1=0"), now, "does not match"),
        ("s3cret", header, now.replace(minute=6), "more than 300 seconds"),
        ("s3cret", "sha256=abc", now, "must read t="),
    ]:
        with pytest.raises(generic_webhooks.WebhookRefused, match=reason):
            generic_webhooks.verify_signature(secret, signed, body, at)
    (delivered,) = generic_webhooks.reports_from(json.loads(body))
    assert (delivered.event_type, delivered.provider_message_id) == ("_SMS.SUCCESS", "gw-1")
    with pytest.raises(ValueError, match="status must be DELIVERED or FAILED"):
        generic_webhooks.reports_from({"type": "status", "message_id": "m", "status": "maybe"})
    with pytest.raises(ValueError, match="needs from and body"):
        generic_webhooks.reports_from({"type": "inbound", "body": "STOP"})


@pytest.fixture
def webhook_server(migrated_settings: Settings) -> Any:
    migrated_settings.delivery.sms = SmsSettings(
        twilio=TwilioSettings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN),
        webhook_base_url="https://sms.clarion.example",
        help_reply="Clarion test: reply STOP to opt out.",
        http=GenericHttpSettings(webhook_secret="gw-webhook-secret"),
    )
    running = RunningServer(migrated_settings).start()
    try:
        yield running
    finally:
        running.stop()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def post_twilio(server: RunningServer, path: str, params: dict[str, str], token: str = AUTH_TOKEN) -> tuple[int, str]:
    public_url = "https://sms.clarion.example" + path  # the URL Twilio called, in front of the proxy
    signature = twilio_webhooks.twilio_signature(token, public_url, list(params.items()))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return post(server.url + path, urlencode(params).encode(), headers)


def test_twilio_webhooks_verify_and_opt_out(webhook_server: RunningServer) -> None:
    client = webhook_server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "sms"})["ApplicationResponse"]["Id"]
    client.update_endpoint(
        ApplicationId=app_id, EndpointId="phone", EndpointRequest={"ChannelType": "SMS", "Address": OK}
    )
    inbound = {"MessageSid": "SMin1", "AccountSid": ACCOUNT_SID, "From": OK, "To": CLARION_NUMBER, "Body": "Stop "}

    assert post_twilio(webhook_server, "/webhooks/sms/twilio/inbound", inbound, token="wrong")[0] == 403
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="phone")["EndpointResponse"]["OptOut"] == "NONE"

    status, twiml = post_twilio(webhook_server, "/webhooks/sms/twilio/inbound", inbound)
    assert status == 200 and ElementTree.fromstring(twiml).tag == "Response" and len(ElementTree.fromstring(twiml)) == 0
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="phone")["EndpointResponse"]["OptOut"] == "ALL"

    post_twilio(webhook_server, "/webhooks/sms/twilio/inbound", inbound | {"MessageSid": "SMin2", "Body": "START"})
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="phone")["EndpointResponse"]["OptOut"] == "NONE"
    post_twilio(webhook_server, "/webhooks/sms/twilio/inbound", inbound | {"MessageSid": "SMin3"})  # STOP again
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="phone")["EndpointResponse"]["OptOut"] == "ALL"

    status, twiml = post_twilio(webhook_server, "/webhooks/sms/twilio/inbound", inbound | {"Body": "help"})
    assert status == 200 and ElementTree.fromstring(twiml).findtext("Message") == "Clarion test: reply STOP to opt out."

    callback = {"MessageSid": "SMunknown", "MessageStatus": "delivered", "To": OK, "From": CLARION_NUMBER}
    assert post_twilio(webhook_server, "/webhooks/sms/twilio/status?message_id=m-1", callback)[0] == 204
    # A signature made for other parameters does not carry over to a changed callback.
    signature = twilio_webhooks.twilio_signature(
        AUTH_TOKEN, "https://sms.clarion.example/webhooks/sms/twilio/status", []
    )
    forged = post(
        webhook_server.url + "/webhooks/sms/twilio/status",
        urlencode(callback | {"MessageStatus": "failed"}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert forged[0] == 403 and "does not verify" in forged[1]


def test_generic_webhook_route(webhook_server: RunningServer) -> None:
    client = webhook_server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "sms"})["ApplicationResponse"]["Id"]
    client.update_endpoint(ApplicationId=app_id, EndpointId="p", EndpointRequest={"ChannelType": "SMS", "Address": OK})
    body = json.dumps([{"type": "inbound", "from": OK, "to": CLARION_NUMBER, "body": "QUIT"}]).encode()
    url = webhook_server.url + generic_webhooks.PATH

    def signed(secret: str, payload: bytes) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Clarion-Signature": clarion_sign(secret, int(time.time()), payload),
        }

    assert post(url, body, signed("not-the-secret", body))[0] == 403
    assert post(url, b"{", signed("gw-webhook-secret", b"{"))[0] == 400
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="p")["EndpointResponse"]["OptOut"] == "NONE"
    assert post(url, body, signed("gw-webhook-secret", body))[0] == 204
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="p")["EndpointResponse"]["OptOut"] == "ALL"


def test_send_messages_through_the_generic_gateway_and_its_receipt(settings: Settings) -> None:
    """SendMessages → the SMS transport → a gateway; the gateway's signed receipt → `_SMS.SUCCESS` for the message."""
    # A gateway on its own thread (the Clarion server's loop must not wait on the test's): accepts every message.
    gateway = WebRecorder(lambda body: (202, {"messages": [{"id": "gw-1"}]}))
    settings.delivery.sms = SmsSettings(
        provider="http",
        http=GenericHttpSettings(
            url=gateway.url + "/send",
            body={"to": "{to}", "from": "{from}", "text": "{body}"},
            message_id_path="messages.0.id",
            webhook_secret="gw-webhook-secret",
        ),
    )
    settings.outbound = OutboundSettings(allow_networks=["127.0.0.0/8"])  # where the gateway listens
    server = RunningServer(settings).start()
    try:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "sms"})["ApplicationResponse"]["Id"]
        client.update_sms_channel(ApplicationId=app_id, SMSChannelRequest={"Enabled": True, "SenderId": "SHOP"})
        request = {
            "Addresses": {OK: {"ChannelType": "SMS"}, "+1206": {"ChannelType": "SMS"}},
            "MessageConfiguration": {"SMSMessage": {"Body": "Your order shipped", "MessageType": "TRANSACTIONAL"}},
        }
        result = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]["Result"]
        assert result[OK]["DeliveryStatus"] == "SUCCESSFUL" and result[OK]["StatusCode"] == 202
        assert result["+1206"]["DeliveryStatus"] == "PERMANENT_FAILURE"
        assert "E.164" in result["+1206"]["StatusMessage"]
        assert [body for _, _, body in gateway.requests] == [{"to": OK, "from": "SHOP", "text": "Your order shipped"}]

        receipt = json.dumps({"type": "status", "provider_message_id": "gw-1", "status": "DELIVERED"}).encode()
        signature = clarion_sign("gw-webhook-secret", int(time.time()), receipt)
        headers = {"Content-Type": "application/json", "X-Clarion-Signature": signature}
        assert post(server.url + generic_webhooks.PATH, receipt, headers)[0] == 204

        def recorded(tx: Any) -> list[str]:
            sql = "SELECT event_type FROM events WHERE app_id = ? ORDER BY seq"
            return [row[0] for row in tx.fetchall(sql, (app_id,))]

        types = server.run(lambda services: services.db.read(recorded))
        # The send's own events (accepted; refused before any provider call), then the gateway's receipt.
        assert types == ["_SMS.BUFFERED", "_SMS.FAILURE", "_SMS.SUCCESS"]
    finally:
        server.stop()
        gateway.close()
