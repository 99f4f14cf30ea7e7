"""Domain events: what a committed write changed, for whatever must react to it.

A write records its events inside its own transaction (`tx.record(CampaignChanged(...))`). The store hands them to
`Subscriptions.dispatch` only after the commit that holds them succeeded, and never for a write that rolled back,
even when group commit put it in a transaction with others (clarion/store/database.py). What must happen atomically
with a write is done in its transaction; subscribers are for what may follow it: waking a scheduler, dropping a
cache, triggering event campaigns, and next KPIs, event streams and the console.

Subscribers are registered in one place, the composition root (clarion/services.py). One that fails is logged and
counted (`clarion_subscriber_failures_total`); the write it reacts to stays committed and the others still run.
Events carry plain values (ids, wire documents), never rows or connections.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from prometheus_client import Counter

from clarion.logs import get_logger

log = get_logger("clarion.domain_events")

E = TypeVar("E")
Subscriber = Callable[[E], Awaitable[None] | None]


class Change(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class AppChanged:
    """A project was created or deleted (with everything it held)."""

    app_id: str
    change: Change


@dataclass(frozen=True, slots=True)
class AppSettingsChanged:
    """UpdateApplicationSettings: the defaults campaigns and journeys fall back on, or the attributes not kept."""

    app_id: str


@dataclass(frozen=True, slots=True)
class EndpointsWritten:
    """Endpoints (and their users' attributes) created or updated: the API, PutEvents, imports and opt-outs."""

    app_id: str
    endpoint_ids: tuple[str, ...]
    user_ids: tuple[str, ...]  # users whose attributes this write set


@dataclass(frozen=True, slots=True)
class EndpointsDeleted:
    app_id: str
    endpoint_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IngestedEvent:
    endpoint_id: str
    event_id: str
    event: Mapping[str, Any]  # the Event as the client sent it (EventType, Timestamp, Attributes, Metrics, ...)


@dataclass(frozen=True, slots=True)
class EventsIngested:
    """The events one PutEvents accepted (those it refused are not here)."""

    app_id: str
    events: tuple[IngestedEvent, ...]


@dataclass(frozen=True, slots=True)
class CampaignChanged:
    app_id: str
    campaign_id: str
    change: Change


@dataclass(frozen=True, slots=True)
class CampaignStateChanged:
    """A campaign's CampaignStatus moved: paused or resumed by an update, or by its runs (EXECUTING,
    PENDING_NEXT_RUN, COMPLETED, DELETED when its segment is gone)."""

    app_id: str
    campaign_id: str
    state: str


@dataclass(frozen=True, slots=True)
class CampaignRunStarted:
    """A campaign run began: a scheduled run, or the first event of an EVENT campaign's running tally."""

    app_id: str
    campaign_id: str
    run_key: str


@dataclass(frozen=True, slots=True)
class CampaignRunFinished:
    """A run ended with its activities' Result (SUCCESS or FAIL) and what it counted over all treatments."""

    app_id: str
    campaign_id: str
    run_key: str
    result: str
    targeted: int  # TotalEndpointCount over the run's activities
    successful: int  # SuccessfulEndpointCount
    reason: str  # why it failed, "" when it did not


@dataclass(frozen=True, slots=True)
class JobFinished:
    """An import or export job reached COMPLETED or FAILED."""

    app_id: str
    job_id: str
    job_type: str  # IMPORT or EXPORT
    status: str
    failures: tuple[str, ...]  # the first failure reasons it kept


@dataclass(frozen=True, slots=True)
class JourneyChanged:
    """A journey was created, updated (its State too) or deleted."""

    app_id: str
    journey_id: str
    change: Change


@dataclass(frozen=True, slots=True)
class JourneyEntriesHeld:
    """PutEvents kept events that start a journey (journey_inbox): the engine, in whichever process runs it, lets
    their endpoints in."""

    app_id: str


@dataclass(frozen=True, slots=True)
class SegmentChanged:
    app_id: str
    segment_id: str
    change: Change


@dataclass(frozen=True, slots=True)
class TemplateChanged:
    """A message template (templates belong to the account, not to a project)."""

    name: str
    template_type: str  # EMAIL, SMS, PUSH, VOICE, INAPP
    change: Change


@dataclass(frozen=True, slots=True)
class RecommenderChanged:
    """A recommender configuration (account-level, like templates)."""

    recommender_id: str
    change: Change


@dataclass(frozen=True, slots=True)
class ChannelChanged:
    app_id: str
    channel_type: str  # EMAIL, SMS, GCM, APNS, ...
    change: Change


@dataclass(frozen=True, slots=True)
class MessageSent:
    """One message's outcome as the send decided it (handed to a provider, or refused before that)."""

    message_id: str
    endpoint_id: str | None  # None for a bare address
    channel: str
    status: str  # DeliveryStatus
    campaign_id: str | None
    treatment_id: str | None
    journey_id: str | None


@dataclass(frozen=True, slots=True)
class MessagesSent:
    """The messages one send logged (a SendMessages call, a campaign batch, a journey step)."""

    app_id: str
    messages: tuple[MessageSent, ...]


@dataclass(frozen=True, slots=True)
class OutcomeReported:
    """What a provider or a recipient said about a message afterwards, recorded as the event `event_type`."""

    app_id: str
    endpoint_id: str
    event_type: str  # _email.delivered, _SMS.SUCCESS, _email.open, _email.unsubscribe, ...
    message_id: str | None  # None for an inbound message (STOP) that names only the number


@dataclass(frozen=True, slots=True)
class OutcomesReported:
    outcomes: tuple[OutcomeReported, ...]


@dataclass(frozen=True, slots=True)
class EventStreamChanged:
    """PutEventStream or DeleteEventStream: a project's stream was created, given another destination, or removed."""

    app_id: str
    change: Change


@dataclass(frozen=True, slots=True)
class AccessKeysChanged:
    """`clarion keys create` or `revoke` stored or revoked a key: every process's key ring reads the keys again."""

    access_key_id: str


@dataclass(frozen=True, slots=True)
class NamesAdded:
    """A write used custom names (attributes, metrics, event types) new to the project, which its quotas count."""

    app_id: str
    kind: str


# What other processes' caches follow: written in one process, these reach the others' subscribers registered
# `everywhere` (on PostgreSQL, as notifications committed with the write: clarion/store/notices.py).
SHARED_EVENTS: tuple[type, ...] = (
    AppChanged,
    CampaignChanged,
    JourneyChanged,
    JourneyEntriesHeld,
    ChannelChanged,
    EventStreamChanged,
    AccessKeysChanged,
    NamesAdded,
)


class Subscriptions:
    """Who reacts to which domain event, in the order they subscribed."""

    def __init__(self, failures: Counter) -> None:
        self.failures = failures  # by event type (clarion_subscriber_failures_total)
        self._subscribers: dict[type, list[Subscriber[Any]]] = defaultdict(list)
        self._everywhere: dict[type, list[Subscriber[Any]]] = defaultdict(list)
        self._on_missed: list[Callable[[], Awaitable[None] | None]] = []

    def on(self, kind: type[E], subscriber: Subscriber[E], *, everywhere: bool = False) -> None:
        """`everywhere`: also for the events other processes' writes record (a cache every process keeps); only
        for the kinds in SHARED_EVENTS."""
        self._subscribers[kind].append(subscriber)
        if everywhere:
            if kind not in SHARED_EVENTS:
                raise ValueError(f"{kind.__name__} does not reach other processes")
            self._everywhere[kind].append(subscriber)

    async def dispatch(self, events: Sequence[object]) -> None:
        """Hand each event of a committed write to its subscribers; a failing subscriber costs only itself."""
        await self._hand_over(events, self._subscribers)

    async def dispatch_elsewhere(self, events: Sequence[object]) -> None:
        """Events another process's committed write recorded: only the subscribers registered `everywhere`."""
        await self._hand_over(events, self._everywhere)

    def on_missed(self, reset: Callable[[], Awaitable[None] | None]) -> None:
        """What drops a cache whole when other processes' events may have been missed (a lost connection)."""
        self._on_missed.append(reset)

    async def missed(self) -> None:
        for reset in self._on_missed:
            try:
                outcome = reset()
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("cache reset failed", subscriber=_name_of(reset))

    async def _hand_over(self, events: Sequence[object], registered: dict[type, list[Subscriber[Any]]]) -> None:
        for event in events:
            subscribers = registered.get(type(event))
            if not subscribers:
                continue
            name = type(event).__name__
            for subscriber in subscribers:
                try:
                    outcome = subscriber(event)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:  # the write has committed whatever a subscriber does
                    log.exception("domain event subscriber failed", domain_event=name, subscriber=_name_of(subscriber))
                    self.failures.labels(name).inc()


def _name_of(subscriber: Subscriber[Any]) -> str:
    return getattr(subscriber, "__qualname__", repr(subscriber))
