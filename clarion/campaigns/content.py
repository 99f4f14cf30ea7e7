"""What a campaign treatment sends, as the send path takes it: its message, its templates, its in-app document.

Campaign messages use flatter shapes than direct sends (`EmailMessage {Title, Body, HtmlBody}` rather than
`SimpleEmail`, one `Message` shape for every push service); `direct_configuration` maps one onto the other so that
campaigns, journeys and direct sends share a single renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from clarion.campaigns.definition import CampaignDefinition, TreatmentMessage
from clarion.messages.delivery import load_templates
from clarion.store import templates as template_store
from clarion.store.database import Transaction
from clarion.versions import parse_version

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


def treatment_templates(tx: Transaction, message: TreatmentMessage) -> dict[str, dict[str, Any]]:
    """The templates a treatment names, by family; an in-app template's body under INAPP."""
    config = message.template_configuration
    in_app = config.get("InAppTemplate")
    found = load_templates(tx, {k: v for k, v in config.items() if k != "InAppTemplate"})
    if in_app:
        row = (
            template_store.get_version(tx, in_app["Name"], "INAPP", parse_version(in_app["Version"]))
            if in_app.get("Version")
            else template_store.get(tx, in_app["Name"], "INAPP")
        )
        if row is not None:
            found["INAPP"] = msgspec.json.decode(row.body)
    return found


def in_app_document(
    definition: CampaignDefinition,
    campaign_id: str,
    treatment_id: str,
    message: TreatmentMessage,
    templates: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The InAppMessageCampaign an in-app campaign leaves for each endpoint (GetInAppMessages serves it): the
    treatment's InAppMessage, else the parts of its in-app template."""
    schedule, limits = definition.schedule, definition.limits
    template = templates.get("INAPP", {})
    in_app = message.in_app_message or {
        member: template[member] for member in ("Content", "CustomConfig", "Layout") if member in template
    }
    return {
        "CampaignId": campaign_id,
        "TreatmentId": treatment_id,
        "Priority": definition.priority,
        "DailyCap": limits.daily,
        "SessionCap": limits.session,
        "TotalCap": limits.total,
        "InAppMessage": in_app,
        "Schedule": {
            key: value
            for key, value in (
                ("EndDate", schedule.end_time),
                ("EventFilter", schedule.event_filter),
                ("QuietTime", msgspec.to_builtins(schedule.quiet_time) if schedule.quiet_time else None),
            )
            if value
        },
    }
