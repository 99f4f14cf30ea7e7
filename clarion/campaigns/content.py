"""A campaign's MessageConfiguration in the form the send pipeline renders (a DirectMessageConfiguration).

Campaign messages use flatter shapes than direct sends (`EmailMessage {Title, Body, HtmlBody}` rather than
`SimpleEmail`, one `Message` shape for every push service); this maps one onto the other so that campaigns,
journeys and direct sends share a single renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PUSH_MEMBERS = ("GCMMessage", "APNSMessage", "ADMMessage", "BaiduMessage")
RENAMED = {"ImageSmallIconUrl": "SmallImageIconUrl"}


def _push(message: Mapping[str, Any]) -> dict[str, Any]:
    return {RENAMED.get(member, member): value for member, value in message.items()}


def direct_configuration(config: Mapping[str, Any]) -> dict[str, Any]:
    direct: dict[str, Any] = {}
    default = config.get("DefaultMessage")
    if default:
        direct["DefaultPushNotificationMessage"] = _push(default)
        if default.get("Body"):
            direct["DefaultMessage"] = {"Body": default["Body"]}
    for member in PUSH_MEMBERS:
        if config.get(member):
            direct[member] = _push(config[member])
    email = config.get("EmailMessage")
    if email:
        simple: dict[str, Any] = {}
        for part, member in (("Subject", "Title"), ("HtmlPart", "HtmlBody"), ("TextPart", "Body")):
            if email.get(member):
                simple[part] = {"Data": email[member]}
        if email.get("Headers"):
            simple["Headers"] = email["Headers"]
        direct["EmailMessage"] = {
            "SimpleEmail": simple,
            **({"FromAddress": email["FromAddress"]} if email.get("FromAddress") else {}),
        }
    if config.get("SMSMessage"):
        direct["SMSMessage"] = dict(config["SMSMessage"])
    if config.get("CustomMessage"):
        direct["CustomMessage"] = dict(config["CustomMessage"])
    return direct
