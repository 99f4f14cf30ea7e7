"""Create, read, list and delete projects; read and write their settings."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from clarion import paging
from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.domain_events import AppChanged, AppSettingsChanged, Change
from clarion.errors import BadRequest, NotFound
from clarion.projects.unsubscribe_page import MEMBER as UNSUBSCRIBE_PAGE
from clarion.projects.unsubscribe_page import check_page_settings
from clarion.store import apps as app_store
from clarion.store import tags as tag_store
from clarion.store.database import Database, Transaction
from clarion.tags.service import validate_tags

MAX_PROJECTS = 100  # Pinpoint: 100 projects per region, not increasable ("Amazon Pinpoint quotas")


def app_arn(ctx: CallContext, app_id: str) -> str:
    return ctx.arn(f"apps/{app_id}")


def _response(ctx: CallContext, row: app_store.AppRow, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "Arn": app_arn(ctx, row.id),
        "Id": row.id,
        "Name": row.name,
        "tags": tags,
        "CreationDate": row.created_at,
    }


def require_app(tx: Transaction, app_id: str) -> app_store.AppRow:
    row = app_store.get(tx, app_id)
    if row is None:
        raise app_not_found(app_id)
    return row


def app_not_found(app_id: str) -> NotFound:
    """What a call naming a project that does not exist is answered."""
    return NotFound(f"Application {app_id!r} not found")


async def create_app(db: Database, ctx: CallContext, name: str, tags: dict[str, str] | None) -> dict[str, Any]:
    if not name.strip():
        raise BadRequest("Name must not be empty")
    tags = tags or {}
    validate_tags(tags)
    app_id = uuid.uuid4().hex
    created_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        if app_store.count(tx) >= MAX_PROJECTS:
            raise BadRequest(f"This Clarion already has the maximum of {MAX_PROJECTS} projects")
        app_store.insert(tx, app_id, name, created_at, "{}")
        tag_store.put(tx, f"apps/{app_id}", app_id, tags)
        tx.record(AppChanged(app_id, Change.CREATED))
        return _response(ctx, require_app(tx, app_id), tags)

    return await db.write(work)


async def get_app(db: Database, ctx: CallContext, app_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        return _response(ctx, require_app(tx, app_id), tag_store.get(tx, f"apps/{app_id}"))

    return await db.read(work)


async def list_apps(
    db: Database, ctx: CallContext, page_size: str | None, token: str | None, only: frozenset[str] | None
) -> dict[str, Any]:
    size = paging.page_size(page_size)
    after = paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        rows = app_store.page(tx, after, size + 1, only)
        return paging.page_response(
            rows, size, lambda row: _response(ctx, row, tag_store.get(tx, f"apps/{row.id}")), lambda row: row.seq
        )

    return await db.read(work)


async def delete_app(db: Database, ctx: CallContext, app_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        row = require_app(tx, app_id)
        response = _response(ctx, row, tag_store.get(tx, f"apps/{app_id}"))
        app_store.delete(tx, app_id)
        tx.record(AppChanged(app_id, Change.DELETED))
        return response

    return await db.write(work)


# Members of WriteApplicationSettingsRequest that are stored but, as in Pinpoint, never echoed back.
WRITE_ONLY_SETTINGS = ("CloudWatchMetricsEnabled", "EventTaggingEnabled")
ECHOED_SETTINGS = ("CampaignHook", "Limits", "QuietTime", "JourneyLimits")


def _settings_response(row: app_store.AppRow) -> dict[str, Any]:
    stored = msgspec.json.decode(row.settings)
    response: dict[str, Any] = {"ApplicationId": row.id, "LastModifiedDate": row.settings_modified_at}
    for member in ECHOED_SETTINGS:
        response[member] = stored.get(member, {})
    if UNSUBSCRIBE_PAGE in stored:  # a Clarion extension member, echoed only when set
        response[UNSUBSCRIBE_PAGE] = stored[UNSUBSCRIBE_PAGE]
    return response


def stored_settings(tx: Transaction, app_id: str) -> dict[str, Any]:
    """A project's settings as campaigns and journeys will read them (defaults for what they leave unset)."""
    return msgspec.json.decode(require_app(tx, app_id).settings)


async def get_settings(db: Database, app_id: str) -> dict[str, Any]:
    return await db.read(lambda tx: _settings_response(require_app(tx, app_id)))


async def update_settings(db: Database, ctx: CallContext, app_id: str, request: dict[str, Any]) -> dict[str, Any]:
    validate_settings(request)
    modified_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        settings = msgspec.json.decode(require_app(tx, app_id).settings)
        settings.update(request)  # each member given replaces the stored one; members left out stay
        app_store.update_settings(tx, app_id, msgspec.json.encode(settings).decode(), modified_at)
        tx.record(AppSettingsChanged(app_id))
        return _settings_response(require_app(tx, app_id))

    return await db.write(work)


def _check_hhmm(value: str | None, where: str) -> None:
    if value is None:
        return
    hours, sep, minutes = value.partition(":")
    if not (
        sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and int(hours) < 24 and int(minutes) < 60
    ):
        raise BadRequest(f"{where} must be a 24-hour time HH:MM, not {value!r}")


def _check_range(value: int | None, low: int, high: int | None, where: str) -> None:
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"{where} must be {bound}, not {value}")


def validate_settings(request: dict[str, Any]) -> None:
    """The documented bounds (API Reference, "Settings"): caps ≤100, 1–20,000 messages/s, duration ≥60 s, HH:MM
    quiet time."""
    check_page_settings(request.get(UNSUBSCRIBE_PAGE))
    quiet = request.get("QuietTime") or {}
    _check_hhmm(quiet.get("Start"), "QuietTime.Start")
    _check_hhmm(quiet.get("End"), "QuietTime.End")
    limits = request.get("Limits") or {}
    for member in ("Daily", "Total", "Session"):
        _check_range(limits.get(member), 0, 100, f"Limits.{member}")
    _check_range(limits.get("MessagesPerSecond"), 1, 20_000, "Limits.MessagesPerSecond")
    _check_range(limits.get("MaximumDuration"), 60, None, "Limits.MaximumDuration")
    journey = request.get("JourneyLimits") or {}
    for member in ("DailyCap", "TotalCap"):
        _check_range(journey.get(member), 0, 100, f"JourneyLimits.{member}")
    timeframe = journey.get("TimeframeCap") or {}
    _check_range(timeframe.get("Cap"), 0, 100, "JourneyLimits.TimeframeCap.Cap")
    _check_range(timeframe.get("Days"), 0, 30, "JourneyLimits.TimeframeCap.Days")
    hook = request.get("CampaignHook") or {}
    if hook.get("Mode") and not (hook.get("LambdaFunctionName") or hook.get("WebUrl")):
        raise BadRequest("CampaignHook.Mode needs a LambdaFunctionName or a WebUrl")
