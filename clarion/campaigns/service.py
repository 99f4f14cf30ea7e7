"""Create, read, list, update and delete campaigns; every update writes a new version and keeps the old ones.

This is the campaign resource: what to send, to whom, when and within which limits. Writes set the campaign's
next run time and record a CampaignChanged event (the scheduler wakes on it); running the campaign is the work of
the scheduler, the planner and delivery (clarion/campaigns/scheduler.py, planner.py, delivery.py). Deleting a
campaign withdraws its in-app messages in the same transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec

from clarion import paging
from clarion.campaigns import schedule as timing
from clarion.campaigns.definition import CampaignState, parse_schedule
from clarion.campaigns.rules import TEMPLATE_TYPES, check_message_texts, validate_campaign
from clarion.campaigns.runs import set_state
from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.domain_events import CampaignChanged, Change
from clarion.errors import BadRequest
from clarion.messages.inapp import remove_in_app_campaign
from clarion.projects.service import require_app
from clarion.store import campaigns as campaign_store
from clarion.store import segments as segment_store
from clarion.store import tags as tag_store
from clarion.store import templates as template_store
from clarion.store.database import Database, Transaction
from clarion.tags.service import validate_tags
from clarion.versions import VersionedResource, parse_version


def resource_path(app_id: str, campaign_id: str) -> str:
    return f"apps/{app_id}/campaigns/{campaign_id}"


def _state(tx: Transaction, row: campaign_store.CampaignRow, definition: dict[str, Any]) -> str:
    """A campaign whose segment is gone can no longer run: Pinpoint reports it DELETED."""
    if (
        row.state in (CampaignState.SCHEDULED, CampaignState.PAUSED)
        and segment_store.get(tx, row.app_id, definition["SegmentId"]) is None
    ):
        return CampaignState.DELETED
    return row.state


def _response(
    tx: Transaction, ctx: CallContext, row: campaign_store.CampaignRow, tags: dict[str, str]
) -> dict[str, Any]:
    definition = msgspec.json.decode(row.definition)
    state = {"CampaignStatus": _state(tx, row, definition)}
    response: dict[str, Any] = {
        **definition,
        "ApplicationId": row.app_id,
        "Arn": ctx.arn(resource_path(row.app_id, row.id)),
        "CreationDate": row.created_at,
        "Id": row.id,
        "LastModifiedDate": row.modified_at,
        "Name": row.name,
        "State": state,
        "Version": row.version,
        "tags": tags,
    }
    treatments = definition.get("AdditionalTreatments")
    if treatments:
        response["AdditionalTreatments"] = [
            {**treatment, "Id": str(index), "State": state} for index, treatment in enumerate(treatments, start=1)
        ]
        response["DefaultState"] = state
    return response


def _deleted(tx: Transaction, app_id: str, campaign_id: str) -> None:
    remove_in_app_campaign(tx, app_id, campaign_id)
    tx.record(CampaignChanged(app_id, campaign_id, Change.DELETED))


CAMPAIGNS = VersionedResource("Campaign", campaign_store, resource_path, _response, _deleted)
require_campaign = CAMPAIGNS.require
get_campaign = CAMPAIGNS.get
list_campaigns = CAMPAIGNS.list
get_campaign_version = CAMPAIGNS.get_version
list_campaign_versions = CAMPAIGNS.list_versions
delete_campaign = CAMPAIGNS.delete


def _check_references(tx: Transaction, app_id: str, definition: dict[str, Any]) -> None:
    """The segment (and version) and every named template must exist; a missing SegmentVersion pins the latest."""
    segment_id = definition["SegmentId"]
    segment = segment_store.get(tx, app_id, segment_id)
    if segment is None:
        raise BadRequest(f"SegmentId: segment {segment_id!r} does not exist in application {app_id!r}")
    if "SegmentVersion" not in definition:
        definition["SegmentVersion"] = segment.latest
    elif segment_store.get_version(tx, app_id, segment_id, definition["SegmentVersion"]) is None:
        raise BadRequest(f"SegmentVersion: segment {segment_id!r} has no version {definition['SegmentVersion']}")
    for owner, where in [(definition, "")] + [
        (treatment, f"AdditionalTreatments[{index}].")
        for index, treatment in enumerate(definition.get("AdditionalTreatments") or [])
    ]:
        for member, template in (owner.get("TemplateConfiguration") or {}).items():
            template_type = TEMPLATE_TYPES[member]
            version = template.get("Version")
            found = (
                template_store.exists(tx, template["Name"], template_type)
                if version is None
                else template_store.get_version(tx, template["Name"], template_type, parse_version(version))
            )
            if not found:
                named = f"{template_type} template {template['Name']!r}" + (f" version {version}" if version else "")
                raise BadRequest(f"{where}TemplateConfiguration.{member}: {named} does not exist")


def _resumed_state(tx: Transaction, app_id: str, campaign_id: str) -> CampaignState:
    """Where a paused campaign goes back to: its unfinished run, its next run, or its end."""
    started, unfinished = campaign_store.run_counts(tx, app_id, campaign_id)
    if unfinished:
        return CampaignState.EXECUTING
    if not started:
        return CampaignState.SCHEDULED
    return (
        CampaignState.PENDING_NEXT_RUN
        if campaign_store.next_run_at(tx, app_id, campaign_id) is not None
        else CampaignState.COMPLETED
    )


def _split(request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(Name, the versioned definition): tags are not versioned and Name lives in its own column."""
    definition = {member: value for member, value in request.items() if member not in ("Name", "tags")}
    return request["Name"], definition


async def create_campaign(db: Database, ctx: CallContext, app_id: str, request: dict[str, Any]) -> dict[str, Any]:
    validate_campaign(request)
    await asyncio.to_thread(check_message_texts, request)
    tags = request.get("tags") or {}
    validate_tags(tags)
    name, definition = _split(request)
    campaign_id = uuid.uuid4().hex
    created_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        _check_references(tx, app_id, definition)
        state = CampaignState.PAUSED if definition.get("IsPaused") else CampaignState.SCHEDULED
        campaign_store.insert(
            tx, app_id, campaign_id, state, created_at, name, msgspec.json.encode(definition).decode()
        )
        first_run = timing.first_run_ms(parse_schedule(definition["Schedule"]), ctx.now)
        campaign_store.set_next_run(tx, app_id, campaign_id, first_run)
        tag_store.put(tx, resource_path(app_id, campaign_id), app_id, tags)
        tx.record(CampaignChanged(app_id, campaign_id, Change.CREATED))
        return _response(tx, ctx, require_campaign(tx, app_id, campaign_id), tags)

    return await db.write(work)


async def update_campaign(
    db: Database, ctx: CallContext, app_id: str, campaign_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """A new version: members given replace the stored ones, members left out keep their value; `tags` is ignored.

    Pausing and resuming are updates of IsPaused; a new SegmentId without SegmentVersion pins that segment's latest.
    """
    modified_at = iso_millis(ctx.now)
    await asyncio.to_thread(check_message_texts, request)  # the messages this update writes

    def work(tx: Transaction) -> dict[str, Any]:
        current = require_campaign(tx, app_id, campaign_id, lock=True)
        stored = msgspec.json.decode(current.definition)
        if "SegmentId" in request and "SegmentVersion" not in request:
            stored.pop("SegmentVersion", None)
        merged = {**stored, "Name": current.name, **{k: v for k, v in request.items() if k != "tags"}}
        validate_campaign(merged)
        name, definition = _split(merged)
        _check_references(tx, app_id, definition)
        campaign_store.add_version(
            tx, app_id, campaign_id, current.latest + 1, name, modified_at, msgspec.json.encode(definition).decode()
        )
        if request.get("IsPaused") and current.state in (
            CampaignState.SCHEDULED,
            CampaignState.EXECUTING,
            CampaignState.PENDING_NEXT_RUN,
        ):
            set_state(tx, app_id, campaign_id, CampaignState.PAUSED)
        elif request.get("IsPaused") is False and current.state == CampaignState.PAUSED:
            set_state(tx, app_id, campaign_id, _resumed_state(tx, app_id, campaign_id))
        schedule = parse_schedule(definition["Schedule"])
        if "Schedule" in request and current.state in (CampaignState.SCHEDULED, CampaignState.PAUSED):
            campaign_store.set_next_run(tx, app_id, campaign_id, timing.first_run_ms(schedule, ctx.now))
        elif "Schedule" in request and current.state == CampaignState.PENDING_NEXT_RUN:
            campaign_store.set_next_run(tx, app_id, campaign_id, timing.following_run_ms(schedule, ctx.now))
        tx.record(CampaignChanged(app_id, campaign_id, Change.UPDATED))
        return _response(
            tx, ctx, require_campaign(tx, app_id, campaign_id), tag_store.get(tx, resource_path(app_id, campaign_id))
        )

    return await db.write(work)


def _activity(app_id: str, campaign_id: str, row: campaign_store.ActivityRow) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "ApplicationId": app_id,
        "CampaignId": campaign_id,
        "Id": row.id,
        "TreatmentId": row.treatment_id,
        "State": row.state,
        "TotalEndpointCount": row.total_endpoints,
        "SuccessfulEndpointCount": row.successful_endpoints,
        "TimezonesTotalCount": row.timezones_total,
        "TimezonesCompletedCount": row.timezones_completed,
        "ExecutionMetrics": msgspec.json.decode(row.metrics),
    }
    for member, value in (
        ("Result", row.result),
        ("ScheduledStart", row.scheduled_start),
        ("Start", row.start_at),
        ("End", row.end_at),
    ):
        if value is not None:
            activity[member] = value
    return activity


async def list_activities(
    db: Database, app_id: str, campaign_id: str, page_size: str | None, token: str | None
) -> dict[str, Any]:
    size, after = paging.page_size(page_size), paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        require_campaign(tx, app_id, campaign_id)
        rows = campaign_store.page_activities(tx, app_id, campaign_id, after, size + 1)
        return paging.page_response(rows, size, lambda row: _activity(app_id, campaign_id, row), lambda row: row.seq)

    return await db.read(work)
