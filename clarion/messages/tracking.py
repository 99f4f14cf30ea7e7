"""Signed tracking links in sent email: an open pixel, click redirects and the one-click unsubscribe URL.

A link carries its own meaning (kind, message id and, for clicks, the target URL) signed with HMAC-SHA256 under
the operator's key, so serving it needs no lookup to decide where to go, and a link whose signature does not
match is refused: nobody can make Clarion redirect to a URL it did not write into a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape, unescape
from typing import Any

import msgspec

from clarion.channels.config import TrackingSettings

OPEN, CLICK, UNSUBSCRIBE = "o", "c", "u"
PATH_PREFIX = "/t"

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_NO_TRACK = re.compile(r"\bdata-clarion-no-track\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TrackingChoice:
    """What the sender lets Clarion add to one message (the Clarion extension member `ClarionTracking`, on a send's
    EmailMessage or an email template): each is on unless turned off, as transactional mail often needs."""

    opens: bool = True
    clicks: bool = True
    list_unsubscribe: bool = True

    @classmethod
    def of(cls, *choices: Mapping[str, Any] | None) -> TrackingChoice:
        """The choice from ClarionTracking members, the most specific first (a send's over its template's)."""

        def chosen(member: str) -> bool:
            return next((c[member] for c in choices if c and c.get(member) is not None), True)

        return cls(chosen("OpenTracking"), chosen("ClickTracking"), chosen("ListUnsubscribe"))


@dataclass(frozen=True, slots=True)
class Link:
    kind: str
    message_id: str
    url: str | None = None  # click target


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tracker:
    def __init__(self, settings: TrackingSettings) -> None:
        self.settings = settings
        self._key = settings.key.encode()
        self.base_url = settings.base_url.rstrip("/")

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self._key)

    def _signature(self, kind: str, payload: str) -> str:
        return _b64(hmac.new(self._key, f"{kind}.{payload}".encode(), hashlib.sha256).digest())

    def url(self, link: Link) -> str:
        body = {"m": link.message_id} if link.url is None else {"m": link.message_id, "u": link.url}
        payload = _b64(msgspec.json.encode(body))
        return f"{self.base_url}{PATH_PREFIX}/{link.kind}/{payload}.{self._signature(link.kind, payload)}"

    def verify(self, kind: str, token: str) -> Link | None:
        """The link a token stands for, or None when it is malformed or not signed with our key."""
        if not self.enabled:
            return None
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._signature(kind, payload)):
            return None
        try:
            body = msgspec.json.decode(_unb64(payload))
        except (ValueError, msgspec.DecodeError):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("m"), str):
            return None
        url = body.get("u")
        if kind == CLICK and not (isinstance(url, str) and url.lower().startswith(("http://", "https://"))):
            return None
        return Link(kind, body["m"], url if kind == CLICK else None)

    def unsubscribe_url(self, message_id: str) -> str | None:
        return self.url(Link(UNSUBSCRIBE, message_id)) if self.enabled else None

    def rewrite_html(self, html: str, message_id: str, choice: TrackingChoice = TrackingChoice()) -> str:
        """Send http(s) links through the click redirect and add the open pixel, as the settings and the message's
        own choice ask.

        Links marked `data-clarion-no-track`, Clarion's own links ({{UnsubscribeUrl}}) and other schemes (mailto:,
        tel:, #anchors) are left alone.
        """
        if not self.enabled:
            return html
        own = f"{self.base_url}{PATH_PREFIX}/"
        if self.settings.click_tracking and choice.clicks:

            def replace(match: re.Match[str]) -> str:
                head, quote, target = match.group(1), match.group(2), unescape(match.group(3)).strip()
                if _NO_TRACK.search(match.group(0)) or not target.lower().startswith(("http://", "https://")):
                    return match.group(0)
                if target.startswith(own):
                    return match.group(0)
                tracked = escape(self.url(Link(CLICK, message_id, target)), quote=True)
                return f"{head}{quote}{tracked}{quote}"

            html = _HREF.sub(replace, html)
        if self.settings.open_tracking and choice.opens:
            pixel = (
                f'<img src="{escape(self.url(Link(OPEN, message_id)))}" width="1" height="1" alt="" '
                'style="display:none;border:0" />'
            )
            parts = _BODY_END.split(html, maxsplit=1)
            html = f"{parts[0]}{pixel}</body>{parts[1]}" if len(parts) == 2 else html + pixel
        return html
