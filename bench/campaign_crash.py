"""The campaign crash scenario at full scale: SIGKILL a `clarion serve` process a third of the way through a
100,000-recipient email campaign, restart it, and check that every recipient got the message, that at most one
batch went out twice, and that every duplicate was reported (tests/campaign_crash.py is the scenario; the test
suite runs it at a few thousand recipients).

    .venv/bin/python bench/campaign_crash.py [--endpoints 100000] [--store sqlite|postgres|both]
    .venv/bin/python bench/campaign_crash.py --processes 3 [--endpoints 100000]

Prints one row per store: the messages received before the kill, the duplicates and the PossibleDuplicates the
run reported, the time from the restart until the campaign completed, and the check's verdict. PostgreSQL uses a
throw-away database on CLARION_TEST_POSTGRES_URL's server.

`--processes 3` runs the group scenario instead (PostgreSQL, default settings): three processes deliver one
campaign; a third of the way through, the scheduler's leader and one other delivery process are SIGKILLed
together. It measures how long until the survivor holds the scheduler's lease (goal 10 s), how long until every
queue item leased at the kill was finished or leased again (goal 15 s), and checks that every recipient got the
message, with duplicates only from the batches in flight at the kill, all reported.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from campaign_crash import (  # noqa: E402
    BATCH,
    CrashRun,
    check_nothing_lost,
    crash_and_restart,
    start_email_campaign,
    wait_for,
)
from conftest import ADMIN, POSTGRES_URL, free_port  # noqa: E402
from processes import pinpoint, start_server  # noqa: E402
from smtp_relay import Relay, start_relay  # noqa: E402

from clarion.config import Settings  # noqa: E402


@contextmanager
def database_url(store: str) -> Iterator[str]:
    """Empty for SQLite (a file in the data folder); for PostgreSQL a database of its own, dropped afterwards."""
    if store == "sqlite":
        yield ""
        return
    import psycopg

    name = f"clarion_crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(store: str, endpoints: int) -> tuple[CrashRun, str]:
    relay = Relay()
    controller, smtp_port = start_relay(relay)
    try:
        with tempfile.TemporaryDirectory() as folder, database_url(store) as url:
            settings = Settings(data_dir=Path(folder) / "data", port=free_port(), access_keys=[ADMIN], database_url=url)
            outcome = crash_and_restart(settings, (relay, smtp_port), Path(folder) / "server.log", endpoints)
    finally:
        controller.stop()
    try:
        check_nothing_lost(outcome)
    except AssertionError as failed:
        return outcome, f"FAILED: {failed}"
    return outcome, "nothing lost, duplicates reported"


ROLE = re.compile(r'clarion_leader\{role="campaign-scheduler"\} (\S+)')


def _leads(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            found = ROLE.search(response.read().decode())
    except OSError:
        return False
    return found is not None and float(found.group(1)) == 1.0


@dataclass(frozen=True)
class GroupRun:
    endpoints: int
    received_at_kill: int
    received: Counter[str]
    reported_duplicates: int
    leader_moved_seconds: float  # from the kill until the survivor holds the scheduler's lease
    recovered_seconds: float  # from the kill until every item leased at the kill was finished or leased again
    seconds_to_complete: float  # from the kill until the campaign is COMPLETED

    @property
    def duplicates(self) -> int:
        return sum(self.received.values()) - len(self.received)


def _leased_items(url: str) -> dict[int, int]:
    """Queue items leased now (their lease not yet run out): id -> attempts."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, attempts FROM queue_items WHERE lease_token IS NOT NULL AND available_at > "
            "(extract(epoch FROM now()) * 1000)::bigint"
        ).fetchall()
    return {int(item): int(attempts) for item, attempts in rows}


def _still_held(url: str, leased: dict[int, int]) -> int:
    """How many of the items leased at the kill are neither finished nor leased again."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, attempts FROM queue_items WHERE id = ANY(%s)", (list(leased),)).fetchall()
    return sum(1 for item, attempts in rows if int(attempts) == leased[int(item)])


def run_group(endpoints: int) -> tuple[GroupRun, str]:
    relay = Relay()
    controller, smtp_port = start_relay(relay)
    processes: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        with tempfile.TemporaryDirectory() as folder, database_url("postgres") as url:
            env = {
                "CLARION_DELIVERY__SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "CLARION_DELIVERY__SMTP__HOST": "127.0.0.1",
                "CLARION_DELIVERY__SMTP__PORT": str(smtp_port),
                "CLARION_DELIVERY__SMTP__SECURITY": "none",
                "CLARION_CAMPAIGNS__BATCH_SIZE": str(BATCH),
            }
            for number in range(3):
                settings = Settings(
                    data_dir=Path(folder) / f"p{number}", port=free_port(), access_keys=[ADMIN], database_url=url
                )
                processes.append((settings.port, start_server(settings, Path(folder) / f"p{number}.log", **env)))
            client = pinpoint(processes[0][0])
            app_id, campaign_id = start_email_campaign(client, "group", endpoints)
            wait_for(lambda: len(relay.received) >= endpoints // 3, 600, "a third of the messages")
            [leader] = [entry for entry in processes if _leads(entry[0])]
            other = next(entry for entry in processes if entry is not leader)
            leased = _leased_items(url)
            for _, process in (leader, other):
                os.kill(process.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            at_kill = len(relay.received)
            [survivor] = [entry for entry in processes if entry not in (leader, other)]
            wait_for(lambda: _leads(survivor[0]), 60, "the survivor to lead")
            moved = time.monotonic() - killed_at
            wait_for(lambda: _still_held(url, leased) == 0, 120, "the killed processes' items to be taken up")
            recovered = time.monotonic() - killed_at
            client = pinpoint(survivor[0])

            def completed() -> bool:
                response = client.get_campaign(ApplicationId=app_id, CampaignId=campaign_id)
                return response["CampaignResponse"]["State"]["CampaignStatus"] == "COMPLETED"

            wait_for(completed, 300 + endpoints / 100, "the campaign to complete")
            finished = time.monotonic() - killed_at
            [activity] = client.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign_id)[
                "ActivitiesResponse"
            ]["Item"]
    finally:
        for _, process in processes:
            process.kill()
            process.wait()
        controller.stop()
    reported = int(activity["ExecutionMetrics"].get("PossibleDuplicates", "0"))
    outcome = GroupRun(endpoints, at_kill, Counter(relay.recipients()), reported, moved, recovered, finished)
    problems = []
    if set(outcome.received) != {f"e{n}@example.org" for n in range(endpoints)}:
        problems.append("recipients missed")
    if outcome.duplicates > 2 * BATCH or outcome.duplicates > outcome.reported_duplicates:
        problems.append(f"{outcome.duplicates} duplicates, {outcome.reported_duplicates} reported")
    if moved > 10:
        problems.append(f"scheduler moved after {moved:.1f} s")
    if recovered > 15:
        problems.append(f"work taken up after {recovered:.1f} s")
    return outcome, f"FAILED: {'; '.join(problems)}" if problems else "goals met, nothing lost"


def main_group(endpoints: int) -> None:
    print(
        "| processes | recipients | received before the kill | duplicates | reported | scheduler moved | "
        "killed work taken up | kill to COMPLETED | check |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    outcome, verdict = run_group(endpoints)
    print(
        f"| 3, leader + 1 killed | {outcome.endpoints:,} | {outcome.received_at_kill:,} | {outcome.duplicates} | "
        f"{outcome.reported_duplicates} | {outcome.leader_moved_seconds:.1f} s | {outcome.recovered_seconds:.1f} s "
        f"| {outcome.seconds_to_complete:.0f} s | {verdict} |",
        flush=True,
    )
    sys.exit(1 if verdict.startswith("FAILED") else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=100_000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--processes", type=int, choices=[1, 3], default=1, help="3: the group scenario")
    args = parser.parse_args()
    if args.processes == 3:
        main_group(args.endpoints)
        return
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    print("| store | recipients | received before the kill | duplicates | reported | restart to COMPLETED | check |")
    print("|---|---:|---:|---:|---:|---:|---|")
    failed = False
    for store in stores:
        outcome, verdict = run(store, args.endpoints)
        failed = failed or verdict.startswith("FAILED")
        print(
            f"| {store} | {outcome.endpoints:,} | {outcome.received_at_kill:,} | {outcome.duplicates} | "
            f"{outcome.reported_duplicates} | {outcome.seconds_to_complete:.0f} s | {verdict} |",
            flush=True,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
