"""The journey engine at scale: participants through a 6-activity journey, timer lag under many pending waits, and
event-start latency, on a real Clarion server in this process with an SMTP sink process for the emails.

    .venv/bin/python -m bench.journeys [--participants 20000] [--store sqlite|postgres] [--out bench/results/x.json]

1. **Throughput**: N email endpoints enter from a segment: email → wait 1 minute → opened the email? → no: a second
   email → holdout 10 % (yes: they leave). The engine is driven pass after pass, the clock moved past the wait;
   participants advanced per second = steps committed / wall time. Baseline, same run, same sink: SendMessages to
   the same endpoints, 100 per call (the send path alone, as a direct send uses it).
2. **Timer lag**: the N participants wait at a 7-day wait while 1,000 others wait for timers spread over 5 seconds;
   the engine runs its own loop on the real clock; lag = when a participant was picked up − when it was due.
3. **Event start**: 200 PutEvents calls, each starting a journey for one endpoint; latency from the call to the
   participant's first step being picked up.

Peak RSS is this process's (the server, its store and the driver). PostgreSQL uses a throw-away database on
CLARION_TEST_POSTGRES_URL's server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
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
from clarion.channels.config import DeliverySettings, SmtpSettings  # noqa: E402
from clarion.config import AccessKey, Settings  # noqa: E402
from clarion.journeys.config import JourneySettings  # noqa: E402
from clarion.queue.config import QueueSettings  # noqa: E402
from clarion.store import journeys as journey_store  # noqa: E402

KEY = AccessKey(access_key_id="AKIDCLARIONBENCH0001", secret_access_key="bench-secret")
OPEN = {"EventType": {"Values": ["_email.open"]}}


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


def add_endpoints(client: Any, app_id: str, count: int, prefix: str) -> None:
    for start in range(0, count, 100):
        items = [
            {"Id": f"{prefix}{n}", "ChannelType": "EMAIL", "Address": f"{prefix}{n}@example.org"}
            for n in range(start, min(start + 100, count))
        ]
        client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})


def run(store: str, participants: int) -> dict[str, Any]:
    sink_port = free_port()
    sink = start_sink(sink_port)
    try:
        with tempfile.TemporaryDirectory() as data_dir, database_url(store) as url:
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
                delivery=DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=sink_port, security="none")),
            )
            with RunningServer(settings) as server:
                return measure(server, participants)
    finally:
        sink.kill()


def measure(server: RunningServer, participants: int) -> dict[str, Any]:
    client = server.client(KEY)
    app_id = client.create_app(CreateApplicationRequest={"Name": "bench"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    for name in ("bench-first", "bench-second"):
        client.create_email_template(TemplateName=name, EmailTemplateRequest={"Subject": name, "TextPart": "Hello"})
    loaded = time.perf_counter()
    add_endpoints(client, app_id, participants, "e")
    load_seconds = time.perf_counter() - loaded

    # Baseline: the send path alone, as SendMessages uses it, to the same endpoints and sink.
    started = time.perf_counter()
    for start in range(0, participants, 100):
        endpoints = {f"e{n}": {} for n in range(start, min(start + 100, participants))}
        client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Endpoints": endpoints,
                "MessageConfiguration": {"EmailMessage": {"SimpleEmail": {"Subject": {"Data": "x"}}}},
                "TemplateConfiguration": {"EmailTemplate": {"Name": "bench-first"}},
            },
        )
    baseline = participants / (time.perf_counter() - started)

    segment_id = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"][
        "Id"
    ]
    activities = {
        "first": {"EMAIL": {"TemplateName": "bench-first", "NextActivity": "minute"}},
        "minute": {"Wait": {"WaitTime": {"WaitFor": "PT1M"}, "NextActivity": "opened"}},
        "opened": {
            "ConditionalSplit": {
                "Condition": {"Conditions": [{"EventCondition": {"Dimensions": OPEN, "MessageActivity": "first"}}]},
                "FalseActivity": "second",
            }
        },
        "second": {"EMAIL": {"TemplateName": "bench-second", "NextActivity": "hold"}},
        "hold": {"Holdout": {"Percentage": 10, "NextActivity": "week"}},
        "week": {"Wait": {"WaitTime": {"WaitFor": "P7D"}}},
    }
    journey_id = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "bench",
            "Activities": activities,
            "StartActivity": "first",
            "StartCondition": {"SegmentStartCondition": {"SegmentId": segment_id}},
            "State": "ACTIVE",
        },
    )["JourneyResponse"]["Id"]

    def tick() -> int:
        loop = server.app.state.loop  # RunningServer.run waits 30 s at most; a pass over N participants takes longer
        return asyncio.run_coroutine_threadsafe(server.services.journey_engine.tick(), loop).result(timeout=7200)

    started = time.perf_counter()
    steps = tick()  # entry, the first email, the waits set
    server.clock.offset += timedelta(minutes=2)
    steps += tick()  # the split, the second email, the holdout, the week's waits set
    elapsed = time.perf_counter() - started
    metrics = client.get_journey_execution_metrics(ApplicationId=app_id, JourneyId=journey_id)
    entered = int(metrics["JourneyExecutionMetricsResponse"]["Metrics"]["ENDPOINT_ENTERED"])
    assert entered == participants, metrics
    throughput = steps / elapsed
    messages = 2 * participants / elapsed

    # Timer lag: the N participants wait a week; 1,000 more wait for timers due over the next 5 seconds.
    timers = min(1000, participants)
    server.clock.offset = timedelta()
    lag_journey = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "lag",
            "Activities": {"soon": {"Holdout": {"Percentage": 0}}},
            "StartActivity": "soon",
            "StartCondition": {"SegmentStartCondition": {"SegmentId": segment_id}},
            "State": "DRAFT",
        },
    )["JourneyResponse"]["Id"]
    base = time.time() * 1000 + 2000

    def plant(tx: Any) -> None:
        entrants = [(f"e{n}", 1, f"e{n}") for n in range(timers)]
        journey_store.insert_run(tx, app_id, lag_journey, "lag", "RUNNING", "2026-01-01T00:00:00.000Z")
        for index, entrant in enumerate(entrants):
            due = int(base + 5000 * index / timers)
            journey_store.add_participants(tx, app_id, lag_journey, "lag", "soon", due, [entrant])
        tx.execute("UPDATE journeys SET state = 'ACTIVE' WHERE id = ?", (lag_journey,))

    with LagRecorder() as recorder:
        for index in range(timers):
            recorder.due[(lag_journey, f"e{index}")] = base + 5000 * index / timers
        server.run(lambda services: services.db.write(plant))

        async def loop(services: Any) -> None:
            task = asyncio.create_task(services.journey_engine.run())
            await asyncio.sleep(9)
            task.cancel()

        server.run(loop)
        timer_lags = list(recorder.lags)

    # Event start: PutEvents → the participant's first step picked up.
    add_endpoints(client, app_id, 200, "v")
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
        event_lags = list(recorder.lags)

    return {
        "participants": participants,
        "load_seconds": round(load_seconds, 1),
        "steps": steps,
        "seconds": round(elapsed, 2),
        "steps_per_second": round(throughput),
        "journey_messages_per_second": round(messages),
        "sendmessages_per_second": round(baseline),
        "ratio": round(messages / baseline, 2),
        "timer_lag_ms": {
            "count": len(timer_lags),
            "p50": round(percentile(timer_lags, 0.5)),
            "p99": round(percentile(timer_lags, 0.99)),
            "max": round(max(timer_lags)) if timer_lags else None,
        },
        "event_start_ms": {
            "count": len(event_lags),
            "p50": round(percentile(event_lags, 0.5)),
            "p99": round(percentile(event_lags, 0.99)),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": code_version(),
        "load_average": os.getloadavg(),
        "machine": machine(),
    }


async def _start_engine(services: Any) -> asyncio.Task[None]:
    return asyncio.create_task(services.journey_engine.run())


async def _stop_engine(task: asyncio.Task[None]) -> None:
    task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"store": args.store, **run(args.store, args.participants)}
    print(f"{'participants':>14} {'steps/s':>9} {'journey msg/s':>14} {'SendMessages msg/s':>19} {'ratio':>6}")
    print(
        f"{result['participants']:>14,} {result['steps_per_second']:>9,} {result['journey_messages_per_second']:>14,}"
        f" {result['sendmessages_per_second']:>19,} {result['ratio']:>6}"
    )
    lag, events = result["timer_lag_ms"], result["event_start_ms"]
    print(f"timer lag: p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms over {lag['count']} timers")
    print(f"event start: p50 {events['p50']} ms, p99 {events['p99']} ms over {events['count']} events")
    print(f"peak RSS {result['peak_rss_mb']} MB")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
