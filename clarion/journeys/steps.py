"""What one activity does to the participants due at it: the moves a step commits (docs/journeys.md, Activities).

A step is computed first and committed after (clarion/journeys/engine.py): a `Move` per participant says where it
goes next, when it is due there, what the activity counts and which message it got. Nothing here writes; messages
go out through the one send path, with a trace key per (journey, activity, entry), so a step computed again after a
crash does not send again what was logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clarion.campaigns.members import SegmentMembers
from clarion.campaigns.rules import parse_instant
from clarion.channels.delivery import DeliveryStatus
from clarion.channels.outcomes import send_event_type
from clarion.clock import epoch_millis, iso_millis
from clarion.journeys.rules import parse_duration
from clarion.journeys.sending import next_sending_time, quiet_time_ends
from clarion.journeys.zones import ZoneEstimator
from clarion.messages.delivery import (
    Attribution,
    CustomDelivery,
    Delivery,
    Send,
    load_templates,
    why_not_sendable,
)
from clarion.messages.policy import Limits, QuietTime, SendPolicy
from clarion.messages.rendering import PUSH_CHANNELS, MessageBuilder
from clarion.segments.engine import SegmentEngine
from clarion.store import endpoints as endpoint_store
from clarion.store import journeys as store
from clarion.store import messages as message_store
from clarion.store.database import Database, Transaction
from clarion.store.endpoints import EndpointRow
from clarion.store.journeys import Logged, ParticipantRow

# Message events a condition can test, as Clarion records them: the send's own, read from the message log, and what
# came of the message later, kept for the journey by the store (`store.OUTCOME_EVENTS`).
SEND_EVENTS = frozenset({"_email.send", "_email.rejected", "_SMS.BUFFERED", "_SMS.FAILURE", "_journey.send"})
MESSAGE_EVENT_TYPES = SEND_EVENTS | store.OUTCOME_EVENTS
NOTHING_SENT = (DeliveryStatus.OPT_OUT.value, DeliveryStatus.DUPLICATE.value)
TEMPLATE_MEMBERS = {"EMAIL": "EmailTemplate", "SMS": "SMSTemplate", "PUSH": "PushTemplate"}
RETRYABLE = ("THROTTLED", "TEMPORARY_FAILURE")
MAX_RETRIES = 3  # then the last outcome is counted and the participant moves on


@dataclass(slots=True)
class Move:
    """Where one participant goes: `activity` None leaves the journey; `waited`: the timer of `activity` is set."""

    participant: ParticipantRow
    activity: str | None
    due_at: int | None
    waited: bool = False
    counts: dict[str, int] = field(default_factory=dict)  # the activity's metrics this move adds
    message_id: str | None = None
    attempts: int = 0  # sends tried at `activity` (a retried message stays there with its count)
    passed: dict[str, dict[str, int]] = field(default_factory=dict)  # activities gone through on the way: their metrics


@dataclass(frozen=True, slots=True)
class Journey:
    app_id: str
    id: str
    state: str
    definition: dict[str, Any]
    defaults: dict[str, Any]  # the project's JourneyLimits


def bucket(*parts: object) -> int:
    """A participant's stable number from 0 to 99 for one activity: a step computed again draws the same."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def wait_due(wait: dict[str, Any], now: datetime) -> int:
    if "WaitFor" in wait:
        return epoch_millis(now + parse_duration(wait["WaitFor"], "WaitFor"))
    return max(epoch_millis(now), epoch_millis(parse_instant(wait["WaitUntil"], "WaitUntil")))


class Steps:
    def __init__(
        self, db: Database, delivery: Delivery, members: SegmentMembers, segments: SegmentEngine, zones: ZoneEstimator
    ) -> None:
        self.db = db
        self.delivery = delivery
        self.members = members
        self.segments = segments
        self.zones = zones

    async def run(
        self, journey: Journey, activity_id: str, group: Sequence[ParticipantRow], now: datetime
    ) -> list[Move]:
        activity = journey.definition["Activities"][activity_id]
        kind = next(k for k in activity if k != "Description")
        body: dict[str, Any] = activity[kind]
        now_ms = epoch_millis(now)
        if kind in ("EMAIL", "SMS", "PUSH", "CUSTOM"):
            return await self._message(journey, activity_id, kind, body, group, now)
        if kind == "Holdout":
            return [self._holdout(journey.id, activity_id, body, p, now_ms) for p in group]
        if kind == "RandomSplit":
            return [self._random(journey.id, activity_id, body, p, now_ms) for p in group]
        # Wait, ConditionalSplit, MultiCondition: a participant arriving sets its timer; when it fires, it moves on.
        wait = body.get("WaitTime") if kind == "Wait" else body.get("EvaluationWaitTime")
        arriving = [p for p in group if wait and not p.waited]
        ready = [p for p in group if not (wait and not p.waited)]  # (not `p not in arriving`: quadratic)
        due = wait_due(wait, now) if arriving else now_ms  # type: ignore[arg-type]
        moves = [Move(p, activity_id, due, True, {"ENTERED": 1}) for p in arriving]
        if kind == "Wait":
            return moves + [Move(p, body.get("NextActivity"), now_ms, counts={"COMPLETED": 1}) for p in ready]
        return moves + await self._split(journey, kind, body, ready, now_ms, counted=bool(wait))

    def onward(self, journey: Journey, activity_id: str, moves: list[Move], now: datetime) -> list[Move]:
        """Moves on to activities that need nothing read go on through them in the same move: a Wait (or a split's
        EvaluationWaitTime) sets its timer, a Holdout or RandomSplit draws, until an activity that must read or
        send, or a timer. One claim and one commit instead of one per activity; the draws are the participant's
        own, so a step computed again agrees."""
        now_ms = epoch_millis(now)
        activities = journey.definition["Activities"]
        timers: dict[str, int] = {}  # a Wait's (or a split's evaluation) due time for those arriving now, once
        for index, move in enumerate(moves):
            for _ in range(len(activities)):  # journeys do not loop: at most every activity once
                target = move.activity
                if target is None or target == activity_id or move.waited or (move.due_at or 0) > now_ms:
                    break
                further = self._without_reads(journey, target, activities[target], move.participant, now, timers)
                if further is None:
                    break
                move = Move(
                    move.participant,
                    further.activity,
                    further.due_at,
                    further.waited,
                    move.counts,
                    move.message_id,
                    passed={**move.passed, target: further.counts},
                )
            moves[index] = move
        return moves

    def _without_reads(
        self,
        journey: Journey,
        activity_id: str,
        activity: dict[str, Any],
        p: ParticipantRow,
        now: datetime,
        timers: dict[str, int],
    ) -> Move | None:
        """The move an activity makes for a participant arriving now, if it needs nothing read; else None. `timers`
        keeps each wait's due time for this `now`, so a batch parses a duration once, not once per participant."""
        kind = next(k for k in activity if k != "Description")
        body: dict[str, Any] = activity[kind]
        if kind == "Holdout":
            return self._holdout(journey.id, activity_id, body, p, epoch_millis(now))
        if kind == "RandomSplit":
            return self._random(journey.id, activity_id, body, p, epoch_millis(now))
        wait = body.get("WaitTime") if kind == "Wait" else body.get("EvaluationWaitTime")
        if kind in ("Wait", "ConditionalSplit", "MultiCondition") and wait:
            if activity_id not in timers:
                timers[activity_id] = wait_due(wait, now)
            return Move(p, activity_id, timers[activity_id], True, {"ENTERED": 1})
        return None

    @staticmethod
    def _holdout(journey_id: str, activity_id: str, body: dict[str, Any], p: ParticipantRow, now_ms: int) -> Move:
        """That percentage of participants leave here; the draw is the participant's own, so a repeat agrees."""
        if bucket(journey_id, p.endpoint_key, p.entry, activity_id) < body["Percentage"]:
            return Move(p, None, None, counts={"ENTERED": 1, "HELD_OUT": 1})
        return Move(p, body.get("NextActivity"), now_ms, counts={"ENTERED": 1, "PASSED": 1})

    @staticmethod
    def _random(journey_id: str, activity_id: str, body: dict[str, Any], p: ParticipantRow, now_ms: int) -> Move:
        draw, floor = bucket(journey_id, p.endpoint_key, p.entry, activity_id), 0
        branches = body["Branches"]
        for number, branch in enumerate(branches, start=1):
            floor += branch["Percentage"]
            if draw < floor:
                return Move(p, branch.get("NextActivity"), now_ms, counts={"ENTERED": 1, f"Branch_{number}": 1})
        return Move(p, branches[-1].get("NextActivity"), now_ms, counts={"ENTERED": 1, f"Branch_{len(branches)}": 1})

    # Splits ---------------------------------------------------------------------------------------------------

    async def _split(
        self,
        journey: Journey,
        kind: str,
        body: dict[str, Any],
        group: Sequence[ParticipantRow],
        now_ms: int,
        counted: bool,
    ) -> list[Move]:
        """Evaluate now; `counted`: ENTERED was counted when the evaluation timer was set."""
        if not group:
            return []
        entered = {} if counted else {"ENTERED": 1}
        if kind == "ConditionalSplit":
            condition = body.get("Condition") or {}
            results = [await self._holds(journey, c, group) for c in condition.get("Conditions") or []]
            combine = any if condition.get("Operator") == "ANY" else all
            moves = []
            for index, p in enumerate(group):
                passed = combine(result[index] for result in results)
                target = body.get("TrueActivity") if passed else body.get("FalseActivity")
                moves.append(Move(p, target, now_ms, counts={**entered, "Branch_1" if passed else "Branch_2": 1}))
            return moves
        branches = body.get("Branches") or []
        results = [await self._holds(journey, branch.get("Condition") or {}, group) for branch in branches]
        moves = []
        for index, p in enumerate(group):
            # The first branch whose condition holds wins; none: the default path, counted after the branches.
            number = next((n for n, result in enumerate(results, start=1) if result[index]), len(branches) + 1)
            chosen = branches[number - 1] if number <= len(branches) else {"NextActivity": body.get("DefaultActivity")}
            target = chosen.get("NextActivity")
            moves.append(Move(p, target, now_ms, counts={**entered, f"Branch_{number}": 1}))
        return moves

    async def _holds(self, journey: Journey, condition: dict[str, Any], group: Sequence[ParticipantRow]) -> list[bool]:
        """One SimpleCondition, for each participant in order. A segment or endpoint-dimension condition holds for a
        participant when it holds for its endpoint or for any other endpoint of its user (ORed across them)."""
        app_id = journey.app_id
        if condition.get("EventCondition"):
            return await self._message_events(journey, condition["EventCondition"], group)
        if condition.get("SegmentCondition"):
            node = await self.segments.segment_plan(app_id, condition["SegmentCondition"]["SegmentId"])
        else:
            node = await self.segments.definition_plan(app_id, {"Dimensions": condition["segmentDimensions"]})
        people = await self.db.read(lambda tx: _people(tx, app_id, group))
        every = sorted({endpoint_id for ids in people.values() for endpoint_id in ids})
        found = await self.members.among(app_id, node, every, sendable_only=False)
        return [bool(found & people[p.endpoint_key]) for p in group]

    async def _message_events(
        self, journey: Journey, event: dict[str, Any], group: Sequence[ParticipantRow]
    ) -> list[bool]:
        """Whether the message an earlier activity sent each participant had one of these events: its send (the
        message log), an outcome of that very message, or an app's event naming the journey and the activity (push
        opens). Both stay as long as the journey does, whatever retention prunes from the event log."""
        source = event["MessageActivity"]
        dimension = (event.get("Dimensions") or {}).get("EventType") or {}
        types = [t for t in dimension.get("Values") or [] if t in MESSAGE_EVENT_TYPES]
        later = sorted(set(types) & store.OUTCOME_EVENTS)
        keys = [p.endpoint_key for p in group]

        def read(tx: Transaction) -> tuple[dict[tuple[str, int], str], dict[str, Logged], set[tuple[str, str]]]:
            sent = store.messages_of(tx, journey.app_id, journey.id, source, keys)
            logged = store.logged_messages(tx, sorted(set(sent.values())))
            watched = sorted(set(keys) | {message.recipient for message in logged.values()})
            outcomes = store.outcomes_of(tx, journey.app_id, journey.id, source, watched, later) if later else set()
            return sent, logged, outcomes

        sent, logged, outcomes = await self.db.read(read)
        held = (dimension.get("DimensionType") or "INCLUSIVE") == "INCLUSIVE"
        results = []
        for p in group:
            message_id = sent.get((p.endpoint_key, p.entry), "")
            message = logged.get(message_id)
            recipient = message.recipient if message else p.endpoint_key
            marks = {(recipient, message_id), (recipient, f"run:{p.run_id}"), (recipient, "run:*")}
            happened = bool(marks & outcomes) or (message is not None and bool(_send_events(message) & set(types)))
            results.append(happened if held else not happened)
        return results

    # Messages -------------------------------------------------------------------------------------------------

    async def _message(
        self,
        journey: Journey,
        activity_id: str,
        kind: str,
        body: dict[str, Any],
        group: Sequence[ParticipantRow],
        now: datetime,
    ) -> list[Move]:
        definition, app_id = journey.definition, journey.app_id
        next_activity, now_ms = body.get("NextActivity"), epoch_millis(now)
        custom_types = set(body.get("EndpointTypes") or [])
        recipients, templates = await self.db.read(
            lambda tx: (_recipients(tx, app_id, kind, custom_types, group), _templates(tx, kind, body))
        )
        moves: list[Move] = []
        sendable: list[tuple[ParticipantRow, EndpointRow]] = []
        taken: set[str] = set()
        quiet = QuietTime(**{k.lower(): v for k, v in (definition.get("QuietTime") or {}).items()})
        methods = definition.get("TimezoneEstimationMethods") or []
        scheduled = bool(definition.get("SendingSchedule"))
        open_hours = (definition.get("OpenHours") or {}).get(kind) if scheduled else None
        closed = ((definition.get("ClosedDays") or {}).get(kind) or []) if scheduled else []
        capped = await self._over_timeframe_cap(journey, recipients, now)
        for p in group:
            row = recipients.get(p.endpoint_key)
            zone = self.zones.zone(row, methods) if row is not None else None
            opens = next_sending_time(now, zone, open_hours, closed) if row is not None and scheduled else None
            if row is None:
                moves.append(Move(p, next_activity, now_ms, counts={"ENDPOINT_CHANNEL_MISMATCH": 1}))
            elif row.id in taken:  # two participants of one user: the message goes once
                moves.append(Move(p, next_activity, now_ms, counts={"DUPLICATE": 1}))
            elif row.id in capped:
                moves.append(Move(p, next_activity, now_ms, counts={"LIMIT_REACHED": 1}))
            elif opens is not None:  # outside open hours, or on a closed day: it waits here for the opening
                moves.append(Move(p, activity_id, epoch_millis(opens), counts={"SENDING_SCHEDULE_WAIT": 1}))
            elif quiet.is_set and quiet.covers(now, zone):
                if definition.get("WaitForQuietTime"):
                    due = epoch_millis(quiet_time_ends(now, quiet, zone))
                    moves.append(Move(p, activity_id, due, counts={"QUIET_TIME_WAIT": 1}))
                else:
                    moves.append(Move(p, next_activity, now_ms, counts={"QUIET_TIME": 1}))
            else:
                taken.add(row.id)
                sendable.append((p, row))
        limits = definition.get("Limits") or {}
        policy = SendPolicy(
            Limits(
                daily=limits.get("DailyCap") or journey.defaults.get("DailyCap") or None,
                total=limits.get("TotalCap") or journey.defaults.get("TotalCap") or None,
            )
        )
        by_entry: dict[tuple[int, int], list[tuple[ParticipantRow, EndpointRow]]] = {}
        for p, row in sendable:
            by_entry.setdefault((p.entry, p.attempts), []).append((p, row))
        attribution = Attribution(journey_id=journey.id)
        for (entry, attempts), pairs in by_entry.items():
            run_id = pairs[0][0].run_id
            audience = await self.delivery.audience(
                app_id, [row for _, row in pairs], policy, attribution, now, now, request_id=run_id
            )
            targets = [t for slot in audience.targets.values() for t in slot]
            kept = {t.endpoint_id for t in targets}
            moves += [
                Move(p, next_activity, now_ms, counts={"LIMIT_REACHED": 1}) for p, row in pairs if row.id not in kept
            ]
            if not targets:
                continue
            context = {
                "journey_id": journey.id,
                "journey_run_id": run_id,
                "journey_activity_id": activity_id,
                "journey_activity_type": kind,
            }
            if kind == "CUSTOM":  # the custom channel's webhook event names the journey as Pinpoint's does
                context |= {"JourneyId": journey.id, "ActivityId": activity_id}
            send = Send(
                app_id,
                targets,
                MessageBuilder(_message_configuration(kind, body), templates),
                now,
                context=context,
                # Each try of a retried message has its own key: the send path would answer the first outcome.
                trace_key=f"journey:{journey.id}:{activity_id}:{entry}" + (f"#retry{attempts}" if attempts else ""),
                attribution=attribution,
                custom_delivery=CustomDelivery(delivery_uri=body["DeliveryUri"], endpoint_types=tuple(custom_types))
                if kind == "CUSTOM"
                else None,
                messages_per_second=limits.get("MessagesPerSecond"),
            )
            sent = await self.delivery.send(send)
            participants = {row.id: p for p, row in pairs}
            for target in targets:
                result = sent.results[target.message_id]
                p = participants[target.endpoint_id]  # type: ignore[index]
                counts = {result["DeliveryStatus"]: 1}
                if p.retried and result["MessageId"] == target.message_id:
                    counts["POSSIBLE_DUPLICATE"] = 1  # sent again: the stepper that died may have sent it already
                if result["DeliveryStatus"] in RETRYABLE and attempts < MAX_RETRIES:
                    due = now_ms + 1000 * 2 ** (attempts + 1)  # 2, 4, 8 s: the participant waits here to try again
                    moves.append(Move(p, activity_id, due, counts={"RETRIED": 1}, attempts=attempts + 1))
                    continue
                moves.append(Move(p, next_activity, now_ms, counts=counts, message_id=result["MessageId"]))
        return moves

    async def _over_timeframe_cap(
        self, journey: Journey, recipients: dict[str, EndpointRow], now: datetime
    ) -> set[str]:
        """Endpoint ids this journey already sent TimeframeCap.Cap messages in the last TimeframeCap.Days days (the
        project's JourneyLimits filling what the journey leaves unset)."""
        limits = journey.definition.get("Limits") or {}
        timeframe = limits.get("TimeframeCap") or journey.defaults.get("TimeframeCap") or {}
        cap, days = timeframe.get("Cap"), timeframe.get("Days")
        if not cap or not days or not recipients:
            return set()
        ids = sorted({row.id for row in recipients.values()})
        since = iso_millis(now - timedelta(days=days))
        sent = await self.db.read(
            lambda tx: message_store.sent_per_endpoint(tx, journey.app_id, "journey_id", journey.id, ids, since)
        )
        return {endpoint_id for endpoint_id, count in sent.items() if count >= cap}


def _send_events(message: Logged) -> set[str]:
    """The events a logged message's send recorded (clarion/channels/outcomes.py, `send_events`)."""
    if message.status in NOTHING_SENT:
        return set()
    sent = send_event_type(message.channel, DeliveryStatus(message.status))
    return {"_journey.send", sent} if sent else {"_journey.send"}


def _people(tx: Transaction, app_id: str, group: Sequence[ParticipantRow]) -> dict[str, set[str]]:
    """Participant endpoint key -> the endpoint ids that stand for it: its own, and its user's others."""
    rows = endpoint_store.fetch(tx, app_id, [p.endpoint_key for p in group])
    users = endpoint_store.of_users(tx, app_id, sorted({row.user_id for row in rows.values() if row.user_id}))
    people = {p.endpoint_key: {p.endpoint_id} for p in group}
    for key, row in rows.items():
        people[key] |= {other.id for other in users.get(row.user_id or "", [])}
    return people


def _templates(tx: Transaction, kind: str, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    member = TEMPLATE_MEMBERS.get(kind)
    if member is None:
        return {}
    reference = {
        "Name": body["TemplateName"],
        **({"Version": body["TemplateVersion"]} if "TemplateVersion" in body else {}),
    }
    return load_templates(tx, {member: reference})


def _recipients(
    tx: Transaction, app_id: str, kind: str, custom_types: set[str], group: Sequence[ParticipantRow]
) -> dict[str, EndpointRow]:
    """Participant endpoint key -> the endpoint its message goes to: itself when it is of the activity's channel,
    else the first (by id) sendable endpoint of its user that is; none when neither is."""
    rows = endpoint_store.fetch(tx, app_id, [p.endpoint_key for p in group])
    users = {
        row.user_id for row in rows.values() if row.user_id and not _channel_fits(kind, row.channel_type, custom_types)
    }
    by_user = endpoint_store.of_users(tx, app_id, sorted(users))
    recipients = {}
    for key, row in rows.items():
        if _channel_fits(kind, row.channel_type, custom_types):
            recipients[key] = row
            continue
        others = sorted(by_user.get(row.user_id or "", []), key=lambda e: e.id)
        fitting = [
            e for e in others if _channel_fits(kind, e.channel_type, custom_types) and why_not_sendable(e) is None
        ]
        if fitting:
            recipients[key] = fitting[0]
    return recipients


def _channel_fits(kind: str, channel: str | None, custom_types: set[str]) -> bool:
    """Which endpoints a message activity sends to; the others pass through to its next activity."""
    if kind == "PUSH":
        return channel in PUSH_CHANNELS
    if kind == "CUSTOM":
        return not custom_types or channel in custom_types
    return channel == kind


def _message_configuration(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """An activity's MessageConfig as the send path's message configuration (the template supplies the content)."""
    config = body.get("MessageConfig") or {}
    if kind == "EMAIL" and config.get("FromAddress"):
        return {"EmailMessage": {"FromAddress": config["FromAddress"]}}
    if kind == "SMS":
        return {"SMSMessage": {k: v for k, v in config.items() if v}}
    if kind == "CUSTOM":
        return {"CustomMessage": {"Data": config.get("Data") or ""}}
    if kind == "PUSH" and config.get("TimeToLive"):  # over the template's members: only how long it may wait
        return {"DefaultPushNotificationMessage": {"TimeToLive": int(config["TimeToLive"])}}
    return {}
