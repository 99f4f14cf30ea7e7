"""The page a recipient sees behind an email's unsubscribe link: in the project's brand and the recipient's language.

A project sets its page with the Clarion extension member `ClarionUnsubscribePage` of UpdateApplicationSettings:
`BrandName`, `LogoUrl` (http or https) and `Language`. Without a Language, the page speaks the first language the
browser asks for (Accept-Language) that it knows, else English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

import msgspec

from clarion.errors import BadRequest
from clarion.store import apps as app_store
from clarion.store import messages as message_store
from clarion.store.database import Database, Transaction

MEMBER = "ClarionUnsubscribePage"  # the settings member (clarion/api/extended.py)
MAX_BRAND = 100
MAX_LOGO_URL = 2048


@dataclass(frozen=True, slots=True)
class Texts:
    title: str
    question: str  # the confirmation's question; {brand} is the brand name
    question_unbranded: str
    button: str
    done_title: str
    done: str
    done_unbranded: str


TEXTS: dict[str, Texts] = {
    "en": Texts(
        "Unsubscribe",
        "Stop receiving emails from {brand}?",
        "Stop receiving these emails?",
        "Unsubscribe",
        "Unsubscribed",
        "You will no longer receive emails from {brand}.",
        "You will not receive these emails any more.",
    ),
    "ko": Texts(
        "수신 거부",
        "{brand}의 이메일 수신을 중단하시겠습니까?",
        "이 이메일의 수신을 중단하시겠습니까?",
        "수신 거부",
        "수신 거부되었습니다",
        "이제 {brand}의 이메일을 받지 않습니다.",
        "이제 이 이메일을 받지 않습니다.",
    ),
    "ja": Texts(
        "配信停止",
        "{brand}からのメール配信を停止しますか？",
        "これらのメールの配信を停止しますか？",
        "配信停止",
        "配信を停止しました",
        "今後、{brand}からのメールは届きません。",
        "今後、これらのメールは届きません。",
    ),
    "es": Texts(
        "Cancelar la suscripción",
        "¿Dejar de recibir correos de {brand}?",
        "¿Dejar de recibir estos correos?",
        "Cancelar la suscripción",
        "Suscripción cancelada",
        "Ya no recibirás correos de {brand}.",
        "Ya no recibirás estos correos.",
    ),
    "fr": Texts(
        "Se désabonner",
        "Ne plus recevoir les e-mails de {brand} ?",
        "Ne plus recevoir ces e-mails ?",
        "Se désabonner",
        "Désabonnement confirmé",
        "Vous ne recevrez plus d'e-mails de {brand}.",
        "Vous ne recevrez plus ces e-mails.",
    ),
    "de": Texts(
        "Abmelden",
        "Keine E-Mails mehr von {brand} erhalten?",
        "Diese E-Mails nicht mehr erhalten?",
        "Abmelden",
        "Abgemeldet",
        "Sie erhalten keine E-Mails mehr von {brand}.",
        "Sie erhalten diese E-Mails nicht mehr.",
    ),
}
LANGUAGES = tuple(TEXTS)


@dataclass(frozen=True, slots=True)
class PageStyle:
    brand: str = ""
    logo_url: str = ""
    language: str = ""  # "" chooses by Accept-Language

    @classmethod
    def of(cls, project_settings: Mapping[str, Any]) -> PageStyle:
        page = project_settings.get(MEMBER) or {}
        return cls(page.get("BrandName") or "", page.get("LogoUrl") or "", page.get("Language") or "")


async def style_of_message(db: Database, message_id: str) -> PageStyle:
    """The page of the project that sent the message (the default page once the message or project is gone)."""

    def read(tx: Transaction) -> PageStyle:
        message = message_store.get(tx, message_id)
        if message is None:
            return PageStyle()
        project = app_store.get(tx, message.app_id)
        return PageStyle() if project is None else PageStyle.of(msgspec.json.decode(project.settings))

    return await db.read(read)


def check_page_settings(page: Mapping[str, Any] | None) -> None:
    """UpdateApplicationSettings' ClarionUnsubscribePage, checked before it is stored."""
    if not page:
        return
    where = f"{MEMBER}."
    brand, logo, language = page.get("BrandName"), page.get("LogoUrl"), page.get("Language")
    if brand is not None and len(brand) > MAX_BRAND:
        raise BadRequest(f"{where}BrandName is longer than {MAX_BRAND} characters")
    if logo and (len(logo) > MAX_LOGO_URL or not logo.lower().startswith(("https://", "http://"))):
        raise BadRequest(f"{where}LogoUrl must be an http(s) URL of at most {MAX_LOGO_URL} characters")
    if language and language not in TEXTS:
        raise BadRequest(f"{where}Language {language!r} is not one of {', '.join(LANGUAGES)}")


def choose_language(style: PageStyle, accept_language: str) -> str:
    """The project's language, else the browser's most wanted one that the page knows, else English."""
    if style.language in TEXTS:
        return style.language
    ranked = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower().split("-")[0]))
    for _, _, language in sorted(ranked):
        if language in TEXTS:
            return language
    return "en"


def page(style: PageStyle, language: str, done: bool, action: str = "") -> tuple[str, str]:
    """(title, HTML body) of the confirmation (with a form posting to `action`) or of the page after it."""
    texts = TEXTS[language]
    brand = escape(style.brand)
    logo = ""
    if style.logo_url:
        logo = f'<p><img src="{escape(style.logo_url, quote=True)}" alt="{brand}" style="max-height:4em"></p>'
    if done:
        message = texts.done.format(brand=brand) if brand else escape(texts.done_unbranded)
        return texts.done_title, f"{logo}<p>{message}</p>"
    question = texts.question.format(brand=brand) if brand else escape(texts.question_unbranded)
    form = (
        f'<form method="post" action="{escape(action, quote=True)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{escape(texts.button)}</button></form>'
    )
    return texts.title, f"{logo}<p>{question}</p>{form}"
