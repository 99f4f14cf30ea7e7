"""The campaign crash scenario at full scale: SIGKILL a `clarion serve` process a third of the way through a
100,000-recipient email campaign, restart it, and check that every recipient got the message, that at most one
batch went out twice, and that every duplicate was reported (tests/campaign_crash.py is the scenario; the test
suite runs it at a few thousand recipients).

    .venv/bin/python bench/campaign_crash.py [--endpoints 100000] [--store sqlite|postgres|both]

Prints one row per store: the messages received before the kill, the duplicates and the PossibleDuplicates the
run reported, the time from the restart until the campaign completed, and the check's verdict. PostgreSQL uses a
throw-away database on CLARION_TEST_POSTGRES_URL's server.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from campaign_crash import CrashRun, check_nothing_lost, crash_and_restart  # noqa: E402
from conftest import ADMIN, POSTGRES_URL, free_port  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=100_000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
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
