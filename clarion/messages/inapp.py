"""In-app messages: what campaigns leave for an endpoint, and GetInAppMessages serving it (API Reference, "In-App
Messages").

In-app campaigns decide who is eligible and store one InAppMessageCampaign document per endpoint with
`put_in_app_message`, in the transaction that commits the batch; deleting the campaign withdraws them in its own
transaction (`remove_in_app_campaign`). The client SDK fetches them and applies triggers, caps and quiet time
itself. Documents whose Schedule.EndDate has passed are not served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from clarion.clock import iso_millis
from clarion.endpoints.rules import check_endpoint_id
from clarion.endpoints.service import endpoint_key
from clarion.errors import BadRequest
from clarion.events.service import parse_timestamp
from clarion.projects.service import require_app
from clarion.store import messages as message_store
from clarion.store.database import Database, Transaction

MEMBERS = ("CampaignId", "TreatmentId", "Priority", "DailyCap", "SessionCap", "TotalCap", "InAppMessage", "Schedule")


def put_in_app_message(
    tx: Transaction, app_id: str, endpoint_ids: Sequence[str], message: Mapping[str, Any], now: datetime
) -> None:
    """Store (or replace) a campaign treatment's in-app message for these endpoints.

    `message` is an InAppMessageCampaign: {CampaignId, TreatmentId, Priority, DailyCap, SessionCap, TotalCap,
    InAppMessage {Layout, Content, CustomConfig}, Schedule {EndDate, EventFilter, QuietTime}}.
    """
    campaign_id = message.get("CampaignId")
    if not campaign_id:
        raise BadRequest("An in-app message needs its CampaignId")
    treatment_id = str(message.get("TreatmentId") or "0")
    doc = {member: message[member] for member in MEMBERS if message.get(member) is not None}
    doc["TreatmentId"] = treatment_id
    keys = sorted({endpoint_key(endpoint_id) for endpoint_id in endpoint_ids})
    encoded = msgspec.json.encode(doc).decode()
    require_app(tx, app_id)
    priority = int(message.get("Priority") or 0)
    message_store.put_in_app(tx, app_id, keys, campaign_id, treatment_id, priority, iso_millis(now), encoded)


def remove_in_app_campaign(tx: Transaction, app_id: str, campaign_id: str) -> int:
    """Withdraw a campaign's in-app messages from every endpoint (the campaign was deleted)."""
    return message_store.delete_in_app_campaign(tx, app_id, campaign_id)


def _current(doc: dict[str, Any], now: datetime) -> bool:
    end = (doc.get("Schedule") or {}).get("EndDate")
    if not end:
        return True
    try:
        return parse_timestamp(end, "Schedule.EndDate") > now
    except BadRequest:
        return True  # campaigns validate their schedule; an odd stored value is served rather than hidden


async def get_in_app_messages(db: Database, app_id: str, endpoint_id: str, now: datetime) -> dict[str, Any]:
    """GetInAppMessages: InAppMessagesResponse, most important (lowest Priority) first."""
    check_endpoint_id(endpoint_id, "EndpointId")

    def work(tx: Transaction) -> list[str]:
        require_app(tx, app_id)
        return message_store.in_app_for(tx, app_id, endpoint_key(endpoint_id))

    docs = [msgspec.json.decode(doc) for doc in await db.read(work)]
    return {"InAppMessageCampaigns": [doc for doc in docs if _current(doc, now)]}
