"""Finding people and what happened to them: the console's audience search and a person's timeline.

Pinpoint has no operation that lists a project's endpoints or a person's history; these are Clarion extensions
(ClarionListEndpoints, ClarionGetTimeline, clarion/api/extended.py). A search finds the endpoints whose id
(case-insensitive), address or user id starts with the text, through a range of each column's index, or takes
`name=value` for an endpoint or user attribute (compiled like a segment's Attributes/UserAttributes dimension,
exact). The timeline merges the person's events (their own and the outcomes Clarion records about messages) with
the message log, newest first, optionally only one kind, one event type or a time window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from clarion.clock import iso_millis
from clarion.errors import BadRequest, NotFound
from clarion.instants import to_ms
from clarion.paging import decode_text_token, encode_token
from clarion.projects.service import require_app
from clarion.segments import plan
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store import messages as message_store
from clarion.store import segment_sql
from clarion.store.database import Database, Transaction
from clarion.store.endpoints import EndpointRow

# A timeline token holds a time and how many entries at that very time were already answered; a client's token is
# untrusted, so that count is bounded (no real page boundary falls inside more entries at one millisecond).
MAX_SAME_INSTANT = 10_000


def _summary(row: EndpointRow) -> dict[str, Any]:
    found: dict[str, Any] = {
        "Id": row.id,
        "EndpointStatus": row.endpoint_status,
        "OptOut": row.opt_out,
        "CreationDate": row.created_at,
    }
    for name, value in (("ChannelType", row.channel_type), ("Address", row.address), ("UserId", row.user_id)):
        if value is not None:
            found[name] = value
    return found


def _attribute_plan(search: str) -> plan.Node | None:
    """`name=value`: the endpoint's or its user's attribute `name` holds `value`; None for any other search."""
    name, equals, value = search.partition("=")
    if not equals:
        return None
    name, value = name.strip(), value.strip()
    if not name or not value:
        raise BadRequest(f"An attribute search is name=value, not {search!r}")
    return plan.AnyOf(
        tuple(
            plan.AttributeCondition(source, name, plan.Operator.INCLUSIVE, (value,))
            for source in (plan.Source.ENDPOINT, plan.Source.USER)
        )
    )


async def find_endpoints(db: Database, app_id: str, search: str | None, size: int, token: str | None) -> dict[str, Any]:
    """ClarionListEndpoints: a page of the project's endpoints in id order, all of them or those a search finds."""
    search = (search or "").strip() or None
    after = decode_text_token(token) if token else ""
    condition = _attribute_plan(search) if search else None

    def work(tx: Transaction) -> list[EndpointRow]:
        require_app(tx, app_id)
        if condition is None:
            return endpoint_store.page(tx, app_id, after, size + 1, prefix=search)
        keys = [key for key, _id in segment_sql.page(tx, app_id, condition, after, size + 1)]
        return endpoint_store.page(tx, app_id, after, size + 1, keys=keys) if keys else []

    rows = await db.read_long(work)
    response: dict[str, Any] = {"Item": [_summary(row) for row in rows[:size]]}
    if len(rows) > size:
        response["NextToken"] = encode_token(rows[size - 1].endpoint_key)
    return response


async def list_users(db: Database, app_id: str, search: str | None, size: int, token: str | None) -> dict[str, Any]:
    """ClarionListProjectUsers: the project's users in id order with how many endpoints each has, all of them or
    those whose id starts with the search."""
    after = decode_text_token(token) if token else ""
    prefix = (search or "").strip() or None

    def work(tx: Transaction) -> list[tuple[str, int]]:
        require_app(tx, app_id)
        return endpoint_store.users_page(tx, app_id, after, size + 1, prefix)

    rows = await db.read_long(work)
    response: dict[str, Any] = {"Item": [{"UserId": user, "Endpoints": count} for user, count in rows[:size]]}
    if len(rows) > size:
        response["NextToken"] = encode_token(rows[size - 1][0])
    return response


@dataclass(frozen=True, slots=True)
class _Entry:
    ms: int
    order: str  # breaks ties between entries at the same millisecond, the same way on every page
    wire: dict[str, Any]


def _event_entry(at: int, seq: int, endpoint_id: str, event_type: str, doc: str) -> _Entry:
    wire: dict[str, Any] = {"Kind": "EVENT", "Date": _iso(at), "EndpointId": endpoint_id, "EventType": event_type}
    attributes = msgspec.json.decode(doc).get("Attributes")
    if attributes:
        wire["Attributes"] = attributes
    return _Entry(at, f"e{seq:020d}", wire)


def _message_entry(row: message_store.MessageRow) -> _Entry:
    wire: dict[str, Any] = {
        "Kind": "MESSAGE",
        "Date": row.created_at,
        "EndpointId": row.endpoint_id,
        "MessageId": row.message_id,
        "Channel": row.channel,
        "Address": row.address,
        "DeliveryStatus": row.status,
        "StatusMessage": row.status_message,
    }
    for name, value in (("CampaignId", row.campaign_id), ("JourneyId", row.journey_id)):
        if value:
            wire[name] = value
    return _Entry(to_ms(datetime.fromisoformat(row.created_at)), f"m{row.message_id}", wire)


def _iso(ms: int) -> str:
    return iso_millis(datetime.fromtimestamp(ms / 1000, UTC))


def _position(token: str | None) -> tuple[int | None, int]:
    if not token:
        return None, 0
    text = decode_text_token(token)
    try:
        ms, answered = (int(part) for part in text.split(".", 1))
    except ValueError:
        raise BadRequest(f"The page token {token!r} is not one Clarion issued") from None
    if not 0 < answered <= MAX_SAME_INSTANT:
        raise BadRequest(f"The page token {token!r} is not one Clarion issued")
    return ms, answered


@dataclass(frozen=True, slots=True)
class TimelineFilter:
    """What a timeline shows: one kind of entry (EVENT or MESSAGE), one event type (events only), a time window."""

    kind: str | None = None
    event_type: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def checked(self) -> TimelineFilter:
        if self.kind not in (None, "EVENT", "MESSAGE"):
            raise BadRequest(f"kind must be EVENT or MESSAGE, not {self.kind!r}")
        if self.event_type is not None and self.kind == "MESSAGE":
            raise BadRequest("event-type picks events; it cannot go with kind=MESSAGE")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise BadRequest("start-time must not be after end-time")
        return self

    def bound(self, moment: datetime | None) -> int | None:
        if moment is None:
            return None
        return to_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


async def timeline(
    db: Database,
    app_id: str,
    endpoint_id: str | None,
    user_id: str | None,
    size: int,
    token: str | None,
    shown: TimelineFilter = TimelineFilter(),
) -> dict[str, Any]:
    """ClarionGetTimeline: an endpoint's or a user's (all their endpoints') events and messages, newest first."""
    if (endpoint_id is None) == (user_id is None):
        raise BadRequest("Give exactly one of endpoint-id and user-id")
    shown = shown.checked()
    until, answered = _position(token)
    end, since = shown.bound(shown.end), shown.bound(shown.start)
    if end is not None and (until is None or end < until):
        until, answered = end, 0
    wanted = size + answered + 1
    events_wanted = shown.kind != "MESSAGE"
    messages_wanted = shown.kind != "EVENT" and shown.event_type is None

    def work(tx: Transaction) -> list[_Entry]:
        require_app(tx, app_id)
        if endpoint_id is not None:
            rows = endpoint_store.page(tx, app_id, "", 1, keys=[endpoint_id.lower()])
            if not rows:
                raise NotFound(f"Endpoint {endpoint_id!r} not found in application {app_id!r}")
        else:
            rows = endpoint_store.of_user(tx, app_id, user_id or "")
            if not rows:
                raise NotFound(f"User {user_id!r} has no endpoints in application {app_id!r}")
        entries: list[_Entry] = []
        if events_wanted:
            keys = [row.endpoint_key for row in rows]
            events = event_store.of_endpoints(tx, app_id, keys, until, wanted, since, shown.event_type)
            entries += [_event_entry(*event) for event in events]
        if messages_wanted:
            ids = [row.id for row in rows]
            window = (None if until is None else _iso(until), None if since is None else _iso(since))
            entries += [
                _message_entry(m) for m in message_store.of_endpoints(tx, app_id, ids, window[0], wanted, window[1])
            ]
        return entries

    entries = sorted(await db.read_long(work), key=lambda entry: (entry.ms, entry.order), reverse=True)
    entries = entries[answered:]
    page = entries[:size]
    response: dict[str, Any] = {"Item": [entry.wire for entry in page]}
    if len(entries) > size:
        last = page[-1].ms
        same = sum(1 for entry in page if entry.ms == last) + (answered if last == until else 0)
        response["NextToken"] = encode_token(f"{last}.{same}")
    return response
