"""AWS End User Messaging SMS and voice (service pinpoint-sms-voice-v2): where Pinpoint's own SMS and voice
sending went after Pinpoint.

AWS JSON 1.0: a POST to `/` naming the operation in `X-Amz-Target` (`PinpointSMSVoiceV2.SendTextMessage` or
`SendVoiceMessage`), signed with SigV4 for the signing name `sms-voice`. Errors come back as
`{"__type": "...#ThrottlingException", "Message": ..., "Reason": ...}`. The request members used here are those of
botocore's model for the service; boto3 itself is not needed at run time.
"""

from __future__ import annotations

import json
from typing import Any

from clarion.aws.sigv4 import sign_request
from clarion.channels.config import AwsSmsVoiceSettings
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound, SmsContent, VoiceContent
from clarion.channels.sms.exchange import ProviderRequest, ProviderResponse, json_object, status_for_http
from clarion.clock import Clock

SIGNING_NAME = "sms-voice"
TARGET_PREFIX = "PinpointSMSVoiceV2"
CONTENT_TYPE = "application/x-amz-json-1.0"

# The service's modeled errors (both operations raise the same set).
ERROR_STATUSES = {
    "ThrottlingException": DeliveryStatus.THROTTLED,
    "ValidationException": DeliveryStatus.PERMANENT_FAILURE,
    "ResourceNotFoundException": DeliveryStatus.PERMANENT_FAILURE,  # no such origination identity or config set
    "ConflictException": DeliveryStatus.PERMANENT_FAILURE,
    "ServiceQuotaExceededException": DeliveryStatus.TEMPORARY_FAILURE,  # spend or rate quota: later may work
    "AccessDeniedException": DeliveryStatus.TEMPORARY_FAILURE,  # the account's problem, not the recipient's
    "InternalServerException": DeliveryStatus.TEMPORARY_FAILURE,
}
OPTED_OUT_REASON = "DESTINATION_PHONE_NUMBER_OPTED_OUT"


class AwsSmsVoiceProvider:
    def __init__(self, settings: AwsSmsVoiceSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.url = settings.endpoint_url or f"https://sms-voice.{settings.region}.amazonaws.com/"

    def request_for(self, message: Outbound, to: str, origination: str | None) -> ProviderRequest:
        content = message.content
        if isinstance(content, VoiceContent):
            operation, payload = "SendVoiceMessage", voice_payload(content, to, origination)
        else:
            assert isinstance(content, SmsContent)
            operation, payload = "SendTextMessage", text_payload(content, to, origination)
        if self.settings.configuration_set_name:
            payload["ConfigurationSetName"] = self.settings.configuration_set_name
        # Echoed in the service's delivery events, so they can be matched to Clarion's message log.
        payload["Context"] = {"ClarionMessageId": message.message_id, "ClarionApplicationId": message.app_id}
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = sign_request(
            "POST",
            self.url,
            {"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{TARGET_PREFIX}.{operation}"},
            body,
            access_key_id=self.settings.access_key_id,
            secret_access_key=self.settings.secret_access_key,
            session_token=self.settings.session_token,
            region=self.settings.region,
            service=SIGNING_NAME,
            now=self.clock.now(),
        )
        return ProviderRequest("POST", self.url, headers, body)

    def result_of(self, response: ProviderResponse) -> DeliveryResult:
        document = json_object(response.body)
        if 200 <= response.status < 300:
            message_id = document.get("MessageId")
            return DeliveryResult(DeliveryStatus.SUCCESSFUL, response.status, provider_message_id=message_id)
        code = error_code(document.get("__type") or response.headers.get("x-amzn-errortype", ""))
        reason = document.get("Reason") or ""
        status = ERROR_STATUSES.get(code) or status_for_http(response.status)
        if code == "ConflictException" and reason == OPTED_OUT_REASON:
            status = DeliveryStatus.OPT_OUT
        text = document.get("Message") or document.get("message") or f"HTTP {response.status}"
        message = f"{code or 'Error'}: {text}" + (f" ({reason})" if reason else "")
        return DeliveryResult(status, response.status, message)


def text_payload(content: SmsContent, to: str, origination: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"DestinationPhoneNumber": to, "MessageBody": content.body}
    if origination:
        payload["OriginationIdentity"] = origination
    if content.message_type:
        payload["MessageType"] = content.message_type
    if content.keyword:
        payload["Keyword"] = content.keyword
    # India's DLT registration ids (Pinpoint's SMSMessage.EntityId / TemplateId).
    country = {"IN_ENTITY_ID": content.entity_id, "IN_TEMPLATE_ID": content.template_id}
    if any(country.values()):
        payload["DestinationCountryParameters"] = {key: value for key, value in country.items() if value}
    return payload


def voice_payload(content: VoiceContent, to: str, origination: str | None) -> dict[str, Any]:
    ssml = content.body.lstrip().startswith("<speak")
    payload: dict[str, Any] = {
        "DestinationPhoneNumber": to,
        "OriginationIdentity": origination or "",
        "MessageBody": content.body,
        "MessageBodyTextType": "SSML" if ssml else "TEXT",
    }
    if content.voice_id:
        payload["VoiceId"] = content.voice_id.upper()  # Pinpoint says "Joanna", this API's enum says "JOANNA"
    return payload


def error_code(raw: str) -> str:
    """`com.amazonaws.pinpointsmsvoicev2#ThrottlingException` or `ThrottlingException:http://...` → the name."""
    return raw.rsplit("#", 1)[-1].split(":", 1)[0].strip()
