"""The journey resource: create, read, list, update, state changes and delete; runs and execution metrics.

A journey is not versioned (Pinpoint keeps one definition): UpdateJourney replaces the definition, except that the
activities of a journey past DRAFT cannot change, so an update may leave them out. Writes record a JourneyChanged
event (the engine wakes on it); running the journey is the engine's (clarion/journeys/engine.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from clarion import paging
from clarion.clock import epoch_millis, iso_millis
from clarion.context import CallContext
from clarion.domain_events import Change, JourneyChanged
from clarion.errors import BadRequest, NotFound
from clarion.journeys import entry_filter
from clarion.journeys.config import JourneySettings
from clarion.journeys.definition import (
    ACTIVITY_TYPES,
    FINAL_STATES,
    TEMPLATE_TYPES,
    JourneyState,
    kinds_of,
    start_event,
)
from clarion.journeys.engine import first_entry_ms
from clarion.journeys.rules import validate_journey
from clarion.projects.service import require_app
from clarion.store import journeys as journey_store
from clarion.store import segments as segment_store
from clarion.store import tags as tag_store
from clarion.store import templates as template_store
from clarion.store.database import Database, Transaction
from clarion.versions import parse_version

MAX_ACTIVE_EVENT_JOURNEYS = 20  # per account ("Amazon Pinpoint quotas")
RESUME_AFTER_MS = 5 * 60 * 1000  # a paused journey resumes no sooner than five minutes after the pause
FIXED_ONCE_PUBLISHED = ("Activities", "StartActivity")
# Members the response states itself rather than echoing what the request said (the dates are the server's).
NOT_STORED = ("Name", "State", "CreationDate", "LastModifiedDate")


def resource_path(app_id: str, journey_id: str) -> str:
    return f"apps/{app_id}/journeys/{journey_id}"


def _response(row: journey_store.JourneyRow, tags: dict[str, str]) -> dict[str, Any]:
    return {
        **msgspec.json.decode(row.definition),
        "ApplicationId": row.app_id,
        "Id": row.id,
        "Name": row.name,
        "State": row.state,
        "CreationDate": row.created_at,
        "LastModifiedDate": row.modified_at,
        "tags": tags,
    }


def require_journey(tx: Transaction, app_id: str, journey_id: str, *, lock: bool = False) -> journey_store.JourneyRow:
    require_app(tx, app_id)
    row = journey_store.get(tx, app_id, journey_id, lock=lock)
    if row is None:
        raise NotFound(f"Journey {journey_id!r} not found in application {app_id!r}")
    return row


def _check_references(tx: Transaction, app_id: str, request: dict[str, Any]) -> None:
    """Segments the journey starts from or tests, and the templates its messages are sent from, must exist."""
    start = request.get("StartCondition") or {}
    segments = []
    if (start.get("SegmentStartCondition") or {}).get("SegmentId"):
        segments.append(("StartCondition.SegmentStartCondition.SegmentId", start["SegmentStartCondition"]["SegmentId"]))
    event_segment = (start.get("EventStartCondition") or {}).get("SegmentId")
    if event_segment:
        segments.append(("StartCondition.EventStartCondition.SegmentId", event_segment))
    activities: dict[str, Any] = request.get("Activities") or {}
    for activity_id, activity in activities.items():
        for kind in kinds_of(activity):
            body = activity[kind]
            conditions = [c for c in (body.get("Condition") or {}).get("Conditions") or []]
            conditions += [b.get("Condition") or {} for b in body.get("Branches") or [] if "Condition" in b]
            for condition in conditions:
                segment_id = (condition.get("SegmentCondition") or {}).get("SegmentId")
                if segment_id:
                    segments.append((f"Activities.{activity_id}.{kind}: SegmentCondition.SegmentId", segment_id))
            template_type = TEMPLATE_TYPES.get(kind)
            name = body.get("TemplateName")
            if template_type and name:
                version = body.get("TemplateVersion")
                found = (
                    template_store.exists(tx, name, template_type)
                    if version is None
                    else template_store.get_version(tx, name, template_type, parse_version(str(version)))
                )
                if not found:
                    named = f"{template_type} template {name!r}" + (f" version {version}" if version else "")
                    raise BadRequest(f"Activities.{activity_id}.{kind}.TemplateName: {named} does not exist")
    for where, segment_id in segments:
        segment = segment_store.get(tx, app_id, segment_id)
        if segment is None:
            raise BadRequest(f"{where}: segment {segment_id!r} does not exist in application {app_id!r}")
        if where.startswith("StartCondition.EventStartCondition") and segment.segment_type == "IMPORT":
            raise BadRequest(f"{where}: a journey that starts on an event needs a dynamic segment, not an imported one")


def _check_event_quota(tx: Transaction, request: dict[str, Any]) -> None:
    """At most 20 journeys that start on an event are ACTIVE at once, across all projects."""
    if not (request.get("StartCondition") or {}).get("EventStartCondition"):
        return
    active = sum(1 for text in journey_store.active_definitions(tx) if '"EventStartCondition"' in text)
    if active >= MAX_ACTIVE_EVENT_JOURNEYS:
        raise BadRequest(
            f"State: at most {MAX_ACTIVE_EVENT_JOURNEYS} journeys that start on an event can be ACTIVE at once"
        )


def _definition(request: dict[str, Any]) -> str:
    return msgspec.json.encode({k: v for k, v in request.items() if k not in NOT_STORED}).decode()


async def create_journey(
    db: Database, ctx: CallContext, settings: JourneySettings, app_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    state = request.get("State") or JourneyState.DRAFT
    validate_journey(request, publishing=state == JourneyState.ACTIVE, contact_center=bool(settings.contact_center_url))
    journey_id = uuid.uuid4().hex
    created_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        _check_references(tx, app_id, request)
        if state == JourneyState.ACTIVE:
            _check_event_quota(tx, request)
        journey_store.insert(
            tx, app_id, journey_id, request["Name"], state, created_at, _definition(request), start_event(request)
        )
        if state == JourneyState.ACTIVE:
            journey_store.set_next_entry(tx, app_id, journey_id, first_entry_ms(request, ctx.now))
        tx.record(JourneyChanged(app_id, journey_id, Change.CREATED))
        return _response(require_journey(tx, app_id, journey_id), {})

    return await db.write(work)


async def get_journey(db: Database, app_id: str, journey_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        row = require_journey(tx, app_id, journey_id)
        return _response(row, tag_store.get(tx, resource_path(app_id, journey_id)))

    return await db.read(work)


async def list_journeys(db: Database, app_id: str, page_size: str | None, token: str | None) -> dict[str, Any]:
    size, after = paging.page_size(page_size), paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        return paging.page_response(
            journey_store.page(tx, app_id, after, size + 1),
            size,
            lambda row: _response(row, tag_store.get(tx, resource_path(app_id, row.id))),
            lambda row: row.seq,
        )

    return await db.read(work)


def _next_state(current: str, requested: str | None) -> str:
    """The state an UpdateJourney leaves the journey in: DRAFT may be published; nothing goes back to DRAFT."""
    if current in FINAL_STATES:
        raise BadRequest(f"State: a {current} journey cannot be changed")
    if requested is None or requested == current:
        return current
    if requested == JourneyState.DRAFT:
        raise BadRequest(f"State: a journey that is {current} cannot go back to DRAFT")
    if current == JourneyState.PAUSED:
        raise BadRequest("State: a PAUSED journey is resumed with UpdateJourneyState (State ACTIVE)")
    return JourneyState.ACTIVE if current == JourneyState.DRAFT else current


async def update_journey(
    db: Database, ctx: CallContext, settings: JourneySettings, app_id: str, journey_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """Replace the definition with the request's; past DRAFT, Activities and StartActivity stay as they are (the
    request may leave them out, and must not change them)."""
    modified_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        current = require_journey(tx, app_id, journey_id, lock=True)
        state = _next_state(current.state, request.get("State"))
        merged = dict(request)
        if current.state != JourneyState.DRAFT:
            stored = msgspec.json.decode(current.definition)
            for member in FIXED_ONCE_PUBLISHED:
                if member in merged and merged[member] != stored.get(member):
                    raise BadRequest(f"{member}: the activities of a journey cannot change once it is {current.state}")
                if member in stored:
                    merged[member] = stored[member]
        validate_journey(
            merged,
            publishing=state != JourneyState.DRAFT,
            contact_center=bool(settings.contact_center_url),
        )
        _check_references(tx, app_id, merged)
        if current.state == JourneyState.DRAFT and state == JourneyState.ACTIVE:
            _check_event_quota(tx, merged)
        journey_store.replace(
            tx, app_id, journey_id, merged["Name"], state, modified_at, _definition(merged), start_event(merged)
        )
        if current.state == JourneyState.DRAFT and state == JourneyState.ACTIVE:
            journey_store.set_next_entry(tx, app_id, journey_id, first_entry_ms(merged, ctx.now))
        tx.record(JourneyChanged(app_id, journey_id, Change.UPDATED))
        return _response(require_journey(tx, app_id, journey_id), tag_store.get(tx, resource_path(app_id, journey_id)))

    return await db.write(work)


def _state_change(row: journey_store.JourneyRow, requested: str, now_ms: int) -> int | None:
    """Check UpdateJourneyState's move; the paused_at it leaves (None unless pausing)."""
    current = row.state
    if requested == JourneyState.CANCELLED:
        if current in FINAL_STATES:
            raise BadRequest(f"State: the journey is {current} already")
        return None
    if requested == JourneyState.PAUSED:
        if current != JourneyState.ACTIVE:
            raise BadRequest(f"State: only an ACTIVE journey can be paused, this one is {current}")
        if not msgspec.json.decode(row.definition).get("RefreshFrequency"):
            raise BadRequest("State: only a journey with a RefreshFrequency can be paused")
        return now_ms
    if requested == JourneyState.ACTIVE:
        if current != JourneyState.PAUSED:
            raise BadRequest(f"State: only a PAUSED journey can be resumed, this one is {current}")
        if row.paused_at is not None and now_ms - row.paused_at < RESUME_AFTER_MS:
            raise BadRequest("State: a paused journey can be resumed no sooner than 5 minutes after it was paused")
        return None
    raise BadRequest(f"State: UpdateJourneyState accepts ACTIVE, PAUSED or CANCELLED, not {requested}")


async def update_journey_state(
    db: Database, ctx: CallContext, app_id: str, journey_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    requested = request.get("State")
    if not requested:
        raise BadRequest("State is required")
    now_ms = epoch_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        row = require_journey(tx, app_id, journey_id, lock=True)
        paused_at = _state_change(row, requested, now_ms)
        journey_store.set_state(tx, app_id, journey_id, requested, paused_at)
        if requested == JourneyState.PAUSED:
            journey_store.freeze(tx, app_id, journey_id)
        elif requested == JourneyState.ACTIVE and row.paused_at is not None:  # waits were frozen for the pause
            journey_store.thaw(tx, app_id, journey_id, now_ms - row.paused_at)
        elif requested == JourneyState.CANCELLED:
            at = iso_millis(ctx.now)
            for run_id, count in journey_store.cancel_participants(tx, app_id, journey_id).items():
                journey_store.add_metrics(tx, app_id, journey_id, run_id, "", {"CANCELLED": count})
            journey_store.set_next_entry(tx, app_id, journey_id, None)
            journey_store.set_runs_status(tx, app_id, journey_id, "CANCELLED", at, only="RUNNING")
        tx.record(JourneyChanged(app_id, journey_id, Change.UPDATED))
        return _response(require_journey(tx, app_id, journey_id), tag_store.get(tx, resource_path(app_id, journey_id)))

    return await db.write(work)


async def delete_journey(db: Database, app_id: str, journey_id: str) -> dict[str, Any]:
    """Stops everything: the journey, its participants and their timers go in one transaction."""

    def work(tx: Transaction) -> dict[str, Any]:
        row = require_journey(tx, app_id, journey_id, lock=True)
        path = resource_path(app_id, journey_id)
        tags = tag_store.get(tx, path)
        response = _response(row, tags)
        journey_store.delete(tx, app_id, journey_id)
        tag_store.remove(tx, path, list(tags))
        tx.record(JourneyChanged(app_id, journey_id, Change.DELETED))
        return response

    return await db.write(work)


# Runs and execution metrics -----------------------------------------------------------------------------------


def _run_response(run: journey_store.RunRow) -> dict[str, Any]:
    return {
        "RunId": run.run_id,
        "Status": run.status,
        "CreationTime": run.created_at,
        "LastUpdateTime": run.updated_at,
    }


async def list_runs(
    db: Database, app_id: str, journey_id: str, page_size: str | None, token: str | None
) -> dict[str, Any]:
    size = paging.page_size(page_size)
    after = token or ""  # a run id: run ids sort in the order runs were created

    def work(tx: Transaction) -> dict[str, Any]:
        require_journey(tx, app_id, journey_id)
        rows = journey_store.page_runs(tx, app_id, journey_id, after, size + 1)
        response: dict[str, Any] = {"Item": [_run_response(run) for run in rows[:size]]}
        if len(rows) > size:
            response["NextToken"] = rows[size - 1].run_id
        return response

    return await db.read(work)


def _require_run(tx: Transaction, app_id: str, journey_id: str, run_id: str | None) -> None:
    if run_id is not None and journey_store.get_run(tx, app_id, journey_id, run_id) is None:
        raise NotFound(f"Journey {journey_id!r} has no run {run_id!r}")


def _activity_type(row: journey_store.JourneyRow, activity_id: str) -> str:
    activity = (msgspec.json.decode(row.definition).get("Activities") or {}).get(activity_id)
    if activity is None:
        raise NotFound(f"Journey {row.id!r} has no activity {activity_id!r}")
    return ACTIVITY_TYPES[kinds_of(activity)[0]]


def _as_strings(counts: dict[str, int]) -> dict[str, str]:
    return {name: str(value) for name, value in sorted(counts.items())}


async def execution_metrics(
    db: Database, ctx: CallContext, app_id: str, journey_id: str, run_id: str | None = None
) -> dict[str, Any]:
    """GetJourneyExecutionMetrics, or GetJourneyRunExecutionMetrics with a run: the journey's own counters and
    ENDPOINT_ACTIVE, the participants in it now."""

    def work(tx: Transaction) -> dict[str, Any]:
        require_journey(tx, app_id, journey_id)
        _require_run(tx, app_id, journey_id, run_id)
        counts = journey_store.metrics(tx, app_id, journey_id, run_id, "")
        if run_id is None:  # what a run's segment reading produced is the run's figure, not the journey's
            counts = {name: value for name, value in counts.items() if name not in entry_filter.RUN_ONLY}
        active = journey_store.active_participants(tx, app_id, journey_id, run_id)
        if counts or active:
            counts["ENDPOINT_ACTIVE"] = active
        response = {
            "ApplicationId": app_id,
            "JourneyId": journey_id,
            "LastEvaluatedTime": journey_store.last_updated(tx, app_id, journey_id, run_id) or iso_millis(ctx.now),
            "Metrics": _as_strings(counts),
        }
        return response if run_id is None else {**response, "RunId": run_id}

    return await db.read(work)


async def activity_metrics(
    db: Database, ctx: CallContext, app_id: str, journey_id: str, activity_id: str, run_id: str | None = None
) -> dict[str, Any]:
    """GetJourneyExecutionActivityMetrics (and its per-run form): one activity's counters."""

    def work(tx: Transaction) -> dict[str, Any]:
        row = require_journey(tx, app_id, journey_id)
        activity_type = _activity_type(row, activity_id)
        _require_run(tx, app_id, journey_id, run_id)
        response = {
            "ApplicationId": app_id,
            "JourneyId": journey_id,
            "JourneyActivityId": activity_id,
            "ActivityType": activity_type,
            "LastEvaluatedTime": journey_store.last_updated(tx, app_id, journey_id, run_id) or iso_millis(ctx.now),
            "Metrics": _as_strings(journey_store.metrics(tx, app_id, journey_id, run_id, activity_id)),
        }
        return response if run_id is None else {**response, "RunId": run_id}

    return await db.read(work)
