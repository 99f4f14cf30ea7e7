"""Turn a DirectMessageConfiguration (and its template) into one recipient's rendered content (API Reference,
"Messages").

Layering, most specific last: DefaultMessage < template < DefaultPushNotificationMessage < the channel's own
message < the recipient's overrides (TitleOverride, BodyOverride, RawContent). Substitutions merge the same way,
the recipient's winning; template DefaultSubstitutions only fill what is still missing (API Reference,
"Templates"). An email's RawEmail is the exception: a whole MIME message, sent as given
(clarion/channels/email/raw.py).

Templates are tenants' programs: all the parts of one message render on one budget (clarion/templates/budget.py),
and a message whose rendering fails or runs out of budget fails alone (`RenderFailed`, a permanent failure of that
recipient). Rendering runs on the event loop, so renders also take turns with the rest of the process (`_LoopShare`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from clarion.channels.delivery import (
    Content,
    CustomContent,
    EmailContent,
    PushContent,
    RawEmailContent,
    SmsContent,
    VoiceContent,
)
from clarion.channels.email.raw import InvalidRawEmail, check_raw_email, from_header
from clarion.errors import BadRequest
from clarion.logs import get_logger
from clarion.messages.tracking import TrackingChoice
from clarion.templates.email_html import sending_html
from clarion.templates.handlebars import (
    BudgetExceeded,
    RenderError,
    TemplateSyntaxError,
    apply_defaults,
    compile_template,
    is_compiled,
    new_state,
)

EMAIL, SMS, VOICE, PUSH, CUSTOM, IN_APP = "EMAIL", "SMS", "VOICE", "PUSH", "CUSTOM", "IN_APP"
PUSH_CHANNELS = {
    "GCM": ("GCMMessage", "GCM"),
    "APNS": ("APNSMessage", "APNS"),
    "APNS_SANDBOX": ("APNSMessage", "APNS"),
    "APNS_VOIP": ("APNSMessage", "APNS"),
    "APNS_VOIP_SANDBOX": ("APNSMessage", "APNS"),
    "ADM": ("ADMMessage", "ADM"),
    "BAIDU": ("BaiduMessage", "Baidu"),
}  # channel type -> (its DirectMessageConfiguration member, its PushTemplate member)
MESSAGE_MEMBER = {EMAIL: "EmailMessage", SMS: "SMSMessage", VOICE: "VoiceMessage"}
TEMPLATE_MEMBER = {EMAIL: "EmailTemplate", SMS: "SMSTemplate", VOICE: "VoiceTemplate", PUSH: "PushTemplate"}
MAX_EMAIL_HEADERS = 15
UNSUBSCRIBE_VARIABLE = "UnsubscribeUrl"  # an email's template variable for its one-click unsubscribe page
Render = Callable[[str | None], str | None]  # one recipient's renderer
# Rendering the event loop does back to back before other work gets a turn (a batch of heavy messages, for instance).
SLICE_SECONDS = 0.01

log = get_logger("clarion.messages")


class Undeliverable(Exception):
    """This recipient's message cannot be built (no subject, no sender); it fails alone, not the request."""


class RenderFailed(Undeliverable):
    """The recipient's message did not render: a template error or a spent budget (the message says which)."""


class _LoopShare:
    """Renders run on the event loop between awaits. Once they have used `SLICE_SECONDS` in one turn of the loop,
    the next render waits for the next turn, so the loop polls sockets in between and other requests are served
    while a large send or campaign batch renders (each message is itself bounded by its budget)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.spent = 0.0
        self.reset_pending = False

    def _reset(self) -> None:
        self.spent = 0.0
        self.reset_pending = False

    async def turn(self) -> None:
        while self.spent >= SLICE_SECONDS:
            await asyncio.sleep(0)

    def add(self, seconds: float) -> None:
        self.spent += seconds
        if self.spent >= SLICE_SECONDS and not self.reset_pending:
            self.reset_pending = True
            self.loop.call_soon(self._reset)  # runs in the next turn, before the renders that waited for it


_SHARES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopShare] = weakref.WeakKeyDictionary()


def _loop_share() -> _LoopShare:
    loop = asyncio.get_running_loop()
    share = _SHARES.get(loop)
    if share is None:
        share = _SHARES[loop] = _LoopShare(loop)
    return share


def family(channel_type: str) -> str:
    if channel_type in PUSH_CHANNELS:
        return PUSH
    return channel_type


@dataclass(frozen=True, slots=True)
class Recipient:
    """What rendering needs of one recipient: its variables and its own overrides."""

    channel_type: str
    variables: dict[str, Any]  # the endpoint's message variables ({{Attributes.x}}, {{User.UserId}}, ...)
    overrides: Mapping[str, Any]  # AddressConfiguration / EndpointSendConfiguration


def check_configuration(config: Mapping[str, Any]) -> None:
    """Compile every inline text once up front: a syntax error fails the request, naming where it is.

    Stored templates were checked when written; compiled sources are cached by text, so this costs nothing
    per recipient. Senders run it beside the event loop: compiling a large inline part would stall every other
    request for as long.
    """
    email = config.get("EmailMessage") or {}
    if "RawEmail" in email:
        try:
            check_raw_email(_raw_email(email))
        except InvalidRawEmail as error:
            raise BadRequest(f"MessageConfiguration.EmailMessage.RawEmail.Data cannot be sent: {error}") from None
    headers = (email.get("SimpleEmail") or {}).get("Headers") or []
    if len(headers) > MAX_EMAIL_HEADERS:
        raise BadRequest(f"SimpleEmail.Headers holds {len(headers)} headers; an email has at most {MAX_EMAIL_HEADERS}")
    check_texts(config, "MessageConfiguration")


async def check_configuration_off_loop(config: Mapping[str, Any]) -> None:
    """check_configuration, beside the event loop when it has work there: a raw email to read or a text not compiled
    yet. A plain or already compiled message (a one-time code, a repeated notice) is checked in place, sparing every
    such request the hop to a thread and back."""
    email = config.get("EmailMessage") or {}
    if "RawEmail" in email or any(not is_compiled(text) for _, text in _texts(config, "MessageConfiguration")):
        await asyncio.to_thread(check_configuration, config)
    else:
        check_configuration(config)


def check_texts(node: Any, where: str) -> None:
    """Compile every text in a message configuration that holds template syntax, naming the first that fails
    (a BadRequest). Compiling a large part takes a while: call it beside the event loop (asyncio.to_thread)."""
    for path, text in _texts(node, where):
        try:
            compile_template(text)
        except TemplateSyntaxError as error:
            raise BadRequest(f"{path}: {error}") from None


class MessageBuilder:
    """One request's message configuration and templates, rendering content per recipient."""

    def __init__(self, config: Mapping[str, Any], templates: Mapping[str, Mapping[str, Any]]) -> None:
        self.config = config
        self.templates = templates  # template family (EMAIL, SMS, PUSH, VOICE) -> the version's stored body
        email = config.get("EmailMessage") or {}
        self.raw_email = _raw_email(email) if "RawEmail" in email else None  # decoded once for every recipient
        # What an email may carry for tracking: the send's ClarionTracking over its template's.
        self.email_tracking = TrackingChoice.of(
            email.get("ClarionTracking"), (templates.get(EMAIL) or {}).get("ClarionTracking")
        )
        # By channel type: the content every recipient without overrides gets, where the message and its template
        # hold no template syntax at all (a campaign's "Hello" to a million endpoints is rendered once, not a
        # million times); None where it depends on the recipient.
        self._same: dict[str, Content | None] = {}

    def recommender_for(self, channel_type: str) -> str | None:
        """The RecommenderId of the template this channel's messages render, if it names one."""
        kind = family(channel_type)
        if kind == EMAIL and self.raw_email is not None:
            return None
        return (self.templates.get(kind) or {}).get("RecommenderId") or None

    async def content(self, recipient: Recipient, from_address: str | None, unsubscribe_url: str | None) -> Content:
        """The recipient's message; raises Undeliverable (RenderFailed when a template fails) for this one only."""
        channel_type = recipient.channel_type
        same = self._same.get(channel_type) if not recipient.overrides else None
        if same is not None:
            return same
        share = _loop_share()
        await share.turn()
        started = perf_counter()
        try:
            content = self._content(recipient, from_address, unsubscribe_url)
        finally:
            share.add(perf_counter() - started)
        if not recipient.overrides and channel_type not in self._same:
            self._same[channel_type] = content if self._same_for_everyone(channel_type) else None
        return content

    def _same_for_everyone(self, channel_type: str) -> bool:
        """Whether this channel's content cannot depend on the recipient: push, SMS or voice (an email carries its
        recipient's unsubscribe link, a custom message the endpoint) with no `{{` anywhere in what it renders."""
        if family(channel_type) not in (PUSH, SMS, VOICE):
            return False
        layers = self._layers(channel_type, self.templates.get(family(channel_type)) or {})
        return not any(_texts(layer, "") for layer in layers)

    def _content(self, recipient: Recipient, from_address: str | None, unsubscribe_url: str | None) -> Content:
        kind = family(recipient.channel_type)
        if kind == EMAIL and self.raw_email is not None:
            return self._raw(self.raw_email, from_address, unsubscribe_url)
        template = self.templates.get(kind) or {}
        layers = self._layers(recipient.channel_type, template)
        variables = _with_substitutions(recipient.variables, layers, recipient.overrides)
        if kind == EMAIL and unsubscribe_url:  # {{UnsubscribeUrl}}: the recipient's own unsubscribe page
            variables = {**variables, UNSUBSCRIBE_VARIABLE: unsubscribe_url}
        context = apply_defaults(variables, template.get("DefaultSubstitutions"))
        state = new_state()  # one budget for all the parts of this message

        def render(text: str | None) -> str | None:
            if text is None:
                return None
            try:
                return compile_template(text).render(context, state)
            except (TemplateSyntaxError, RenderError) as error:
                raise _render_failed(error) from None

        overrides = recipient.overrides
        if kind == EMAIL:
            return self._email(layers, template, overrides, render, from_address, unsubscribe_url)
        body = overrides.get("BodyOverride") or _first(layers, "Body")
        if kind == SMS:
            sms = self.config.get("SMSMessage") or {}
            if not body:
                raise Undeliverable("The SMS message has no Body")
            return SmsContent(
                body=render(body) or "",
                message_type=sms.get("MessageType") or "TRANSACTIONAL",
                origination_number=sms.get("OriginationNumber"),
                sender_id=sms.get("SenderId"),
                keyword=sms.get("Keyword"),
                entity_id=sms.get("EntityId"),
                template_id=sms.get("TemplateId"),
            )
        if kind == VOICE:
            voice = self.config.get("VoiceMessage") or {}
            if not body:
                raise Undeliverable("The voice message has no Body")
            return VoiceContent(
                body=render(body) or "",
                language_code=_first(layers, "LanguageCode") or "en-US",
                voice_id=_first(layers, "VoiceId"),
                origination_number=voice.get("OriginationNumber"),
            )
        if kind == PUSH:
            return _push(layers, overrides, render)
        if kind == CUSTOM:
            data = (self.config.get("CustomMessage") or {}).get("Data") or body
            endpoint = {k: v for k, v in recipient.variables.items() if k != "RequestId"}
            return CustomContent(data=render(data) or "", endpoint=endpoint)
        raise Undeliverable(f"Direct sends cannot reach {recipient.channel_type} endpoints")

    def _layers(self, channel_type: str, template: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The message members that apply, most specific first."""
        config = self.config
        kind = family(channel_type)
        layers: list[Mapping[str, Any]] = []
        if kind == PUSH:
            own, template_member = PUSH_CHANNELS[channel_type]
            layers += [config.get(own) or {}, config.get("DefaultPushNotificationMessage") or {}]
            layers += [template.get(template_member) or {}, template.get("Default") or {}]
        else:
            layers.append(config.get(MESSAGE_MEMBER.get(kind, "")) or {})
            layers.append(template)
        layers.append(config.get("DefaultMessage") or {})
        return layers

    def _raw(self, data: bytes, from_address: str | None, unsubscribe_url: str | None) -> RawEmailContent:
        """RawEmail is sent as given, without rendering: the sender built the whole message (its overrides and
        substitutions do not apply)."""
        sender = (self.config.get("EmailMessage") or {}).get("FromAddress") or from_address or from_header(data)
        if not sender:
            raise Undeliverable(
                "No FromAddress: set EmailMessage.FromAddress, the email channel's FromAddress or a From header"
            )
        header_url = unsubscribe_url if self.email_tracking.list_unsubscribe else None
        return RawEmailContent(data=data, from_address=sender, unsubscribe_url=header_url)

    def _email(
        self,
        layers: list[Mapping[str, Any]],
        template: Mapping[str, Any],
        overrides: Mapping[str, Any],
        render: Render,
        from_address: str | None,
        unsubscribe_url: str | None,
    ) -> EmailContent:
        email = self.config.get("EmailMessage") or {}
        simple = email.get("SimpleEmail") or {}
        subject = overrides.get("TitleOverride") or _data(simple.get("Subject")) or template.get("Subject")
        html = _data(simple.get("HtmlPart")) or sending_html(template)
        text = _data(simple.get("TextPart")) or template.get("TextPart") or _first(layers, "Body")
        if overrides.get("BodyOverride"):
            if html:
                html = overrides["BodyOverride"]
            else:
                text = overrides["BodyOverride"]
        sender = email.get("FromAddress") or from_address
        if not sender:
            raise Undeliverable("No FromAddress: set EmailMessage.FromAddress or the email channel's FromAddress")
        if not subject:
            raise Undeliverable("The email has no subject (SimpleEmail.Subject, a template Subject or TitleOverride)")
        if not html and not text:
            raise Undeliverable("The email has no body (SimpleEmail.HtmlPart/TextPart, a template or Body)")
        headers = {
            h["Name"]: render(h["Value"]) or "" for h in [*(template.get("Headers") or []), *simple.get("Headers", [])]
        }
        charset = (simple.get("Subject") or {}).get("Charset") or "UTF-8"
        return EmailContent(
            from_address=sender,
            subject=render(subject) or "",
            html=render(html),
            text=render(text),
            reply_to=tuple(email.get("ReplyToAddresses") or ()),
            headers=headers,
            unsubscribe_url=unsubscribe_url if self.email_tracking.list_unsubscribe else None,
            charset=charset,
        )


def _raw_email(email: Mapping[str, Any]) -> bytes:
    """RawEmail.Data decoded: a blob arrives base64-encoded in JSON."""
    data = (email.get("RawEmail") or {}).get("Data")
    if not data:
        raise BadRequest("MessageConfiguration.EmailMessage.RawEmail.Data is required: the whole MIME message")
    if isinstance(data, bytes):
        return data
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("MessageConfiguration.EmailMessage.RawEmail.Data is not base64") from None


def _render_failed(error: TemplateSyntaxError | RenderError) -> RenderFailed:
    """Stored campaigns and templates written before a check existed can still hold what no longer compiles."""
    if isinstance(error, TemplateSyntaxError):
        reason, message = "syntax", f"The message's template does not compile: {error}"
    else:
        reason = error.budget if isinstance(error, BudgetExceeded) else "error"
        message = f"The message's template could not be rendered: {error}"
    log.warning("message not rendered", reason=reason, error=str(error))
    return RenderFailed(message)


def _data(part: Mapping[str, Any] | None) -> str | None:
    return (part or {}).get("Data") or None


def _first(layers: list[Mapping[str, Any]], member: str) -> Any:
    for layer in layers:
        value = layer.get(member)
        if value is not None and value != "":
            return value
    return None


def _push(layers: list[Mapping[str, Any]], overrides: Mapping[str, Any], render: Render) -> PushContent:
    def text(member: str) -> str | None:
        return render(_first(layers, member))

    data: dict[str, str] = {}
    for layer in reversed(layers):
        data.update({k: render(v) or "" for k, v in (layer.get("Data") or {}).items()})
    ttl = _first(layers, "TimeToLive") or _first(layers, "ExpiresAfter")
    raw = overrides.get("RawContent") or _first(layers, "RawContent")
    return PushContent(
        title=render(overrides.get("TitleOverride")) or text("Title"),
        body=render(overrides.get("BodyOverride")) or text("Body"),
        action=_first(layers, "Action"),
        url=text("Url"),
        image_url=text("ImageUrl"),
        image_icon_url=text("ImageIconUrl"),
        small_image_icon_url=text("SmallImageIconUrl"),
        icon_reference=_first(layers, "IconReference"),
        sound=_first(layers, "Sound"),
        silent_push=bool(_first(layers, "SilentPush")),
        data=data,
        raw_content=render(raw),
        priority=_first(layers, "Priority"),
        time_to_live=int(ttl) if ttl is not None else None,
        collapse_key=_first(layers, "CollapseKey")
        or _first(layers, "CollapseId")
        or _first(layers, "ConsolidationKey"),
        restricted_package_name=_first(layers, "RestrictedPackageName"),
        badge=_first(layers, "Badge"),
        category=_first(layers, "Category"),
        thread_id=_first(layers, "ThreadId"),
        media_url=text("MediaUrl"),
        apns_push_type=_first(layers, "APNSPushType"),
    )


def _with_substitutions(
    variables: dict[str, Any], layers: list[Mapping[str, Any]], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The recipient's variables with the Substitutions merged in; `Attributes.Plan` nests, `Plan` stays flat."""
    merged: dict[str, list[str]] = {}
    for layer in reversed(layers):
        merged.update(layer.get("Substitutions") or {})
    merged.update(overrides.get("Substitutions") or {})
    if not merged:
        return variables
    context = {k: (dict(v) if isinstance(v, dict) else v) for k, v in variables.items()}
    for key, values in merged.items():
        target = context
        *heads, last = key.split(".")
        for head in heads:
            nested = target.get(head)
            if not isinstance(nested, dict):
                nested = target[head] = {}
            else:
                nested = target[head] = dict(nested)
            target = nested
        target[last] = list(values)
    return context


def _texts(node: Any, where: str) -> list[tuple[str, str]]:
    """Every string inside a message configuration, with its path (what may hold template syntax)."""
    if isinstance(node, str):
        return [(where, node)] if "{{" in node else []
    if isinstance(node, Mapping):
        return [pair for key, value in node.items() for pair in _texts(value, f"{where}.{key}")]
    if isinstance(node, list):
        return [pair for i, value in enumerate(node) for pair in _texts(value, f"{where}[{i}]")]
    return []
