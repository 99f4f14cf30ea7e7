"""Journeys (one row each, the definition as written), their runs, participants with their timers, the message
each participant got per activity, and execution metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from clarion.store.database import Transaction
from clarion.store.events import EventRow


@dataclass(frozen=True, slots=True)
class JourneyRow:
    seq: int
    app_id: str
    id: str
    name: str
    state: str
    created_at: str
    modified_at: str
    definition: str  # JSON of the WriteJourneyRequest members other than Name, State and tags
    paused_at: int | None  # epoch ms of the last pause (resuming waits at least five minutes after it)
    next_entry_at: int | None  # epoch ms segment members are next let in


_COLUMNS = "seq, app_id, id, name, state, created_at, modified_at, definition, paused_at, next_entry_at"


def insert(
    tx: Transaction,
    app_id: str,
    journey_id: str,
    name: str,
    state: str,
    created_at: str,
    definition: str,
    start_event: str | None,
) -> None:
    """`start_event`: the event type an event-started journey starts on (PutEvents holds those events for it)."""
    tx.execute(
        "INSERT INTO journeys (app_id, id, name, state, created_at, modified_at, definition, start_event) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (app_id, journey_id, name, state, created_at, created_at, definition, start_event),
    )


def replace(
    tx: Transaction,
    app_id: str,
    journey_id: str,
    name: str,
    state: str,
    modified_at: str,
    definition: str,
    start_event: str | None,
) -> None:
    tx.execute(
        "UPDATE journeys SET name = ?, state = ?, modified_at = ?, definition = ?, start_event = ? "
        "WHERE app_id = ? AND id = ?",
        (name, state, modified_at, definition, start_event, app_id, journey_id),
    )


def set_state(tx: Transaction, app_id: str, journey_id: str, state: str, paused_at: int | None) -> None:
    tx.execute(
        "UPDATE journeys SET state = ?, paused_at = ? WHERE app_id = ? AND id = ?",
        (state, paused_at, app_id, journey_id),
    )


def get(tx: Transaction, app_id: str, journey_id: str, *, lock: bool = False) -> JourneyRow | None:
    row = tx.fetchone(
        f"SELECT {_COLUMNS} FROM journeys WHERE app_id = ? AND id = ?{tx.dialect.for_update if lock else ''}",
        (app_id, journey_id),
    )
    return JourneyRow(*row) if row else None


def page(tx: Transaction, app_id: str, after_seq: int, limit: int) -> list[JourneyRow]:
    rows = tx.fetchall(
        f"SELECT {_COLUMNS} FROM journeys WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?", (app_id, after_seq, limit)
    )
    return [JourneyRow(*row) for row in rows]


def delete(tx: Transaction, app_id: str, journey_id: str) -> None:
    """The journey and everything it ran: participants (and so their timers), messages' links, runs, metrics."""
    for table in ("journey_participants", "journey_messages", "journey_outcomes", "journey_metrics", "journey_runs"):
        tx.execute(f"DELETE FROM {table} WHERE app_id = ? AND journey_id = ?", (app_id, journey_id))
    tx.execute("DELETE FROM journeys WHERE app_id = ? AND id = ?", (app_id, journey_id))


# Runs and metrics ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    status: str
    created_at: str
    updated_at: str


def page_runs(tx: Transaction, app_id: str, journey_id: str, after: str, limit: int) -> list[RunRow]:
    """A journey's runs in the order they were created (run ids sort by creation), after a run id."""
    rows = tx.fetchall(
        "SELECT run_id, status, created_at, updated_at FROM journey_runs "
        "WHERE app_id = ? AND journey_id = ? AND run_id > ? ORDER BY run_id LIMIT ?",
        (app_id, journey_id, after, limit),
    )
    return [RunRow(*row) for row in rows]


def get_run(tx: Transaction, app_id: str, journey_id: str, run_id: str) -> RunRow | None:
    row = tx.fetchone(
        "SELECT run_id, status, created_at, updated_at FROM journey_runs "
        "WHERE app_id = ? AND journey_id = ? AND run_id = ?",
        (app_id, journey_id, run_id),
    )
    return RunRow(*row) if row else None


def last_updated(tx: Transaction, app_id: str, journey_id: str, run_id: str | None) -> str | None:
    """When the journey's runs (or one run) last changed: the metrics' LastEvaluatedTime."""
    if run_id is None:
        return tx.scalar(
            "SELECT max(updated_at) FROM journey_runs WHERE app_id = ? AND journey_id = ?", (app_id, journey_id)
        )
    run = get_run(tx, app_id, journey_id, run_id)
    return run.updated_at if run else None


def metrics(tx: Transaction, app_id: str, journey_id: str, run_id: str | None, activity_id: str) -> dict[str, int]:
    """Counters of one activity ('' for the journey itself), of one run or summed over every run."""
    run_filter = "" if run_id is None else " AND run_id = ?"
    params = (app_id, journey_id, activity_id) + (() if run_id is None else (run_id,))
    rows = tx.fetchall(
        "SELECT name, sum(value) FROM journey_metrics WHERE app_id = ? AND journey_id = ? AND activity_id = ?"
        f"{run_filter} GROUP BY name",
        params,
    )
    return {name: int(value) for name, value in rows}


def active_participants(tx: Transaction, app_id: str, journey_id: str, run_id: str | None) -> int:
    run_filter = "" if run_id is None else " AND run_id = ?"
    params = (app_id, journey_id) + (() if run_id is None else (run_id,))
    return int(
        tx.scalar(
            "SELECT count(*) FROM journey_participants WHERE app_id = ? AND journey_id = ? "
            f"AND activity_id IS NOT NULL{run_filter}",
            params,
        )
    )


def insert_run(tx: Transaction, app_id: str, journey_id: str, run_id: str, status: str, at: str) -> None:
    tx.execute(
        "INSERT INTO journey_runs (app_id, journey_id, run_id, status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (app_id, journey_id, run_id, status, at, at),
    )


def set_runs_status(tx: Transaction, app_id: str, journey_id: str, status: str, at: str, only: str | None) -> None:
    """Every run of the journey (or only those in status `only`) moves to `status`."""
    which = "" if only is None else " AND status = ?"
    tx.execute(
        f"UPDATE journey_runs SET status = ?, updated_at = ? WHERE app_id = ? AND journey_id = ?{which}",
        (status, at, app_id, journey_id) + (() if only is None else (only,)),
    )


def latest_run(tx: Transaction, app_id: str, journey_id: str) -> str | None:
    return tx.scalar("SELECT max(run_id) FROM journey_runs WHERE app_id = ? AND journey_id = ?", (app_id, journey_id))


def touch_run(tx: Transaction, app_id: str, journey_id: str, run_id: str, at: str) -> None:
    tx.execute(
        "UPDATE journey_runs SET updated_at = ? WHERE app_id = ? AND journey_id = ? AND run_id = ?",
        (at, app_id, journey_id, run_id),
    )


def add_metrics(
    tx: Transaction, app_id: str, journey_id: str, run_id: str, activity_id: str, counts: dict[str, int]
) -> None:
    """Add to a run's counters of one activity ('' for the journey's own)."""
    rows = [(app_id, journey_id, run_id, activity_id, name, value) for name, value in counts.items() if value]
    tx.insert_rows(
        "INSERT INTO journey_metrics (app_id, journey_id, run_id, activity_id, name, value)",
        rows,
        "ON CONFLICT (app_id, journey_id, run_id, activity_id, name) "
        "DO UPDATE SET value = journey_metrics.value + excluded.value",
    )


# The engine -----------------------------------------------------------------------------------------------------


def set_next_entry(tx: Transaction, app_id: str, journey_id: str, at_ms: int | None, *, paused: bool = False) -> None:
    """When segment members are next let in; `paused`: the entry a PAUSED journey makes once it resumes."""
    column = "paused_entry_at" if paused else "next_entry_at"
    tx.execute(f"UPDATE journeys SET {column} = ? WHERE app_id = ? AND id = ?", (at_ms, app_id, journey_id))


def entries_due(tx: Transaction, now_ms: int, limit: int) -> list[tuple[str, str]]:
    """(app id, journey id) of ACTIVE journeys whose segment members are due to be let in."""
    return [
        (row[0], row[1])
        for row in tx.fetchall(
            "SELECT app_id, id FROM journeys WHERE next_entry_at <= ? AND state = 'ACTIVE' "
            "ORDER BY next_entry_at LIMIT ?",
            (now_ms, limit),
        )
    ]


def active_definitions(tx: Transaction) -> list[str]:
    """The definitions of every ACTIVE journey of every project (the account-wide quota of event journeys)."""
    return [row[0] for row in tx.fetchall("SELECT definition FROM journeys WHERE state = 'ACTIVE'")]


def active_of_app(tx: Transaction, app_id: str, *, paused: bool = False) -> list[JourneyRow]:
    """The project's ACTIVE journeys (and, with `paused`, its PAUSED ones)."""
    states = "('ACTIVE', 'PAUSED')" if paused else "('ACTIVE')"
    rows = tx.fetchall(f"SELECT {_COLUMNS} FROM journeys WHERE app_id = ? AND state IN {states}", (app_id,))
    return [JourneyRow(*row) for row in rows]


def closing(tx: Transaction, limit: int) -> list[tuple[str, str]]:
    """(app id, journey id) of CLOSED journeys with nobody left in them: they are COMPLETED."""
    return [
        (row[0], row[1])
        for row in tx.fetchall(
            "SELECT j.app_id, j.id FROM journeys j WHERE j.state = 'CLOSED' AND NOT EXISTS (SELECT 1 FROM "
            "journey_participants p WHERE p.app_id = j.app_id AND p.journey_id = j.id AND p.activity_id IS NOT NULL) "
            "LIMIT ?",
            (limit,),
        )
    ]


# Event entry -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldEvent:
    seq: int
    app_id: str
    endpoint_id: str
    event: str  # the event's wire fields, JSON
    arrived_at: int  # epoch ms PutEvents accepted it


def hold_event_entries(tx: Transaction, app_id: str, events: list[tuple[str, str, str]], arrived_at: int) -> int:
    """PutEvents, in its own transaction: keep the (endpoint id, event type, event JSON) whose type starts one of
    the project's ACTIVE journeys, for the engine to let their endpoints in; how many were kept. So an accepted
    event that should start a journey starts it, whatever happens to the process after the commit."""
    starting = {
        row[0]
        for row in tx.fetchall(
            "SELECT DISTINCT start_event FROM journeys WHERE app_id = ? AND state = 'ACTIVE' "
            "AND start_event IS NOT NULL",
            (app_id,),
        )
    }
    kept = [(app_id, endpoint_id, doc, arrived_at) for endpoint_id, kind, doc in events if kind in starting]
    tx.insert_rows("INSERT INTO journey_inbox (app_id, endpoint_id, event, arrived_at)", kept)
    return len(kept)


def held_events(tx: Transaction, limit: int) -> list[HeldEvent]:
    rows = tx.fetchall(
        "SELECT seq, app_id, endpoint_id, event, arrived_at FROM journey_inbox ORDER BY seq LIMIT ?", (limit,)
    )
    return [HeldEvent(*row) for row in rows]


def release_events(tx: Transaction, seqs: list[int]) -> int:
    """Remove held events once their entries are committed (in that same transaction); how many were still held."""
    wanted, params = tx.dialect.one_of("seq", seqs)
    return tx.execute(f"DELETE FROM journey_inbox WHERE {wanted}", params)


# Participants --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    app_id: str
    journey_id: str
    endpoint_key: str
    entry: int
    endpoint_id: str
    run_id: str
    activity_id: str
    waited: bool
    retried: bool = False  # its last lease ran out: a stepper died with this step in hand, and it is stepped again
    attempts: int = 0  # sends of this activity's message already tried and answered THROTTLED or TEMPORARY_FAILURE
    failures: int = 0  # times this step raised so far


_PARTICIPANT = (
    "app_id, journey_id, endpoint_key, entry, endpoint_id, run_id, activity_id, waited, reclaimed, attempts, failures"
)


class Entries(NamedTuple):
    """An endpoint's (or a user's) entries into one journey."""

    count: int  # entries so far (an endpoint's entries are numbered 1, 2, ...)
    last_ms: int  # when the latest began
    active: bool  # whether the latest is still in the journey
    run_id: str  # the run the latest entered in


def entries_of(tx: Transaction, app_id: str, journey_id: str, keys: list[str]) -> dict[str, Entries]:
    """Endpoint key -> its entries into the journey, for those of these endpoints that entered it."""
    wanted, params = tx.dialect.one_of("endpoint_key", keys)
    rows = tx.fetchall(
        "SELECT endpoint_key, entry, entered_at, activity_id IS NOT NULL, run_id FROM journey_participants "
        f"WHERE app_id = ? AND journey_id = ? AND {wanted}",
        (app_id, journey_id, *params),
    )
    latest: dict[str, Entries] = {}
    for key, entry, entered_at, active, run_id in rows:
        if key not in latest or entry > latest[key].count:
            latest[key] = Entries(entry, entered_at, bool(active), run_id)
    return latest


def add_participants(
    tx: Transaction,
    app_id: str,
    journey_id: str,
    run_id: str,
    activity_id: str,
    due_at: int,
    entrants: list[tuple[str, int, str]],  # (endpoint key, entry number, endpoint id)
) -> None:
    tx.insert_rows(
        "INSERT INTO journey_participants (app_id, journey_id, endpoint_key, entry, endpoint_id, run_id, "
        "activity_id, due_at, waited, entered_at)",
        [(app_id, journey_id, key, entry, eid, run_id, activity_id, due_at, 0, due_at) for key, entry, eid in entrants],
    )


def claim_due(tx: Transaction, now_ms: int, limit: int, token: str, lease_until: int) -> list[ParticipantRow]:
    """Participants whose timer is due, leased to `token` until `lease_until`, in one statement; a lease that ran
    out (its stepper died) is due again like any timer, and the row says so (`reclaimed`, from the lease it still
    held). A range of the due-time index and nothing else: the timers of a PAUSED journey are set aside (`freeze`),
    and those of finished journeys are gone, so they cost no pass anything."""
    skip = " FOR UPDATE SKIP LOCKED" if tx.dialect.name == "postgresql" else ""
    # The limit is written into the statement, as the queue's lease does: as a parameter, PostgreSQL's generic
    # plan expects many rows and joins them by scanning the table.
    rows = tx.fetchall(
        "UPDATE journey_participants SET reclaimed = CASE WHEN lease_token IS NULL THEN 0 ELSE 1 END, "
        "lease_token = ?, due_at = ? WHERE (app_id, journey_id, endpoint_key, entry) IN (SELECT app_id, journey_id, "
        "endpoint_key, entry FROM journey_participants WHERE due_at <= ? AND activity_id IS NOT NULL "
        f"ORDER BY due_at LIMIT {int(limit)}{skip}) RETURNING {_PARTICIPANT}",
        (token, lease_until, now_ms),
    )
    claimed = [ParticipantRow(*row[:7], bool(row[7]), bool(row[8]), row[9], row[10]) for row in rows]
    return sorted(claimed, key=lambda p: (p.app_id, p.journey_id, p.activity_id, p.endpoint_key, p.entry))


class Step(NamedTuple):
    """Where one leased participant goes (`activity` None: it leaves the journey)."""

    endpoint_key: str
    entry: int
    activity: str | None
    due_at: int | None
    waited: bool
    attempts: int


_STEP_COLUMNS = (
    ("step_key", "TEXT"),
    ("step_entry", "INTEGER"),
    ("step_activity", "TEXT"),
    ("step_due", "BIGINT"),
    ("step_waited", "INTEGER"),
    ("step_attempts", "INTEGER"),
)


def move(
    tx: Transaction, app_id: str, journey_id: str, token: str, steps: list[Step], *, paused: bool = False
) -> set[tuple[str, int]]:
    """Move leased participants of one journey on, each its own way, in one statement; the (endpoint key, entry)
    of those moved: one whose lease was lost (another stepper took over), or whose journey was deleted, is not.
    `paused`: the journey was paused meanwhile, so their next timers are set aside until it resumes."""
    timer = "due_at = NULL, paused_due = v.step_due" if paused else "due_at = v.step_due"
    rows = [
        # One who left has no timer.
        (s.endpoint_key, s.entry, s.activity, s.due_at if s.activity is not None else None, int(s.waited), s.attempts)
        for s in steps
    ]
    moved = tx.fetch_joined(
        f"UPDATE journey_participants SET activity_id = v.step_activity, {timer}, waited = v.step_waited, "
        "attempts = v.step_attempts, failures = 0, lease_token = NULL FROM {rows} WHERE app_id = ? "
        "AND journey_id = ? AND endpoint_key = v.step_key AND entry = v.step_entry AND lease_token = ? "
        "RETURNING endpoint_key, entry",
        _STEP_COLUMNS,
        rows,
        (app_id, journey_id, token),
    )
    return {(key, entry) for key, entry in moved}


_FAIL_COLUMNS = (("step_key", "TEXT"), ("step_entry", "INTEGER"), ("step_due", "BIGINT"), ("step_gave_up", "INTEGER"))


def fail_steps(
    tx: Transaction,
    app_id: str,
    journey_id: str,
    token: str,
    failed: Sequence[tuple[str, int, int | None]],
    *,
    paused: bool = False,
) -> set[tuple[str, int]]:
    """Leased participants of one journey whose step raised, in one statement: each (endpoint key, entry, retry at)
    tried again at its time, or (None) given up on, leaving the journey with its step marked failed. The (endpoint
    key, entry) of those changed: one whose lease was lost is not. `paused`: the retries are set aside."""
    timer = "due_at = NULL, paused_due = v.step_due" if paused else "due_at = v.step_due"
    rows = [(key, entry, retry_at, int(retry_at is None)) for key, entry, retry_at in failed]
    changed = tx.fetch_joined(
        "UPDATE journey_participants SET failed_activity = CASE WHEN v.step_gave_up = 1 THEN activity_id "
        "ELSE failed_activity END, activity_id = CASE WHEN v.step_gave_up = 1 THEN NULL ELSE activity_id END, "
        f"{timer}, failures = failures + 1, lease_token = NULL FROM {{rows}} WHERE app_id = ? AND journey_id = ? "
        "AND endpoint_key = v.step_key AND entry = v.step_entry AND lease_token = ? RETURNING endpoint_key, entry",
        _FAIL_COLUMNS,
        rows,
        (app_id, journey_id, token),
    )
    return {(key, entry) for key, entry in changed}


# The ORDER BY keeps the probe on the due-time index: without it PostgreSQL's generic plan (a statement prepared
# after five runs) expects a third of the table to be due and scans it (an idle pass of 53 ms with 100,000 waiting).
DUE_PROBE = (
    "SELECT due_at FROM journey_participants WHERE due_at <= ? AND activity_id IS NOT NULL ORDER BY due_at LIMIT 1"
)


def any_due(tx: Transaction, now_ms: int) -> bool:
    """Whether some participant's timer is due: one probe of the due-time index, so that a pass that finds nothing
    makes no write (a claim is an UPDATE, and a write transaction, even when it matches no row)."""
    return tx.fetchone(DUE_PROBE, (now_ms,)) is not None


def cancel_participants(tx: Transaction, app_id: str, journey_id: str) -> dict[str, int]:
    """Everyone not in the middle of a step leaves (a leased step finishes, then leaves); run id -> how many."""
    rows = tx.fetchall(
        "SELECT run_id, count(*) FROM journey_participants WHERE app_id = ? AND journey_id = ? "
        "AND activity_id IS NOT NULL AND lease_token IS NULL GROUP BY run_id",
        (app_id, journey_id),
    )
    tx.execute(
        "UPDATE journey_participants SET activity_id = NULL, due_at = NULL, paused_due = NULL "
        "WHERE app_id = ? AND journey_id = ? AND activity_id IS NOT NULL AND lease_token IS NULL",
        (app_id, journey_id),
    )
    return {run_id: int(count) for run_id, count in rows}


def freeze(tx: Transaction, app_id: str, journey_id: str) -> None:
    """Pausing: the journey's timers and its next segment entry are set aside, out of the indexes the engine scans
    (a participant in the middle of a step is set aside when its step commits)."""
    tx.execute(
        "UPDATE journey_participants SET paused_due = due_at, due_at = NULL WHERE app_id = ? AND journey_id = ? "
        "AND due_at IS NOT NULL AND lease_token IS NULL",
        (app_id, journey_id),
    )
    tx.execute(
        "UPDATE journeys SET paused_entry_at = next_entry_at, next_entry_at = NULL WHERE app_id = ? AND id = ?",
        (app_id, journey_id),
    )


def thaw(tx: Transaction, app_id: str, journey_id: str, by_ms: int) -> None:
    """Resuming: the timers come back, waits moved on by the length of the pause (a pause freezes them), and the
    segment entry that was next (overdue ones happen at once)."""
    tx.execute(
        "UPDATE journey_participants SET due_at = paused_due + CASE WHEN waited = 1 THEN ? ELSE 0 END, "
        "paused_due = NULL WHERE app_id = ? AND journey_id = ? AND paused_due IS NOT NULL",
        (by_ms, app_id, journey_id),
    )
    tx.execute(
        "UPDATE journeys SET next_entry_at = paused_entry_at, paused_entry_at = NULL WHERE app_id = ? AND id = ?",
        (app_id, journey_id),
    )


def add_messages(
    tx: Transaction, app_id: str, journey_id: str, activity_id: str, sent: list[tuple[str, int, str]]
) -> None:
    """(endpoint key, entry, message id) of the messages this activity sent; a redelivered step's repeat is kept
    once."""
    tx.insert_rows(
        "INSERT INTO journey_messages (app_id, journey_id, endpoint_key, entry, activity_id, message_id)",
        [(app_id, journey_id, key, entry, activity_id, message_id) for key, entry, message_id in sent],
        "ON CONFLICT (app_id, journey_id, endpoint_key, entry, activity_id) DO NOTHING",
    )


def messages_of(
    tx: Transaction, app_id: str, journey_id: str, activity_id: str, keys: list[str]
) -> dict[tuple[str, int], str]:
    """(endpoint key, entry) -> the message id one message activity sent them."""
    wanted, params = tx.dialect.one_of("endpoint_key", keys)
    rows = tx.fetchall(
        "SELECT endpoint_key, entry, message_id FROM journey_messages WHERE app_id = ? AND journey_id = ? "
        f"AND activity_id = ? AND {wanted}",
        (app_id, journey_id, activity_id, *params),
    )
    return {(key, entry): message_id for key, entry, message_id in rows}


# Events of journey messages that conditions test and that come after the send (outcome reports, an app's
# PutEvents naming the journey and the activity: push opens). The send's own events (`_email.send`,
# `_email.rejected`, `_SMS.BUFFERED`, `_SMS.FAILURE`, `_journey.send`) are read from the message log instead.
OUTCOME_EVENTS = frozenset(
    {
        "_email.delivered",
        "_email.hardbounce",
        "_email.softbounce",
        "_email.complaint",
        "_email.open",
        "_email.click",
        "_email.unsubscribe",
        "_SMS.SUCCESS",
        "_SMS.FAILURE",
        "_SMS.OPTOUT",
        "_journey.opened_notification",
        "_journey.received_foreground",
        "_journey.received_background",
    }
)


def keep_outcomes(tx: Transaction, rows: Sequence[EventRow]) -> None:
    """In the transaction that stores these events: those that tell a journey's conditions what became of one of
    its messages are kept for the journey too, as (activity, endpoint, message id or run) rows that live as long as
    the journey. Retention prunes the event log; a condition evaluated after a long EvaluationWaitTime reads these."""
    kept = []
    for row in rows:
        if row.event_type not in OUTCOME_EVENTS:
            continue
        attributes = msgspec.json.decode(row.doc).get("Attributes") or {}
        journey_id, activity_id = attributes.get("journey_id"), attributes.get("journey_activity_id")
        if journey_id and activity_id:
            mark = attributes.get("message_id") or f"run:{attributes.get('journey_run_id') or '*'}"
            kept.append((row.app_id, journey_id, activity_id, row.endpoint_id.lower(), mark, row.event_type))
    tx.insert_rows(
        "INSERT INTO journey_outcomes (app_id, journey_id, activity_id, endpoint_key, mark, event_type)",
        kept,
        "ON CONFLICT (app_id, journey_id, activity_id, endpoint_key, mark, event_type) DO NOTHING",
    )


def outcomes_of(
    tx: Transaction, app_id: str, journey_id: str, activity_id: str, keys: list[str], event_types: list[str]
) -> set[tuple[str, str]]:
    """(endpoint key, message id or "run:" + run id or "run:*") of these endpoints' outcomes of one activity's
    messages, of these event types."""
    endpoints, endpoint_params = tx.dialect.one_of("endpoint_key", keys)
    types, type_params = tx.dialect.one_of("event_type", event_types)
    rows = tx.fetchall(
        "SELECT endpoint_key, mark FROM journey_outcomes WHERE app_id = ? AND journey_id = ? AND activity_id = ? "
        f"AND {endpoints} AND {types}",
        (app_id, journey_id, activity_id, *endpoint_params, *type_params),
    )
    return {(key, mark) for key, mark in rows}


class Logged(NamedTuple):
    """What the message log says of one message."""

    recipient: str  # the endpoint key it went to (a participant's own endpoint, or another of its user's)
    channel: str
    status: str


def logged_messages(tx: Transaction, message_ids: list[str]) -> dict[str, Logged]:
    """Message id -> its recipient, channel and delivery status (a live journey's messages outlive retention)."""
    if not message_ids:
        return {}
    wanted, params = tx.dialect.one_of("message_id", message_ids)
    rows = tx.fetchall(f"SELECT message_id, endpoint_id, channel, status FROM messages WHERE {wanted}", params)
    return {message_id: Logged(key.lower(), channel, status) for message_id, key, channel, status in rows if key}
