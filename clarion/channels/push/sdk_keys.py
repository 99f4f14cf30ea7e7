"""Where Pinpoint's mobile SDKs (Amplify, the AWS Mobile SDKs) look for the campaign or journey a push came from.

They record a notification's receipt and open against it, and Amplify Android treats a push as Pinpoint's only
when it finds one: FCM data carries `pinpoint.campaign.campaign_id`, `pinpoint.campaign.treatment_id` and
`pinpoint.campaign.campaign_activity_id` as flat keys, or `pinpoint.journey` as a JSON object in a string (FCM data
values are strings); an APNs payload nests the same under `data.pinpoint.campaign` and `data.pinpoint.journey`.
They come from the message's Context, which a campaign's or journey's send fills.
"""

from __future__ import annotations

from collections.abc import Mapping

# A campaign message's Context names (clarion/campaigns/delivery.py) as the SDKs spell them.
_CAMPAIGN = (("CampaignId", "campaign_id"), ("TreatmentId", "treatment_id"), ("ActivityId", "campaign_activity_id"))
# A journey message's Context already spells them so (clarion/journeys/steps.py).
_JOURNEY = ("journey_id", "journey_run_id", "journey_activity_id")


def attribution(context: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`{"campaign": {...}}` or `{"journey": {...}}` for a campaign's or journey's message; empty for a direct send."""
    found: dict[str, dict[str, str]] = {}
    campaign = {name: str(context[key]) for key, name in _CAMPAIGN if context.get(key) not in (None, "")}
    if "campaign_id" in campaign:
        found["campaign"] = campaign
    journey = {name: str(context[name]) for name in _JOURNEY if context.get(name) not in (None, "")}
    if "journey_id" in journey:
        found["journey"] = journey
    return found
