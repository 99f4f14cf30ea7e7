"""What a message template must satisfy before it is stored (API Reference, "Templates").

msgspec has already checked types and enums against the model; these are the rules the model cannot express:
the name, the size quotas, DefaultSubstitutions being a JSON object, and every Handlebars part compiling. Errors
name the member as a client wrote it (`APNS.Body`, `HtmlPart`) and, for syntax errors, the line and column.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from clarion.errors import BadRequest
from clarion.templates.handlebars import TemplateSyntaxError, compile_template

TYPES = ("EMAIL", "SMS", "PUSH", "VOICE", "INAPP")
MAX_VERSIONS = 5_000
MAX_EMAIL = 600_000  # Subject + HtmlPart + TextPart
MAX_SMS = 1_600
MAX_VOICE = 10_000
MAX_PUSH = 4_000  # per platform: the total of its text members
MAX_ADM = 6_000
MAX_IN_APP = 200_000  # the whole body as JSON
MAX_HEADERS = 15
MAX_IN_APP_CONTENT = 5

# Request members each type stores per version (everything but `tags`).
BODY_MEMBERS: dict[str, tuple[str, ...]] = {
    "EMAIL": (
        "Subject",
        "HtmlPart",
        "TextPart",
        "Headers",
        "DefaultSubstitutions",
        "RecommenderId",
        "TemplateDescription",
        "ClarionTracking",  # a Clarion extension member (clarion/api/extended.py)
    ),
    "SMS": ("Body", "DefaultSubstitutions", "RecommenderId", "TemplateDescription"),
    "PUSH": (
        "Default",
        "APNS",
        "GCM",
        "ADM",
        "Baidu",
        "DefaultSubstitutions",
        "RecommenderId",
        "TemplateDescription",
    ),
    "VOICE": ("Body", "LanguageCode", "VoiceId", "DefaultSubstitutions", "TemplateDescription"),
    "INAPP": ("Content", "CustomConfig", "Layout", "TemplateDescription"),
}
PUSH_PLATFORMS = ("Default", "APNS", "GCM", "ADM", "Baidu")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadRequest(
            f"Template name {name[:140]!r} must be 1 to 128 characters of A-Z, a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def check_type(raw: str) -> str:
    """A template type as a path or query gives it, in either case: EMAIL, SMS, PUSH, VOICE or INAPP."""
    folded = raw.upper()
    if folded not in TYPES:
        raise BadRequest(f"Template type {raw!r} is not one of {', '.join(TYPES)}")
    return folded


def validate_body(template_type: str, body: dict[str, Any]) -> None:
    """Check one version's members (as `BODY_MEMBERS` selects them) for `template_type`."""
    if "DefaultSubstitutions" in body:
        _default_substitutions(body["DefaultSubstitutions"])
    if template_type == "EMAIL":
        headers = body.get("Headers") or []
        if len(headers) > MAX_HEADERS:
            raise BadRequest(f"Headers: an email template can have at most {MAX_HEADERS} headers, not {len(headers)}")
        parts = {member: body[member] for member in ("Subject", "HtmlPart", "TextPart") if member in body}
        _size("Subject, HtmlPart and TextPart together", sum(map(len, parts.values())), MAX_EMAIL)
        _compile(parts)
    elif template_type in ("SMS", "VOICE"):
        if "Body" in body:
            _size("Body", len(body["Body"]), MAX_SMS if template_type == "SMS" else MAX_VOICE)
            _compile({"Body": body["Body"]})
    elif template_type == "PUSH":
        for platform in PUSH_PLATFORMS:
            members = body.get(platform) or {}
            parts = {f"{platform}.{key}": value for key, value in members.items() if key != "Action"}
            limit = MAX_ADM if platform == "ADM" else MAX_PUSH
            _size(f"The {platform} message's parts together", sum(map(len, parts.values())), limit)
            _compile(parts)
    elif template_type == "INAPP":
        content = body.get("Content") or []
        if len(content) > MAX_IN_APP_CONTENT:
            raise BadRequest(
                f"Content: an in-app template can have at most {MAX_IN_APP_CONTENT} items, not {len(content)}"
            )
        _size("The in-app template", len(msgspec.json.encode(body).decode()), MAX_IN_APP)


def _default_substitutions(raw: str) -> None:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise BadRequest(f"DefaultSubstitutions is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise BadRequest("DefaultSubstitutions must be a JSON object (a string holding {...})")


def _size(what: str, length: int, limit: int) -> None:
    if length > limit:
        raise BadRequest(f"{what} must be at most {limit:,} characters, not {length:,}")


def _compile(parts: dict[str, str]) -> None:
    for member, source in parts.items():
        try:
            compile_template(source)
        except TemplateSyntaxError as error:
            raise BadRequest(f"{member} is not a valid template: {error}") from None
