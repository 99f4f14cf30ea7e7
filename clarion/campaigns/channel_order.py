"""ClarionChannelOrder (a Clarion extension, docs/campaigns.md): one message per person, on the first channel of
the order they can receive.

A person is a user (every endpoint with the same User.UserId) or an endpoint without a user. Of a user's member
endpoints, only the first in key order speaks for the user, so a user whose endpoints fall in different batches is
still reached once; the message goes to the user's best sendable endpoint, member of the segment or not (the push
endpoint went quiet, the email address still works).
"""

from __future__ import annotations

from clarion.campaigns.definition import CampaignDefinition
from clarion.campaigns.members import SegmentMembers
from clarion.messages.delivery import why_not_sendable
from clarion.store import endpoints as endpoint_store
from clarion.store.database import Database
from clarion.store.endpoints import EndpointRow


async def people(
    db: Database, members: SegmentMembers, app_id: str, definition: CampaignDefinition, rows: dict[str, EndpointRow]
) -> dict[str, EndpointRow]:
    """The endpoints (by key) to send to for these member rows: at most one per person."""
    rank = {channel: position for position, channel in enumerate(definition.clarion_channel_order)}
    user_ids = sorted({row.user_id for row in rows.values() if row.user_id})
    by_user = await db.read(lambda tx: endpoint_store.of_users(tx, app_id, user_ids))
    held = await members.holds(
        app_id,
        definition.segment_id,
        definition.segment_version,
        [endpoint.id for endpoints in by_user.values() for endpoint in endpoints],
        sendable_only=False,
    )

    def reachable(endpoint: EndpointRow) -> bool:
        return endpoint.channel_type in rank and why_not_sendable(endpoint) is None

    chosen: dict[str, EndpointRow] = {}
    for key, row in rows.items():
        if not row.user_id:
            if reachable(row):
                chosen[key] = row
            continue
        own = by_user.get(row.user_id, [])
        speaker = min((e.endpoint_key for e in own if e.id in held), default=key)
        candidates = [e for e in own if reachable(e)]
        if speaker == key and candidates:
            best = min(candidates, key=lambda e: (rank[e.channel_type or ""], e.endpoint_key))
            chosen[best.endpoint_key] = best
    return chosen
