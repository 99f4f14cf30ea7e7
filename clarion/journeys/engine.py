"""The journey engine: who enters, and the durable timers that move participants through the activities.

State lives in the store, not in memory: each participant is a row of `journey_participants` holding the activity
it is at and when it is due there (a Wait's end, a split's evaluation time, now for a message). A pass
(`tick`, every `journeys.poll_seconds` and whenever a journey or an event wakes it):

1. **Segment entry**: an ACTIVE journey whose `next_entry_at` is due lets in its segment's members that never
   entered (a new run each time; `RefreshFrequency` sets the next one), then is CLOSED if it will not refresh.
2. **Steps**: due participants are leased (a lease that runs out makes them due again), grouped by journey and
   activity, stepped (clarion/journeys/steps.py) and moved on in one commit per group that also adds the metrics.
   A move commits only under its lease, so each step of each participant is committed exactly once; messages carry
   a trace key, so a step computed again after a crash re-sends only what was in flight.
3. **Completion**: a CLOSED journey with nobody left in it is COMPLETED.

Event entry: PutEvents keeps the events that start one of the project's journeys in `journey_inbox`, in the
transaction that stores them, and wakes the engine; a pass lets the matching endpoints in (within the re-entry
rules) and removes the held events in one commit, so an accepted event starts its journey exactly once whatever
happens to either process.

A step that raises is tried again later (`journeys.step_retries` times, backing off from
`journeys.step_retry_seconds`), then given up: the participant leaves with its step marked failed, counted
(`STEP_FAILED`, `ENDPOINT_FAILED`), logged and in `clarion_journey_step_failures_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from clarion.campaigns.events import filter_matches
from clarion.campaigns.members import SegmentMembers
from clarion.campaigns.rules import parse_instant
from clarion.campaigns.schedule import LOCAL_TIME_LEAD, endpoint_send_time
from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.domain_events import Change, JourneyChanged, JourneyEntriesHeld, SegmentChanged
from clarion.endpoints.service import endpoint_key
from clarion.errors import NotFound
from clarion.journeys import entry_filter
from clarion.journeys.config import JourneySettings
from clarion.journeys.definition import JourneyState
from clarion.journeys.rules import parse_duration
from clarion.journeys.steps import Journey, Move, Steps
from clarion.journeys.zones import ZoneEstimator
from clarion.logs import get_logger
from clarion.metrics import Metrics
from clarion.outbound.client import OutboundClient, OutboundError
from clarion.projects.service import stored_settings
from clarion.queue.passes import run_passes
from clarion.store import endpoints as endpoint_store
from clarion.store import journeys as store
from clarion.store.database import Database, Transaction
from clarion.store.endpoints import EndpointRow
from clarion.store.journeys import Entries, ParticipantRow

DUE_PER_PASS = 20
NO_ENTRIES = Entries(0, 0, False, "")
LATEST_ZONE = "Etc/GMT+12"  # UTC-12, where a wall-clock time comes last
HELD_PER_PASS = 1000  # held events read per round of event entry
log = get_logger("clarion.journeys")


def new_run_id(now: datetime) -> str:
    """32 hex digits that sort in creation order (GetJourneyRuns lists runs so)."""
    return f"{epoch_millis(now):012x}{uuid.uuid4().hex[:20]}"


def first_entry_ms(definition: dict[str, Any], now: datetime) -> int | None:
    """When a journey made ACTIVE first lets its segment in: its StartTime (with LocalTime, where that wall-clock
    time comes first, UTC+14), or now; None for an event start."""
    if not (definition.get("StartCondition") or {}).get("SegmentStartCondition"):
        # An event start has no segment to let in; its timer is its end, when it closes to new entrants.
        ends = last_end(definition)
        return epoch_millis(ends) if ends else None
    start = (definition.get("Schedule") or {}).get("StartTime")
    if not start:
        return epoch_millis(now)
    starts = parse_instant(start, "Schedule.StartTime") - (
        LOCAL_TIME_LEAD if definition.get("LocalTime") else timedelta()
    )
    return max(epoch_millis(now), epoch_millis(starts))


def schedule_bound(
    definition: dict[str, Any], member: str, row: EndpointRow | None, zones: ZoneEstimator
) -> datetime | None:
    """Schedule.StartTime or EndTime for one endpoint: the instant, or with LocalTime that wall-clock time on the
    endpoint's clock (its Demographic.Timezone or one estimated, else the schedule's Timezone)."""
    schedule = definition.get("Schedule") or {}
    if not schedule.get(member):
        return None
    moment = parse_instant(schedule[member], f"Schedule.{member}")
    local = bool(definition.get("LocalTime"))
    zone = zones.zone(row, definition.get("TimezoneEstimationMethods") or []) if local and row else None
    return endpoint_send_time(moment, local, schedule.get("Timezone"), zone)


def last_end(definition: dict[str, Any]) -> datetime | None:
    """When entries stop everywhere: Schedule.EndTime, or with LocalTime where its wall-clock time comes last."""
    schedule = definition.get("Schedule") or {}
    if not schedule.get("EndTime"):
        return None
    moment = parse_instant(schedule["EndTime"], "Schedule.EndTime")
    return endpoint_send_time(moment, bool(definition.get("LocalTime")), schedule.get("Timezone"), LATEST_ZONE)


def _start_due(
    definition: dict[str, Any], rows: dict[str, EndpointRow], key: str, now: datetime, zones: ZoneEstimator
) -> int:
    """When an entrant takes its first step: now, or with LocalTime the StartTime's wall-clock time on its own
    clock when that is still to come."""
    starts = schedule_bound(definition, "StartTime", rows.get(key), zones) if definition.get("LocalTime") else None
    return max(epoch_millis(now), epoch_millis(starts)) if starts else epoch_millis(now)


class JourneyEngine:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        steps: Steps,
        members: SegmentMembers,
        outbound: OutboundClient,
        settings: JourneySettings,
        metrics: Metrics,
    ) -> None:
        self.db = db
        self.clock = clock
        self.steps = steps
        self.members = members
        self.outbound = outbound
        self.settings = settings
        self.metrics = metrics
        self._wakeup = asyncio.Event()

    def wake(self, _: JourneyChanged | JourneyEntriesHeld) -> None:
        """A journey was written, or PutEvents held events that start one (in any process of the group)."""
        self._wakeup.set()

    async def segment_changed(self, event: SegmentChanged) -> None:
        """RefreshOnSegmentUpdate: journeys starting from this segment let its new members in at once (a PAUSED
        one when it resumes)."""
        now_ms = epoch_millis(self.clock.now())

        def work(tx: Transaction) -> None:
            for row in store.active_of_app(tx, event.app_id, paused=True):
                definition = msgspec.json.decode(row.definition)
                start = (definition.get("StartCondition") or {}).get("SegmentStartCondition") or {}
                if definition.get("RefreshOnSegmentUpdate") and start.get("SegmentId") == event.segment_id:
                    paused = row.state == JourneyState.PAUSED
                    store.set_next_entry(tx, row.app_id, row.id, now_ms, paused=paused)

        await self.db.write(work)
        self._wakeup.set()

    async def run(self) -> None:
        """Forever (until cancelled): the loop `Services.background` runs."""
        await run_passes(self.tick, self._wakeup, self.settings.poll_seconds, log, "journey engine pass failed")

    async def tick(self) -> int:
        """One pass: due segment entries, held event entries, then due steps until none is due, then completions;
        steps committed."""
        now = self.clock.now()
        due = await self.db.read(lambda tx: store.entries_due(tx, epoch_millis(now), DUE_PER_PASS))
        for app_id, journey_id in due:
            await self._enter_segment(app_id, journey_id, now)
        while await self._enter_held(now):
            pass
        stepped = 0
        while moved := await self._step_due(now):
            stepped += moved
            # Events that arrive while a backlog is stepped let their endpoints in between batches, not after it.
            while await self._enter_held(now):
                pass
        if await self.db.read(lambda tx: store.closing(tx, 1)):  # read first: an idle pass writes nothing
            await self.db.write(lambda tx: self._complete(tx, now))
        return stepped

    # Entry --------------------------------------------------------------------------------------------------

    async def _enter_segment(self, app_id: str, journey_id: str, now: datetime) -> None:
        now_ms, at = epoch_millis(now), iso_millis(now)
        run_id = new_run_id(now)

        def close(tx: Transaction) -> None:
            """Running, but closed to new first-time entrants; COMPLETED once nobody is left (`_complete`)."""
            store.set_next_entry(tx, app_id, journey_id, None)
            store.set_state(tx, app_id, journey_id, JourneyState.CLOSED, None)
            tx.record(JourneyChanged(app_id, journey_id, Change.UPDATED))

        def begin(tx: Transaction) -> dict[str, Any] | None:
            row = store.get(tx, app_id, journey_id, lock=True)
            if row is None or row.state != JourneyState.ACTIVE or row.next_entry_at is None:
                return None
            if row.next_entry_at > now_ms:
                return None
            definition = msgspec.json.decode(row.definition)
            ends = last_end(definition)
            over = ends is not None and now > ends
            if over or not (definition.get("StartCondition") or {}).get("SegmentStartCondition"):
                close(tx)  # past its EndTime (an event start's timer is its end): no more entrants
                return None
            # Held for a minute: a process that dies mid-entry leaves it to the next pass after that.
            store.set_next_entry(tx, app_id, journey_id, now_ms + 60_000)
            store.set_runs_status(tx, app_id, journey_id, "COMPLETED", at, only="RUNNING")
            store.insert_run(tx, app_id, journey_id, run_id, "RUNNING", at)
            return definition

        definition = await self.db.write(begin)
        if definition is None:
            return
        segment_id = definition["StartCondition"]["SegmentStartCondition"]["SegmentId"]
        try:
            # Every member, opted out and inactive ones too: the run counts why those do not enter.
            async for page in self.members.pages(app_id, segment_id, None, 1000, sendable_only=False):
                await self.db.write(
                    lambda tx, ids=page: self._admit_once(tx, app_id, journey_id, run_id, definition, ids, now)
                )
        except NotFound:
            log.warning("journey segment is gone", app_id=app_id, journey=journey_id, segment=segment_id)
        ends = last_end(definition)
        ends_ms = epoch_millis(ends) if ends else None
        refresh = definition.get("RefreshFrequency")
        following = epoch_millis(now + parse_duration(refresh, "RefreshFrequency")) if refresh else None
        if following is not None and ends_ms is not None and following > ends_ms:
            following = None
        # RefreshOnSegmentUpdate keeps the journey open to the segment's new members (segment_changed lets them in)
        # until its EndTime, when the pass that this timer makes due closes it.
        on_update = bool(definition.get("RefreshOnSegmentUpdate"))
        if following is None and on_update and ends_ms is not None:
            following = ends_ms + 1

        def finish(tx: Transaction) -> None:
            row = store.get(tx, app_id, journey_id, lock=True)
            if row is None or row.state != JourneyState.ACTIVE:
                return
            store.set_next_entry(tx, app_id, journey_id, following)
            if following is None and not on_update:  # no first-time entrants any more
                close(tx)

        await self.db.write(finish)
        self._wakeup.set()

    def _admit_once(
        self,
        tx: Transaction,
        app_id: str,
        journey_id: str,
        run_id: str,
        definition: dict[str, Any],
        endpoint_ids: list[str],
        now: datetime,
    ) -> None:
        """Segment members who never entered the journey enter it (a refresh lets in only new ones); a user enters
        once, by the first (by id) of its endpoints the segment holds, so participants are people. The others are
        counted by why they did not enter (entry_filter)."""
        keys = {endpoint_key(e): e for e in endpoint_ids}
        known = store.entries_of(tx, app_id, journey_id, list(keys))
        rows = endpoint_store.fetch(tx, app_id, list(keys))
        users = _user_entries(tx, app_id, journey_id, rows)
        counts: dict[str, int] = defaultdict(int, {entry_filter.PRODUCED: len(endpoint_ids)})
        entrants = []
        local_end = bool(definition.get("LocalTime") and (definition.get("Schedule") or {}).get("EndTime"))
        for key in sorted(keys, key=lambda k: keys[k]):
            row = rows.get(key)
            if row is None:  # deleted since the reading
                continue
            entries = users.get(row.user_id) if row.user_id else known.get(key)
            reason = entry_filter.unreachable(row)
            if reason is None and entries is not None:
                reason = entry_filter.entered_before(entries, run_id)
            ends = schedule_bound(definition, "EndTime", row, self.steps.zones) if local_end and not reason else None
            if ends is not None and now > ends:  # the journey has ended on this endpoint's clock
                reason = "ENDPOINT_TIMEZONE_MISMATCH"
            if reason is not None:
                counts[reason] += 1
                continue
            if row.user_id:
                users[row.user_id] = Entries(1, epoch_millis(now), True, run_id)
            entrants.append((key, 1, keys[key]))
        start = definition["StartActivity"]
        by_due: dict[int, list[tuple[str, int, str]]] = defaultdict(list)
        for entrant in entrants:
            by_due[_start_due(definition, rows, entrant[0], now, self.steps.zones)].append(entrant)
        for due_at, group in by_due.items():
            store.add_participants(tx, app_id, journey_id, run_id, start, due_at, group)
        counts["ENDPOINT_ENTERED"] = len(entrants)
        store.add_metrics(tx, app_id, journey_id, run_id, "", counts)
        store.touch_run(tx, app_id, journey_id, run_id, iso_millis(now))

    async def _enter_held(self, now: datetime) -> int:
        """Event starts: the endpoints of held events that match an ACTIVE journey's EventStartCondition enter it,
        and the events are released in the same commit; how many events were taken."""
        held = await self.db.read(lambda tx: store.held_events(tx, HELD_PER_PASS))
        by_app: dict[str, list[store.HeldEvent]] = defaultdict(list)
        for item in held:
            by_app[item.app_id].append(item)
        for app_id, items in by_app.items():
            plans = await self._event_entries(app_id, items)
            seqs = [item.seq for item in items]
            with contextlib.suppress(_TakenElsewhere):
                await self.db.write(lambda tx, s=seqs, p=plans: self._admit_held(tx, s, p, now))
        return len(held)

    async def _event_entries(self, app_id: str, items: list[store.HeldEvent]) -> list[EventPlan]:
        """For each ACTIVE event journey that some of these events start (the event passes its filter and arrived
        within its Schedule), the endpoint ids of those events in their order, and of them those whose endpoint is
        in its segment when one is named."""
        rows = await self.db.read(lambda tx: store.active_of_app(tx, app_id))
        journeys = [(row, msgspec.json.decode(row.definition)) for row in rows]
        journeys = [(row, d) for row, d in journeys if (d.get("StartCondition") or {}).get("EventStartCondition")]
        endpoints: dict[str, EndpointRow] = {}
        if any(definition.get("LocalTime") for _, definition in journeys):  # schedules read on each one's clock
            keys = sorted({endpoint_key(item.endpoint_id) for item in items})
            endpoints = await self.db.read(lambda tx: endpoint_store.fetch(tx, app_id, keys))
        events = [(item, msgspec.json.decode(item.event)) for item in items]
        zones = self.steps.zones
        plans = []
        for row, definition in journeys:
            start = definition["StartCondition"]["EventStartCondition"]
            matching = [
                item.endpoint_id
                for item, event in events
                if _in_schedule(definition, item.arrived_at, endpoints.get(endpoint_key(item.endpoint_id)), zones)
                and filter_matches(start["EventFilter"], event)
            ]
            inside = matching
            if matching and start.get("SegmentId"):
                unique = list(dict.fromkeys(matching))
                found = await self.members.holds(app_id, start["SegmentId"], None, unique, sendable_only=False)
                inside = [e for e in matching if e in found]
            if matching:
                plans.append(EventPlan(row, definition, inside, len(matching)))
        return plans

    def _admit_held(
        self,
        tx: Transaction,
        seqs: list[int],
        plans: list[EventPlan],
        now: datetime,
    ) -> None:
        if store.release_events(tx, seqs) != len(seqs):
            raise _TakenElsewhere  # another engine let them in meanwhile (a leader that lost its lease): roll back
        for plan in plans:
            current = store.get(tx, plan.row.app_id, plan.row.id, lock=True)
            if current is not None and current.state == JourneyState.ACTIVE:
                self._admit_event(tx, plan, now)

    def _admit_event(self, tx: Transaction, plan: EventPlan, now: datetime) -> None:
        """Enter within the limits: never while still in the journey, at most EndpointReentryCap times (0 or unset:
        no cap), and no sooner than EndpointReentryInterval after the last entry. Participants are people: for an
        endpoint with a user these count the user's entries, through any of its endpoints. Endpoint ids in the
        order of their events: a second event of an endpoint that just entered finds it in the journey."""
        row, definition, endpoint_ids = plan.row, plan.definition, plan.endpoint_ids
        app_id, journey_id, now_ms = row.app_id, row.id, epoch_millis(now)
        limits = definition.get("Limits") or {}
        cap = limits.get("EndpointReentryCap") or 0
        interval = limits.get("EndpointReentryInterval")
        gap = int(parse_duration(interval, "EndpointReentryInterval").total_seconds() * 1000) if interval else 0
        run_id = store.latest_run(tx, app_id, journey_id)
        if run_id is None:
            run_id = new_run_id(now)
            store.insert_run(tx, app_id, journey_id, run_id, "RUNNING", iso_millis(now))
        keys = sorted({endpoint_key(e) for e in endpoint_ids})
        known = store.entries_of(tx, app_id, journey_id, keys)
        rows = endpoint_store.fetch(tx, app_id, keys)
        users = _user_entries(tx, app_id, journey_id, rows)
        counts: dict[str, int] = defaultdict(int, {entry_filter.PRODUCED: plan.produced})
        counts["FILTERED_OUT_BY_SEGMENT"] = plan.produced - len(endpoint_ids)
        entrants = []
        for endpoint_id in endpoint_ids:
            key = endpoint_key(endpoint_id)
            own = known.get(key, NO_ENTRIES)
            user = rows[key].user_id if key in rows else None
            entries = users.get(user, NO_ENTRIES) if user else own
            reason = entry_filter.unreachable(rows[key]) if key in rows else None
            if reason is not None:
                counts[reason] += 1
            elif entries.active:  # it, or another endpoint of its user, is in the journey
                counts["ACTIVE_ENDPOINT_REJECTED"] += 1
            elif (cap and entries.count >= cap) or (entries.count and now_ms - entries.last_ms < gap):
                counts["REENTRY_CAP_EXCEEDED"] += 1
            else:
                entrants.append((key, own.count + 1, endpoint_id))
                known[key] = Entries(own.count + 1, now_ms, True, run_id)
                if user:
                    users[user] = Entries(entries.count + 1, now_ms, True, run_id)
        counts["ENDPOINT_ENTERED"] = len(entrants)
        store.add_participants(tx, app_id, journey_id, run_id, definition["StartActivity"], now_ms, entrants)
        store.add_metrics(tx, app_id, journey_id, run_id, "", {name: n for name, n in counts.items() if n})
        store.touch_run(tx, app_id, journey_id, run_id, iso_millis(now))

    # Steps --------------------------------------------------------------------------------------------------

    async def _step_due(self, now: datetime) -> int:
        """Lease the due participants, step them by journey and activity, commit each group; how many moved."""
        now_ms = epoch_millis(now)
        if not await self.db.read(lambda tx: store.any_due(tx, now_ms)):
            return 0  # nothing due: no write (a claim is one, even when it leases nobody)
        token = uuid.uuid4().hex
        lease_ms = int(self.settings.lease_seconds * 1000)
        claimed = await self.db.write(
            lambda tx: store.claim_due(tx, now_ms, self.settings.step_batch, token, now_ms + lease_ms)
        )
        if not claimed:
            return 0
        groups: dict[tuple[str, str, str], list[ParticipantRow]] = defaultdict(list)
        for participant in claimed:
            groups[(participant.app_id, participant.journey_id, participant.activity_id)].append(participant)
        journeys: dict[tuple[str, str], Journey | None] = {}
        moved = 0
        for (app_id, journey_id, activity_id), group in groups.items():
            if (app_id, journey_id) not in journeys:
                journeys[(app_id, journey_id)] = await self._journey(app_id, journey_id)
            journey = journeys[(app_id, journey_id)]
            if journey is None:
                continue  # deleted meanwhile: its participants went with it
            if journey.state == JourneyState.CANCELLED:
                moves = [Move(p, None, None) for p in group]  # in flight at the cancel: it leaves now
            elif journey.state == JourneyState.PAUSED:  # a lease that ran out during the pause: set aside again
                moves = [Move(p, p.activity_id, now_ms, p.waited, attempts=p.attempts) for p in group]
            else:
                try:
                    moves = await self._run_activity(journey, activity_id, group, now)
                except Exception as error:  # one activity's failure must not stop the others
                    log.exception("journey_step_failed", app_id=app_id, journey=journey_id, activity=activity_id)
                    await self._failed(journey, activity_id, group, token, now, error)
                    continue
            moved += await self.db.write(lambda tx, j=journey, a=activity_id, m=moves: _commit(tx, j, a, m, token, now))
        return moved

    async def _failed(
        self,
        journey: Journey,
        activity_id: str,
        group: list[ParticipantRow],
        token: str,
        now: datetime,
        error: Exception,
    ) -> None:
        """A step that raised: its participants try it again later, backing off, until `step_retries` retries have
        failed too; then they leave the journey with the step marked failed, counted, logged and measured."""
        now_ms, retries = epoch_millis(now), self.settings.step_retries
        base_ms = int(self.settings.step_retry_seconds * 1000)

        def work(tx: Transaction) -> tuple[int, int]:
            paused = _paused(tx, journey)
            activity_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            left: dict[str, int] = defaultdict(int)
            retried = gave_up = 0
            failed = [
                (p.endpoint_key, p.entry, None if p.failures >= retries else now_ms + base_ms * 2**p.failures)
                for p in group
            ]
            changed = store.fail_steps(tx, journey.app_id, journey.id, token, failed, paused=paused)
            for p in group:
                if (p.endpoint_key, p.entry) not in changed:
                    continue  # the lease was lost
                if p.failures >= retries:
                    gave_up += 1
                    activity_counts[p.run_id]["STEP_FAILED"] += 1
                    left[p.run_id] += 1
                else:
                    retried += 1
                    activity_counts[p.run_id]["STEP_RETRIED"] += 1
            for run_id, counts in activity_counts.items():
                store.add_metrics(tx, journey.app_id, journey.id, run_id, activity_id, counts)
            for run_id, count in left.items():
                store.add_metrics(tx, journey.app_id, journey.id, run_id, "", {"ENDPOINT_FAILED": count})
            return retried, gave_up

        retried, gave_up = await self.db.write(work)
        self.metrics.journey_step_failures.labels("retried").inc(retried)
        self.metrics.journey_step_failures.labels("gave_up").inc(gave_up)
        if gave_up:
            log.error(
                "journey_step_gave_up",
                app_id=journey.app_id,
                journey=journey.id,
                activity=activity_id,
                participants=gave_up,
                tries=retries + 1,
                error=repr(error)[:500],
            )

    async def _journey(self, app_id: str, journey_id: str) -> Journey | None:
        def read(tx: Transaction) -> Journey | None:
            row = store.get(tx, app_id, journey_id)
            if row is None:
                return None
            defaults = stored_settings(tx, app_id).get("JourneyLimits") or {}
            return Journey(app_id, journey_id, row.state, msgspec.json.decode(row.definition), defaults)

        return await self.db.read(read)

    async def _run_activity(
        self, journey: Journey, activity_id: str, group: Sequence[ParticipantRow], now: datetime
    ) -> list[Move]:
        activity = journey.definition["Activities"][activity_id]
        if "ContactCenter" not in activity:
            moves = await self.steps.run(journey, activity_id, group, now)
        else:
            moves = await self._contact_center(journey, activity_id, activity["ContactCenter"], group, now)
        return self.steps.onward(journey, activity_id, moves, now)

    async def _contact_center(
        self,
        journey: Journey,
        activity_id: str,
        body: dict[str, Any],
        group: Sequence[ParticipantRow],
        now: datetime,
    ) -> list[Move]:
        """The stand-in for Amazon Connect: the participants are POSTed to `journeys.contact_center_url`, at least
        once. A call that fails (no 2xx, or no answer) keeps them at the activity and is made again later, backing
        off as a failing step does (`journeys.step_retries`, `journeys.step_retry_seconds`): the retry is their timer
        in the store, so it survives a restart. Then they are counted FAILED and move on."""
        url = self.settings.contact_center_url
        payload = {
            "ApplicationId": journey.app_id,
            "JourneyId": journey.id,
            "JourneyActivityId": activity_id,
            "JourneyChannelSettings": journey.definition.get("JourneyChannelSettings") or {},
            "Participants": [{"EndpointId": p.endpoint_id, "RunId": p.run_id, "Entry": p.entry} for p in group],
        }
        error = "no journeys.contact_center_url"
        if url:
            try:
                async with self.outbound.open(
                    "POST",
                    url,
                    timeout=15,
                    max_bytes=65_536,
                    body=json.dumps(payload).encode(),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    error = "" if 200 <= response.status < 300 else f"HTTP {response.status}"
            except OutboundError as failure:
                error = str(failure)
        now_ms, retries = epoch_millis(now), self.settings.step_retries
        base_ms = int(self.settings.step_retry_seconds * 1000)
        moves: list[Move] = []
        outcomes: dict[str, int] = defaultdict(int)
        for p in group:
            counts = {} if p.attempts else {"ENTERED": 1}  # counted when it arrives, not at each try
            outcome = "retried" if error and p.attempts < retries else "failed" if error else "successful"
            outcomes[outcome] += 1
            if outcome == "retried":
                counts["RETRIED"] = 1
                due = now_ms + base_ms * 2**p.attempts
                moves.append(Move(p, activity_id, due, counts=counts, attempts=p.attempts + 1))
            else:
                counts["FAILED" if error else "SUCCESSFUL"] = 1
                moves.append(Move(p, body.get("NextActivity"), now_ms, counts=counts))
        for outcome, count in outcomes.items():
            self.metrics.journey_contact_center.labels(outcome).inc(count)
        if error:
            fields = {"app_id": journey.app_id, "journey": journey.id, "activity": activity_id, "error": error[:500]}
            if outcomes["retried"]:
                log.warning("journey_contact_center_retry", participants=outcomes["retried"], **fields)
            if outcomes["failed"]:
                log.error("journey_contact_center_failed", participants=outcomes["failed"], tries=retries + 1, **fields)
        return moves

    def _complete(self, tx: Transaction, now: datetime) -> None:
        for app_id, journey_id in store.closing(tx, DUE_PER_PASS):
            store.set_state(tx, app_id, journey_id, JourneyState.COMPLETED, None)
            store.set_runs_status(tx, app_id, journey_id, "COMPLETED", iso_millis(now), only="RUNNING")
            tx.record(JourneyChanged(app_id, journey_id, Change.UPDATED))


def _user_entries(tx: Transaction, app_id: str, journey_id: str, rows: dict[str, EndpointRow]) -> dict[str, Entries]:
    """The journey entries of the users of these endpoints, through any of their endpoints: a user-level journey's
    participant is the user, so its re-entry limits and "already in the journey" are the user's."""
    users = sorted({row.user_id for row in rows.values() if row.user_id})
    if not users:
        return {}
    owner = {e.endpoint_key: user for user, found in endpoint_store.of_users(tx, app_id, users).items() for e in found}
    totals: dict[str, Entries] = {}
    for key, own in store.entries_of(tx, app_id, journey_id, sorted(owner)).items():
        seen = totals.get(owner[key], NO_ENTRIES)
        latest = own if own.last_ms >= seen.last_ms else seen
        totals[owner[key]] = Entries(seen.count + own.count, latest.last_ms, seen.active or own.active, latest.run_id)
    return totals


def _paused(tx: Transaction, journey: Journey) -> bool:
    """Whether the journey is PAUSED now (the row locked, so a pause commits before this write or after it)."""
    row = store.get(tx, journey.app_id, journey.id, lock=True)
    return row is not None and row.state == JourneyState.PAUSED


def _commit(tx: Transaction, journey: Journey, activity_id: str, moves: list[Move], token: str, now: datetime) -> int:
    """Move the participants under their lease (one statement), with the metrics and the message links of the
    moves that held; a journey paused while the step ran has its participants' next timers set aside."""
    paused = _paused(tx, journey)
    # (run id, activity id: '' for the journey's own) -> metrics to add
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    messages: list[tuple[str, int, str]] = []
    steps = [
        store.Step(m.participant.endpoint_key, m.participant.entry, m.activity, m.due_at, m.waited, m.attempts)
        for m in moves
    ]
    held = store.move(tx, journey.app_id, journey.id, token, steps, paused=paused)
    moved = 0
    cancelled = journey.state == JourneyState.CANCELLED
    for move in moves:
        p = move.participant
        if (p.endpoint_key, p.entry) not in held:
            continue  # the lease was lost (another stepper took over) or the journey was deleted
        moved += 1
        for activity, added in ((activity_id, move.counts), *move.passed.items()):
            for name, value in added.items():
                counts[(p.run_id, activity)][name] += value
        if move.activity is None:
            counts[(p.run_id, "")]["CANCELLED" if cancelled else "ENDPOINT_LEFT"] += 1
        if move.message_id:
            messages.append((p.endpoint_key, p.entry, move.message_id))
    at = iso_millis(now)
    for (run_id, activity), added in counts.items():
        store.add_metrics(tx, journey.app_id, journey.id, run_id, activity, added)
    for run_id in {m.participant.run_id for m in moves}:
        store.touch_run(tx, journey.app_id, journey.id, run_id, at)
    store.add_messages(tx, journey.app_id, journey.id, activity_id, messages)
    return moved


def _in_schedule(definition: dict[str, Any], at_ms: int, row: EndpointRow | None, zones: ZoneEstimator) -> bool:
    """Whether an event that arrived at `at_ms` falls within the Schedule (with LocalTime, on its endpoint's clock)."""
    starts, ends = (schedule_bound(definition, member, row, zones) for member in ("StartTime", "EndTime"))
    if starts and at_ms < epoch_millis(starts):
        return False
    return not (ends and at_ms > epoch_millis(ends))


class EventPlan(NamedTuple):
    """Who one event journey lets in from a round of held events."""

    row: store.JourneyRow
    definition: dict[str, Any]
    endpoint_ids: list[str]  # of the events that start it, in their order, in its segment if it names one
    produced: int  # events that start it, before its segment was applied


class _TakenElsewhere(Exception):
    """Held events another engine released first: this write rolls back and admits nobody."""
