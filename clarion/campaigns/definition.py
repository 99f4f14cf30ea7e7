"""A campaign as the engine reads it: its states, and its definition typed and parsed once from the stored version.

The stored definition is the WriteCampaignRequest as written (the API echoes it back, clarion/campaigns/service.py);
these Structs name what the scheduler, the planner and delivery act on. Message configurations, template
configurations and event filters stay Pinpoint-shaped: rendering, hooks and the in-app document take them as the
wire describes them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from clarion.messages.delivery import CustomDelivery
from clarion.messages.policy import Limits, QuietTime

IMMEDIATE = "IMMEDIATE"  # Schedule.StartTime of a campaign that starts when written


class CampaignState(StrEnum):
    """CampaignStatus (docs/campaigns.md, States)."""

    SCHEDULED = "SCHEDULED"
    EXECUTING = "EXECUTING"
    PENDING_NEXT_RUN = "PENDING_NEXT_RUN"
    COMPLETED = "COMPLETED"
    PAUSED = "PAUSED"
    DELETED = "DELETED"


RUNNABLE = (CampaignState.SCHEDULED, CampaignState.PENDING_NEXT_RUN)  # states the scheduler starts runs in


class ActivityState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"


class ActivityResult(StrEnum):
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


class Frequency(StrEnum):
    ONCE = "ONCE"
    HOURLY = "HOURLY"
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    EVENT = "EVENT"
    IN_APP_EVENT = "IN_APP_EVENT"


EVENT_FREQUENCIES = frozenset({Frequency.EVENT, Frequency.IN_APP_EVENT})


class HookMode(StrEnum):
    FILTER = "FILTER"
    DELIVERY = "DELIVERY"


class Schedule(msgspec.Struct, frozen=True, rename="pascal", kw_only=True):
    start_time: str  # IMMEDIATE or an ISO 8601 instant (checked when written)
    end_time: str | None = None
    frequency: Frequency = Frequency.ONCE
    is_local_time: bool = False
    timezone: str | None = None  # UTC, UTC+01, ... (the offset local time reads StartTime at)
    quiet_time: QuietTime | None = None
    event_filter: dict[str, Any] | None = None  # CampaignEventFilter, as written


class Hook(msgspec.Struct, frozen=True, rename="pascal", kw_only=True, omit_defaults=True):
    """CampaignHook (the campaign's, or the project's default)."""

    mode: HookMode | None = None
    web_url: str | None = None
    lambda_function_name: str | None = None


class TreatmentMessage(msgspec.Struct, frozen=True, rename="pascal", kw_only=True):
    """What a treatment sends. The campaign itself is the default treatment ("0"); an additional treatment without
    a message or template of its own sends the campaign's."""

    message_configuration: dict[str, Any] = {}  # MessageConfiguration, as written
    template_configuration: dict[str, Any] = {}  # TemplateConfiguration, as written
    custom_delivery_configuration: CustomDelivery | None = None

    @property
    def has_own_message(self) -> bool:
        return bool(self.message_configuration or self.template_configuration)

    @property
    def in_app_message(self) -> dict[str, Any] | None:
        return self.message_configuration.get("InAppMessage") or None


class AdditionalTreatment(TreatmentMessage, frozen=True, kw_only=True):
    size_percent: int


class CampaignDefinition(TreatmentMessage, frozen=True, kw_only=True):
    segment_id: str
    segment_version: int | None = None
    schedule: Schedule
    limits: Limits = Limits()
    hook: Hook | None = None
    holdout_percent: int = 0
    additional_treatments: tuple[AdditionalTreatment, ...] = ()
    priority: int | None = None
    clarion_channel_order: tuple[str, ...] = ()  # a Clarion extension (docs/campaigns.md)

    def treatments(self) -> dict[str, TreatmentMessage]:
        """Treatment id -> what it sends: "0" is the campaign, "1".."4" its additional treatments in order."""
        messages: dict[str, TreatmentMessage] = {"0": self}
        for index, treatment in enumerate(self.additional_treatments, start=1):
            messages[str(index)] = treatment if treatment.has_own_message else self
        return messages

    def is_in_app(self, message: TreatmentMessage) -> bool:
        """An in-app campaign leaves its message for the app to fetch instead of sending it."""
        return self.schedule.frequency == Frequency.IN_APP_EVENT or message.in_app_message is not None


def parse_definition(stored: str | bytes) -> CampaignDefinition:
    """A stored campaign version's definition (validated when it was written)."""
    return msgspec.json.decode(stored, type=CampaignDefinition)


def parse_schedule(schedule: dict[str, Any]) -> Schedule:
    """A Schedule as a request wrote it, once the campaign rules have accepted it."""
    return msgspec.convert(schedule, Schedule)


class ProjectDefaults(msgspec.Struct, frozen=True, rename="pascal", kw_only=True):
    """The ApplicationSettings members a campaign falls back on for what it leaves unset."""

    limits: Limits = Limits()
    quiet_time: QuietTime | None = None
    campaign_hook: Hook | None = None


def parse_project_defaults(settings: dict[str, Any]) -> ProjectDefaults:
    """A project's stored settings (validated when they were written), as campaigns read them."""
    return msgspec.convert(settings, ProjectDefaults)
