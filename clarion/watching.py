"""Follow long work on a Clarion server (an import or export job, a campaign's run, a journey) from the CLI, over
the API.

Each command supplies how to read one snapshot through the API (clarion/client.py), so it works from any machine
with an access key and never opens a store. This module owns the loop, the display and the exit codes, so every
`clarion ... watch` looks and behaves the same: a progress bar on a terminal, one plain line per change otherwise
(logs, CI, pipes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from clarion.client import ApiClient, ApiError, Unreachable

SUCCEEDED, FAILED, CANNOT_WATCH = 0, 1, 2  # exit statuses
JOB_FINISHED = frozenset({"COMPLETED", "FAILED"})
CAMPAIGN_GOING = frozenset({"SCHEDULED", "EXECUTING"})
JOURNEY_FINISHED = frozenset({"COMPLETED", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    description: str
    completed: int
    total: int | None  # None while unknown (the bar spins)
    unit: str  # what completed and total count
    detail: str  # shown after the counts
    finished: bool
    succeeded: bool = True
    notes: list[str] = field(default_factory=list)  # printed once at the end (failures, metrics)


class NotThere(Exception):
    """What the command names does not exist on the server; the message says what was looked for."""


Reader = Callable[[], Snapshot]


def job_reader(client: ApiClient, app_id: str, job_id: str) -> Reader:
    """An import or export job (GetImportJob, else GetExportJob): pieces done of all, and rows so far."""
    kinds = ["import", "export"]

    def read() -> Snapshot:
        for kind in list(kinds):
            try:
                job = client.get("apps", app_id, "jobs", kind, job_id)
            except ApiError as error:
                if error.status != 404 or len(kinds) == 1:
                    raise
                continue
            kinds[:] = [kind]  # found: later looks ask only for this kind
            return _job_snapshot(job)
        raise NotThere(f"No import or export job {job_id!r} in application {app_id!r}")

    return read


def _job_snapshot(job: dict[str, Any]) -> Snapshot:
    status = job.get("JobStatus", "")
    return Snapshot(
        description=f"{str(job.get('Type', 'job')).lower()} {status}",
        completed=job.get("CompletedPieces", 0) + job.get("FailedPieces", 0),
        total=job.get("TotalPieces") or None,
        unit="pieces",
        detail=f"{job.get('TotalProcessed', 0):,} rows, {job.get('TotalFailures', 0):,} failed",
        finished=status in JOB_FINISHED,
        succeeded=status == "COMPLETED",
        notes=list(job.get("Failures", []))[:10],
    )


def campaign_reader(client: ApiClient, app_id: str, campaign_id: str) -> Reader:
    """A campaign's latest run (GetCampaign and GetCampaignActivities): endpoints targeted and delivered so far."""

    def read() -> Snapshot:
        try:
            campaign = client.get("apps", app_id, "campaigns", campaign_id)
            page = client.get("apps", app_id, "campaigns", campaign_id, "activities", query={"page-size": "100"})
        except ApiError as error:
            if error.status == 404:
                raise NotThere(f"No campaign {campaign_id!r} in application {app_id!r}") from None
            raise
        state = campaign.get("State", {}).get("CampaignStatus", "")
        activities = page.get("Item", [])
        # Newest first: the latest run is the activities (one per treatment) sharing the first one's start.
        run = [a for a in activities if activities and a.get("ScheduledStart") == activities[0].get("ScheduledStart")]
        targeted = sum(a.get("TotalEndpointCount", 0) for a in run)
        delivered = sum(a.get("SuccessfulEndpointCount", 0) for a in run)
        failed_run = any(a.get("Result") == "FAIL" for a in run)
        finished = state not in CAMPAIGN_GOING
        notes = [f"{name}: {value}" for a in run for name, value in sorted(a.get("ExecutionMetrics", {}).items())]
        return Snapshot(
            description=f"campaign {state}",
            completed=targeted,
            total=targeted if finished else None,
            unit="endpoints",
            detail=f"{targeted:,} targeted, {delivered:,} delivered" if run else "waiting for its first run",
            finished=finished,
            succeeded=state != "DELETED" and not failed_run,
            notes=notes,
        )

    return read


def journey_reader(client: ApiClient, app_id: str, journey_id: str) -> Reader:
    """A journey's participants (GetJourney, GetJourneyExecutionMetrics and each activity's metrics): how many
    entered and left, and what each activity counted, until it is COMPLETED or CANCELLED."""

    def read() -> Snapshot:
        try:
            journey = client.get("apps", app_id, "journeys", journey_id)
            metrics = client.get("apps", app_id, "journeys", journey_id, "execution-metrics").get("Metrics", {})
            per_activity = {
                activity_id: client.get(
                    "apps", app_id, "journeys", journey_id, "activities", activity_id, "execution-metrics"
                ).get("Metrics", {})
                for activity_id in journey.get("Activities") or {}
            }
        except ApiError as error:
            if error.status == 404:
                raise NotThere(f"No journey {journey_id!r} in application {app_id!r}") from None
            raise
        state = journey.get("State", "")
        entered, active = int(metrics.get("ENDPOINT_ENTERED", 0)), int(metrics.get("ENDPOINT_ACTIVE", 0))
        steps = [
            f"{activity_id} " + " ".join(f"{name}={value}" for name, value in sorted(counts.items()))
            for activity_id, counts in per_activity.items()
            if counts
        ]
        return Snapshot(
            description=f"journey {state}",
            completed=entered - active,
            total=entered or None,
            unit="participants done",
            detail=f"{active:,} in the journey" + (" · " + " · ".join(steps) if steps else ""),
            finished=state in JOURNEY_FINISHED,
            succeeded=state == "COMPLETED",
            notes=[f"{name}: {value}" for name, value in sorted(metrics.items())],
        )

    return read


def watch(
    read: Reader,
    interval: float,
    console: Console,
    patience: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Follow until finished: exit status 0 when it succeeded, 1 when it failed, 2 when it cannot be watched
    (nothing by that id, the key refused, or no answer from the server for `patience` seconds)."""
    try:
        snapshot = read()
    except (NotThere, ApiError, Unreachable) as error:
        console.print(str(error), style="red", markup=False, highlight=False)
        return CANNOT_WATCH
    show = _Bar(console) if console.is_terminal else _Lines(console, clock)
    last_answer = clock()
    with show:
        show.update(snapshot)
        while not snapshot.finished:
            sleep(interval)
            try:
                snapshot = read()
                last_answer = clock()
            except (ApiError, Unreachable) as error:
                if clock() - last_answer > patience:
                    console.print(str(error), style="red", markup=False, highlight=False)
                    return CANNOT_WATCH
                continue
            show.update(snapshot)
    for note in snapshot.notes:
        console.print(f"  {note}", markup=False, highlight=False)
    return SUCCEEDED if snapshot.succeeded else FAILED


class _Bar:
    """A rich progress bar, redrawn in place (terminals)."""

    def __init__(self, console: Console) -> None:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}  {task.fields[detail]}"),
            TimeElapsedColumn(),
        )
        self.progress = Progress(*columns, console=console)
        self.task = self.progress.add_task("", total=None, unit="", detail="")

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def update(self, snapshot: Snapshot) -> None:
        self.progress.update(
            self.task,
            description=snapshot.description,
            completed=snapshot.completed,
            total=snapshot.total,
            unit=snapshot.unit,
            detail=snapshot.detail,
        )


class _Lines:
    """One plain line each time something changes, with the seconds since the watch began (logs, CI, pipes)."""

    def __init__(self, console: Console, clock: Callable[[], float]) -> None:
        self.console = console
        self.clock = clock
        self.started = clock()
        self.last: tuple[Any, ...] | None = None

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def update(self, snapshot: Snapshot) -> None:
        shown = (snapshot.description, snapshot.completed, snapshot.total, snapshot.detail)
        if shown == self.last:
            return
        self.last = shown
        counts = f"{snapshot.completed:,}" + (f"/{snapshot.total:,}" if snapshot.total is not None else "")
        elapsed = self.clock() - self.started
        self.console.print(
            f"{elapsed:6.1f}s  {snapshot.description}  {counts} {snapshot.unit}  {snapshot.detail}",
            markup=False,
            highlight=False,
        )
