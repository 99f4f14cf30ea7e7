"""The journey engine at scale: participants through a 6-activity journey, timer lag under many pending waits, and
event-start latency, on a real Clarion server in this process with an SMTP sink process for the emails.

    .venv/bin/python -m bench.journeys [--participants 20000] [--store sqlite|postgres|both] [--out x.json]
    .venv/bin/python -m bench.journeys --scale 1000000 [--step-seconds 120] --store both [--out x.json]

With sends (`--participants`; `--channel email`, the default, or `push`):

1. **Throughput**: N endpoints enter from a segment: a message → wait 1 minute → opened it? → no: a second message
   → holdout 10 % (yes: they leave). The engine is driven pass after pass, the clock moved past the wait;
   participants advanced per second = steps committed / wall time, and per core = steps / the process's CPU
   seconds. Baseline, same run, same sink: SendMessages to the same endpoints (the first 20,000), 100 per call (the
   send path alone, as a direct send uses it). Email goes to an aiosmtpd sink process; push to GCM endpoints goes
   through the FCM transport to Debian's nginx as the FCM and OAuth stand-in (bench/push.py's, on the second CPU),
   which answers every message at once, so that the journey and the send path are what is measured.
2. **Timer lag**: the N participants wait at a 7-day wait while 1,000 others wait for timers spread over 5 seconds;
   the engine runs its own loop on the real clock; lag = when a participant was picked up − when it was due.
3. **Event start**: 200 PutEvents calls, each starting a journey for one endpoint; latency from the call to the
   participant's first step being picked up.

At scale (`--scale N`, no sends: `measure_scale` says what it measures): timer lag with N participants waiting
against none waiting, an idle pass against a claim that finds nothing, steps per second with N participants due
against the store's own floor, and event start, each baseline measured in the same run.

Peak RSS is this process's (the server, its store and the driver). PostgreSQL uses a throw-away database on
CLARION_TEST_POSTGRES_URL's server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import POSTGRES_URL, RunningServer, free_port  # noqa: E402

from bench.run import code_version, machine  # noqa: E402
from bench.smtp_send import start_sink  # noqa: E402
from clarion.campaigns.config import CampaignSettings  # noqa: E402
from clarion.channels.config import DeliverySettings, PushSettings, SmtpSettings  # noqa: E402
from clarion.config import AccessKey, Settings  # noqa: E402
from clarion.journeys.config import JourneySettings  # noqa: E402
from clarion.outbound.config import OutboundSettings  # noqa: E402
from clarion.queue.config import QueueSettings  # noqa: E402
from clarion.store import journeys as journey_store  # noqa: E402

KEY = AccessKey(access_key_id="AKIDCLARIONBENCH0001", secret_access_key="bench-secret")
OPENED = {"EMAIL": "_email.open", "PUSH": "_journey.opened_notification"}
BASELINE_SENDS = 20_000  # endpoints the SendMessages baseline sends to


def journey_activities(channel: str = "EMAIL") -> dict[str, Any]:
    """The 6-activity journey: a message, a minute's wait, a split on "opened it", a second message, a 10 %
    holdout, then a week's wait."""
    opened = {"EventType": {"Values": [OPENED[channel]]}}
    return {
        "first": {channel: {"TemplateName": "bench-first", "NextActivity": "minute"}},
        "minute": {"Wait": {"WaitTime": {"WaitFor": "PT1M"}, "NextActivity": "opened"}},
        "opened": {
            "ConditionalSplit": {
                "Condition": {"Conditions": [{"EventCondition": {"Dimensions": opened, "MessageActivity": "first"}}]},
                "FalseActivity": "second",
            }
        },
        "second": {channel: {"TemplateName": "bench-second", "NextActivity": "hold"}},
        "hold": {"Holdout": {"Percentage": 10, "NextActivity": "week"}},
        "week": {"Wait": {"WaitTime": {"WaitFor": "P7D"}}},
    }


ACTIVITIES = journey_activities()
PLANT_ROWS = 20_000  # participants planted per commit
FLOOR_ROWS = 200_000  # due rows the store-floor baseline may move


@contextmanager
def database_url(store: str) -> Iterator[str]:
    if store == "sqlite":
        yield ""
        return
    import psycopg

    name = f"clarion_journeys_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class LagRecorder:
    """Wraps the store's claim of due participants: for each one picked up, how late it was (ms)."""

    def __init__(self) -> None:
        self.due: dict[tuple[str, str], float] = {}  # (journey, endpoint key) -> epoch ms it is due
        self.lags: list[float] = []
        self.original = journey_store.claim_due

    def __enter__(self) -> LagRecorder:
        def claim(*args: Any, **kwargs: Any) -> Any:
            rows = self.original(*args, **kwargs)
            now = time.time() * 1000
            for row in rows:
                due = self.due.pop((row.journey_id, row.endpoint_key), None)
                if due is not None:
                    self.lags.append(now - due)
            return rows

        journey_store.claim_due = claim  # type: ignore[assignment]
        return self

    def __exit__(self, *_: object) -> None:
        journey_store.claim_due = self.original  # type: ignore[assignment]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def endpoint_item(channel: str, prefix: str, n: int) -> dict[str, Any]:
    if channel == "PUSH":
        return {"Id": f"{prefix}{n}", "ChannelType": "GCM", "Address": f"token-{prefix}{n}"}
    return {"Id": f"{prefix}{n}", "ChannelType": "EMAIL", "Address": f"{prefix}{n}@example.org"}


def add_endpoints(client: Any, app_id: str, count: int, prefix: str, channel: str = "EMAIL") -> None:
    """UpdateEndpointsBatch, 100 a call, eight calls at a time."""

    def put(start: int) -> None:
        items = [endpoint_item(channel, prefix, n) for n in range(start, min(start + 100, count))]
        client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(0, count, 100)))


@contextmanager
def message_sink(channel: str) -> Iterator[tuple[DeliverySettings, dict[str, Any]]]:
    """The local stand-in the journey's messages go to: (the delivery settings that reach it, what the project's
    channel needs). Email: an aiosmtpd sink process. Push: nginx as FCM and its OAuth server (bench/push.py)."""
    if channel == "EMAIL":
        sink_port = free_port()
        sink = start_sink(sink_port)
        try:
            yield DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=sink_port, security="none")), {}
        finally:
            sink.kill()
        return
    import trustme
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bench.push import Nginx, service_json

    with tempfile.TemporaryDirectory() as folder:
        nginx = Nginx.start(Path(folder), trustme.CA())
        try:
            push = PushSettings(fcm_url=nginx.url, fcm_token_uri=f"{nginx.url}/token", ca_file=nginx.ca_file)
            google_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            gcm = {"ServiceJson": service_json(google_key), "DefaultAuthenticationMethod": "TOKEN"}
            yield DeliverySettings(push=push), gcm
        finally:
            nginx.stop()


def run(
    store: str,
    participants: int,
    scale: int = 0,
    step_seconds: float = 120,
    channel: str = "EMAIL",
    profile: Path | None = None,
) -> dict[str, Any]:
    """The run with sends at `participants`, or with `scale` the run at that many participants (`measure_scale`)."""
    with (
        message_sink(channel) as (delivery, gcm),
        tempfile.TemporaryDirectory() as data_dir,
        database_url(store) as url,
    ):
        settings = Settings(
            data_dir=Path(data_dir),
            port=free_port(),
            access_keys=[KEY],
            access_log=False,
            database_url=url,
            max_clock_skew_seconds=40 * 86_400,
            queue=QueueSettings(workers=0),
            campaigns=CampaignSettings(scheduler=False),
            journeys=JourneySettings(engine=False),
            delivery=delivery,
            outbound=OutboundSettings(allow_networks=["127.0.0.0/8", "::1/128"]),  # nginx on localhost
        )
        with RunningServer(settings) as server:
            if scale:
                return measure_scale(server, scale, step_seconds)
            return measure(server, participants, channel, gcm, profile)


class RssPeak:
    """The process's peak resident set while a phase runs (ru_maxrss covers the whole run, loading included), and
    its course: one sample every `every` seconds (seconds since the start, MB), so that growth can be told from a
    spike."""

    def __init__(self, every: float = 15) -> None:
        self.peak_kb = 0
        self.every = every
        self.course: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        started = last = time.perf_counter()
        while not self._stop.wait(0.5):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb = int(line.split()[1])
                    self.peak_kb = max(self.peak_kb, kb)
                    if time.perf_counter() - last >= self.every:
                        last = time.perf_counter()
                        self.course.append((round(last - started), round(kb / 1024)))

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def memory_parts() -> dict[str, int]:
    """Where the resident set is, in MB (/proc/self/smaps_rollup): anonymous memory (heaps: Python's, SQLite's page
    caches, DuckDB's buffers) against mapped files (code, the store's memory-mapped pages)."""
    parts = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, value = line.partition(":")
        if name in {"Rss", "Anonymous", "Shared_Clean", "Private_Clean", "Private_Dirty"}:
            parts[name] = round(int(value.split()[0]) / 1024)
    return parts


def set_up_project(client: Any, channel: str, gcm: dict[str, Any]) -> str:
    """A project with the channel and the journey's two templates."""
    app_id = client.create_app(CreateApplicationRequest={"Name": "bench"})["ApplicationResponse"]["Id"]
    for name in ("bench-first", "bench-second"):
        if channel == "PUSH":
            push = {"Default": {"Title": name, "Body": "Hello"}}
            client.create_push_template(TemplateName=name, PushNotificationTemplateRequest=push)
        else:
            email = {"Subject": name, "TextPart": "Hello"}
            client.create_email_template(TemplateName=name, EmailTemplateRequest=email)
    if channel == "PUSH":
        client.update_gcm_channel(ApplicationId=app_id, GCMChannelRequest=gcm)
    else:
        email_channel = {"FromAddress": "news@example.com", "Identity": "example.com"}
        client.update_email_channel(ApplicationId=app_id, EmailChannelRequest=email_channel)
    return app_id


def send_messages_rate(client: Any, app_id: str, count: int, channel: str) -> float:
    """The baseline: the send path alone, as SendMessages uses it, to the first `count` endpoints; messages/s."""
    if channel == "PUSH":
        message = {"GCMMessage": {"Action": "OPEN_APP"}}
        template = {"PushTemplate": {"Name": "bench-first"}}
    else:
        message = {"EmailMessage": {"SimpleEmail": {"Subject": {"Data": "x"}}}}
        template = {"EmailTemplate": {"Name": "bench-first"}}
    started = time.perf_counter()
    for start in range(0, count, 100):
        endpoints = {f"e{n}": {} for n in range(start, min(start + 100, count))}
        request = {"Endpoints": endpoints, "MessageConfiguration": message, "TemplateConfiguration": template}
        answer = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]["EndpointResult"]
        failed = [r for r in answer.values() if r["DeliveryStatus"] != "SUCCESSFUL"]
        assert not failed, failed[:3]
    return count / (time.perf_counter() - started)


def measure(
    server: RunningServer, participants: int, channel: str, gcm: dict[str, Any], profile: Path | None = None
) -> dict[str, Any]:
    client = server.client(KEY)
    app_id = set_up_project(client, channel, gcm)
    loaded = time.perf_counter()
    add_endpoints(client, app_id, participants, "e", channel)
    load_seconds = time.perf_counter() - loaded
    baseline = send_messages_rate(client, app_id, min(participants, BASELINE_SENDS), channel)

    segment_id = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"][
        "Id"
    ]
    journey_id = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "bench",
            "Activities": journey_activities(channel),
            "StartActivity": "first",
            "StartCondition": {"SegmentStartCondition": {"SegmentId": segment_id}},
            "State": "ACTIVE",
        },
    )["JourneyResponse"]["Id"]

    def tick() -> int:
        loop = server.app.state.loop  # RunningServer.run waits 30 s at most; a pass over N participants takes longer
        return asyncio.run_coroutine_threadsafe(server.services.journey_engine.tick(), loop).result(timeout=7200)

    from bench.push import profile as py_spy

    profiler = py_spy(os.getpid(), profile) if profile else None
    with RssPeak() as rss:
        started, cpu = time.perf_counter(), time.process_time()
        steps = tick()  # entry, the first message, the waits set
        first_pass = time.perf_counter() - started
        server.clock.offset += timedelta(minutes=2)
        steps += tick()  # the split, the second message, the holdout, the week's waits set
        elapsed, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait()
    metrics = client.get_journey_execution_metrics(ApplicationId=app_id, JourneyId=journey_id)
    entered = int(metrics["JourneyExecutionMetricsResponse"]["Metrics"]["ENDPOINT_ENTERED"])
    assert entered == participants, metrics
    outcomes = {
        activity: client.get_journey_execution_activity_metrics(
            ApplicationId=app_id, JourneyId=journey_id, JourneyActivityId=activity
        )["JourneyExecutionActivityMetricsResponse"]["Metrics"]
        for activity in ("first", "second")
    }
    sent = sum(int(outcome.get("SUCCESSFUL", 0)) for outcome in outcomes.values())
    assert sent == 2 * participants, outcomes  # nobody opens: every participant gets both messages

    # Timer lag: the N participants wait a week; 1,000 more wait for timers due over the next 5 seconds.
    server.clock.offset = timedelta()
    timer_lags = lag_of_timers(server, client, app_id, segment_id, min(1000, participants), "e")
    add_endpoints(client, app_id, 200, "v", channel)
    event_lags = event_start(server, client, app_id)

    return {
        "participants": participants,
        "channel": channel,
        "load_seconds": round(load_seconds, 1),
        "steps": steps,
        "seconds": round(elapsed, 2),
        "first_pass_seconds": round(first_pass, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "cpu_ms_per_participant": round(cpu_seconds * 1000 / participants, 3),
        "steps_per_second": round(steps / elapsed),
        "steps_per_cpu_second": round(steps / cpu_seconds),
        "participants_per_second": round(participants / elapsed),
        "journey_messages_per_second": round(sent / elapsed),
        "activity_outcomes": outcomes,
        "sendmessages_per_second": round(baseline),
        "ratio": round(sent / elapsed / baseline, 2),
        "timer_lag_ms": _spread(timer_lags),
        "event_start_ms": _spread(event_lags),
        "peak_rss_mb_journey": round(rss.peak_kb / 1024),
        "rss_mb_course": rss.course,
        "memory_after_journey": memory_parts(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": code_version(),
        "load_average": os.getloadavg(),
        "machine": machine(),
    }


def measure_scale(server: RunningServer, participants: int, step_seconds: float) -> dict[str, Any]:
    """The engine and its store at `participants`, without the send path (measured by `measure`): participants are
    planted in the store, not let in from a segment, and have no endpoints, so the message activities pass them on
    without a message (ENDPOINT_CHANNEL_MISMATCH) after the same reads.

    1. Timer lag with no participant waiting (the baseline), then with `participants` waiting a week.
    2. An idle pass (nothing due) with them waiting: what the due-time index costs a pass.
    3. Steps: `participants` more, spread over the 6 activities and all due now, stepped by the engine for
       `step_seconds`; baseline, same run: the store moving due rows of the same table in the same batches with
       none of the engine's work (one UPDATE per row, a commit per `journeys.step_batch`), for half that time.
    4. Event start, with 2 × `participants` rows in the store.
    """
    client = server.client(KEY)
    app_id = client.create_app(CreateApplicationRequest={"Name": "scale"})["ApplicationResponse"]["Id"]
    for name in ("bench-first", "bench-second"):
        client.create_email_template(TemplateName=name, EmailTemplateRequest={"Subject": name, "TextPart": "Hello"})
    segment_id = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"][
        "Id"
    ]
    lag_before = lag_of_timers(server, client, app_id, segment_id, 1000, "b")

    waiting = draft_journey(client, app_id, segment_id, "waiting", {"week": ACTIVITIES["week"]})
    week_ms = int(time.time() * 1000) + 7 * 86_400_000
    plant_seconds = plant(server, app_id, waiting, {"week": participants}, week_ms, "w")
    lag_after = lag_of_timers(server, client, app_id, segment_id, 1000, "l")
    idle_ms = idle_pass_ms(server)
    idle_claim = idle_claim_ms(server)

    flow = draft_journey(client, app_id, segment_id, "flow", ACTIVITIES)
    share = participants // len(ACTIVITIES)
    spread = {activity: share for activity in ACTIVITIES}
    plant(server, app_id, flow, spread, int(time.time() * 1000), "f")
    steps, step_elapsed, step_cpu = server_run(server, lambda services: _step_for(services, step_seconds))
    server_run(server, lambda services: _park(services, flow))
    floor = draft_journey(client, app_id, segment_id, "floor", {"week": ACTIVITIES["week"]})
    # As many rows as it can move in the time (the table holds the 2 × participants planted before, like the
    # engine's): planting more would only lengthen the run.
    floor_rows = min(participants, FLOOR_ROWS)
    plant(server, app_id, floor, {"week": floor_rows}, int(time.time() * 1000), "s", activate=False)
    moved, move_elapsed = server_run(server, lambda services: _raw_moves(services, floor, step_seconds / 2))

    add_endpoints(client, app_id, 200, "v")
    event_lags = event_start(server, client, app_id)
    return {
        "participants": participants,
        "plant_rows_per_second": round(participants / plant_seconds),
        "timer_lag_ms_none_waiting": _spread(lag_before),
        "timer_lag_ms": _spread(lag_after),
        "idle_pass_ms": round(idle_ms, 2),
        "idle_claim_ms": round(idle_claim, 2),
        "steps": steps,
        "step_seconds": round(step_elapsed, 1),
        "steps_per_second": round(steps / step_elapsed),
        "step_cpu_seconds": round(step_cpu, 1),
        "steps_per_cpu_second": round(steps / step_cpu),
        "store_moves_per_second": round(moved / move_elapsed),
        "ratio": round((steps / step_elapsed) / (moved / move_elapsed), 2),
        "event_start_ms": _spread(event_lags),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": code_version(),
        "load_average": os.getloadavg(),
        "machine": machine(),
    }


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50": round(percentile(values, 0.5)),
        "p99": round(percentile(values, 0.99)),
        "max": round(max(values)) if values else None,
    }


def server_run(server: RunningServer, work: Any) -> Any:
    """Run a coroutine on the server's loop without RunningServer.run's 30-second cap."""
    return asyncio.run_coroutine_threadsafe(work(server.services), server.app.state.loop).result(timeout=7200)


def plant(
    server: RunningServer,
    app_id: str,
    journey_id: str,
    at: dict[str, int],
    due_ms: int,
    prefix: str,
    *,
    activate: bool = True,
) -> float:
    """Participants straight into the store: `at` maps an activity to how many wait there, due at `due_ms`; the
    journey then ACTIVE (unless told). Seconds taken."""
    started = time.perf_counter()
    run_id = f"{prefix}-run"
    server.run(
        lambda services: services.db.write(
            lambda tx: journey_store.insert_run(tx, app_id, journey_id, run_id, "RUNNING", "2026-01-01T00:00:00.000Z")
        )
    )
    number = 0
    for activity, count in at.items():
        for first in range(0, count, PLANT_ROWS):
            entrants = [
                (f"{prefix}{n}", 1, f"{prefix}{n}")
                for n in range(number + first, number + min(count, first + PLANT_ROWS))
            ]

            def write(tx: Any, rows: list[tuple[str, int, str]] = entrants, activity: str = activity) -> None:
                journey_store.add_participants(tx, app_id, journey_id, run_id, activity, due_ms, rows)

            server_run(server, lambda services, w=write: services.db.write(w))
        number += count
    if activate:
        server.run(
            lambda services: services.db.write(
                lambda tx: tx.execute("UPDATE journeys SET state = 'ACTIVE' WHERE id = ?", (journey_id,))
            )
        )
    return time.perf_counter() - started


def idle_claim_ms(server: RunningServer, claims: int = 20) -> float:
    """Mean wall time of a claim (the UPDATE that leases due participants, in a write) that finds nothing due: what
    each idle pass cost before the engine read first whether anything was due (the baseline for `idle_pass_ms`)."""

    async def work(services: Any) -> float:
        lease = int(time.time() * 1000) + 30_000
        started = time.perf_counter()
        for _ in range(claims):
            now_ms = int(time.time() * 1000)
            await services.db.write(lambda tx, n=now_ms: journey_store.claim_due(tx, n, 500, "idle", lease))
        return (time.perf_counter() - started) * 1000 / claims

    return float(server_run(server, work))


def idle_pass_ms(server: RunningServer, passes: int = 20) -> float:
    """Mean wall time of an engine pass that finds nothing due."""

    async def work(services: Any) -> float:
        started = time.perf_counter()
        for _ in range(passes):
            await services.journey_engine.tick()
        return (time.perf_counter() - started) * 1000 / passes

    return float(server_run(server, work))


async def _step_for(services: Any, seconds: float) -> tuple[int, float, float]:
    """The engine's steps (claim, step, commit; batch after batch) for `seconds`: (steps committed, seconds, this
    process's CPU seconds, all threads: PostgreSQL's own CPU is not in it)."""
    engine = services.journey_engine
    started, cpu = time.perf_counter(), time.process_time()
    steps = 0
    while time.perf_counter() - started < seconds:
        moved = await engine._step_due(services.clock.now())
        if not moved:
            break
        steps += moved
    return steps, time.perf_counter() - started, time.process_time() - cpu


async def _raw_moves(services: Any, journey_id: str, seconds: float) -> tuple[int, float]:
    """The store floor: due participants of the journey read and moved a week on, one UPDATE per row and a commit
    per step batch, none of the engine's work. (rows moved, seconds)."""
    batch = services.settings.journeys.step_batch
    later = int(time.time() * 1000) + 7 * 86_400_000

    def move(tx: Any) -> int:
        rows = tx.fetchall(
            "SELECT app_id, journey_id, endpoint_key, entry FROM journey_participants WHERE journey_id = ? "
            "AND due_at <= ? ORDER BY due_at LIMIT ?",
            (journey_id, int(time.time() * 1000), batch),
        )
        for row in rows:
            tx.execute(
                "UPDATE journey_participants SET due_at = ? WHERE app_id = ? AND journey_id = ? AND endpoint_key = ? "
                "AND entry = ?",
                (later, *row),
            )
        return len(rows)

    started = time.perf_counter()
    moved = 0
    while time.perf_counter() - started < seconds:
        count = await services.db.write(move)
        if not count:
            break
        moved += count
    elapsed = time.perf_counter() - started
    await _park(services, journey_id)  # the journey is not ACTIVE: the engine must not step what is left
    return moved, elapsed


async def _park(services: Any, journey_id: str) -> None:
    """Take a journey's participants out of the due-time index, so that the event-start measurement that follows
    does not queue behind them."""
    sql = "UPDATE journey_participants SET due_at = NULL WHERE journey_id = ?"
    await services.db.write(lambda tx: tx.execute(sql, (journey_id,)))


async def _start_engine(services: Any) -> asyncio.Task[None]:
    return asyncio.create_task(services.journey_engine.run())


async def _stop_engine(task: asyncio.Task[None]) -> None:
    task.cancel()


def lag_of_timers(
    server: RunningServer, client: Any, app_id: str, segment_id: str, timers: int, prefix: str
) -> list[float]:
    """Plant `timers` participants whose timers fall due over the next 5 seconds, let the engine run its own loop on
    the real clock, and return how late each was picked up (ms)."""
    lag_journey = draft_journey(client, app_id, segment_id, f"lag-{prefix}", {"soon": {"Holdout": {"Percentage": 0}}})
    base = time.time() * 1000 + 2000

    def plant(tx: Any) -> None:
        journey_store.insert_run(tx, app_id, lag_journey, "lag", "RUNNING", "2026-01-01T00:00:00.000Z")
        for index in range(timers):
            due = int(base + 5000 * index / timers)
            entrant = (f"{prefix}{index}", 1, f"{prefix}{index}")
            journey_store.add_participants(tx, app_id, lag_journey, "lag", "soon", due, [entrant])
        tx.execute("UPDATE journeys SET state = 'ACTIVE' WHERE id = ?", (lag_journey,))

    with LagRecorder() as recorder:
        for index in range(timers):
            recorder.due[(lag_journey, f"{prefix}{index}")] = base + 5000 * index / timers
        server.run(lambda services: services.db.write(plant))

        async def loop(services: Any) -> None:
            task = asyncio.create_task(services.journey_engine.run())
            await asyncio.sleep(9)
            task.cancel()

        server.run(loop)
        return list(recorder.lags)


def event_start(server: RunningServer, client: Any, app_id: str) -> list[float]:
    """200 PutEvents calls 50 ms apart, each starting an event journey for one of the endpoints v0...v199; how long
    from each call until the participant's first step was picked up (ms)."""
    event_filter = {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": ["visit"]}}}
    event_journey = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "visits",
            "Activities": {"hold": {"Holdout": {"Percentage": 0}}},
            "StartActivity": "hold",
            "StartCondition": {"EventStartCondition": {"EventFilter": event_filter}},
            "State": "ACTIVE",
        },
    )["JourneyResponse"]["Id"]
    with LagRecorder() as recorder:
        engine = server.run(lambda services: _start_engine(services))
        for n in range(200):
            recorder.due[(event_journey, f"v{n}")] = time.time() * 1000
            event = {"EventType": "visit", "Timestamp": datetime.now(UTC).isoformat()}
            client.put_events(
                ApplicationId=app_id,
                EventsRequest={"BatchItem": {f"v{n}": {"Endpoint": {}, "Events": {"e": event}}}},
            )
            time.sleep(0.05)
        time.sleep(1)
        server.run(lambda services: _stop_engine(engine))
        return list(recorder.lags)


def draft_journey(client: Any, app_id: str, segment_id: str, name: str, activities: dict[str, Any]) -> str:
    """A journey written as DRAFT (so that nobody enters from its segment); the bench plants its participants."""
    return client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": name,
            "Activities": activities,
            "StartActivity": next(iter(activities)),
            "StartCondition": {"SegmentStartCondition": {"SegmentId": segment_id}},
            "State": "DRAFT",
        },
    )["JourneyResponse"]["Id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument(
        "--scale", type=int, default=0, help="run the engine and store at this many participants (no sends)"
    )
    parser.add_argument("--step-seconds", type=float, default=120, help="how long --scale steps participants")
    parser.add_argument("--channel", choices=["email", "push"], default="email", help="what --participants sends")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--profile", type=Path, help="py-spy's raw stacks of this process while the journey runs")
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    results = []
    for store in stores:
        channel = args.channel.upper()
        measured = run(store, args.participants, args.scale, args.step_seconds, channel, args.profile)
        results.append({"store": store, **measured})
        print_scale(results[-1]) if args.scale else print_sends(results[-1])
    if args.out:
        args.out.write_text(json.dumps(results if len(results) > 1 else results[0], indent=1) + "\n")


def print_sends(result: dict[str, Any]) -> None:
    load = ", ".join(f"{x:.1f}" for x in result["load_average"])
    print(f"{result['store']}, {result['participants']:,} participants, {result['channel']} (load average {load})")
    print(
        f"{'steps/s':>9} {'steps/CPU s':>12} {'participants/s':>15} {'journey msg/s':>14} {'SendMessages msg/s':>19}"
        f" {'ratio':>6}"
    )
    r = result
    print(
        f"{r['steps_per_second']:>9,} {r['steps_per_cpu_second']:>12,} {r['participants_per_second']:>15,}"
        f" {r['journey_messages_per_second']:>14,} {r['sendmessages_per_second']:>19,} {r['ratio']:>6}"
    )
    lag, events = result["timer_lag_ms"], result["event_start_ms"]
    print(f"timer lag: p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms over {lag['count']} timers")
    print(f"event start: p50 {events['p50']} ms, p99 {events['p99']} ms over {events['count']} events")
    print(f"peak RSS {result['peak_rss_mb_journey']} MB while the journey ran, {result['peak_rss_mb']} MB in all")
    print(f"CPU {result['cpu_ms_per_participant']} ms per participant; RSS course (s, MB): {result['rss_mb_course']}")


def print_scale(result: dict[str, Any]) -> None:
    before, after, events = result["timer_lag_ms_none_waiting"], result["timer_lag_ms"], result["event_start_ms"]
    n = f"{result['participants']:,}"
    print(f"{result['store']}, {n} participants (load average {', '.join(f'{x:.1f}' for x in result['load_average'])})")
    print(f"{'case':<44} {'measured':>22} {'baseline (same run)':>22} {'ratio':>6}")
    print(
        f"{'steps, ' + n + ' due in the journey':<44} {result['steps_per_second']:>16,} /s"
        f" {result['store_moves_per_second']:>16,} /s {result['ratio']:>6}"
    )
    print(f"{'steps per CPU second of this process':<44} {result['steps_per_cpu_second']:>16,} /s")
    ratio = after["p99"] / before["p99"] if before["p99"] else float("nan")
    print(f"{'timer lag p99, ' + n + ' waiting':<44} {after['p99']:>19} ms {before['p99']:>19} ms {ratio:>6.2f}")
    print(
        f"{'idle pass, ' + n + ' waiting':<44} {result['idle_pass_ms']:>19} ms {result['idle_claim_ms']:>19} ms"
        " (a claim finding nothing)"
    )
    print(f"{'event start p99':<44} {events['p99']:>19} ms")
    print(f"{'planted participants':<44} {result['plant_rows_per_second']:>16,} /s")
    print(f"{'peak RSS':<44} {result['peak_rss_mb']:>19} MB")


if __name__ == "__main__":
    main()
