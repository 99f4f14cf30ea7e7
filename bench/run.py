"""Benchmark the core server in one command: `.venv/bin/python bench/run.py [--quick] [--runs 3] [--store sqlite]`.

Each run starts `clarion serve` on a fresh store, drives it from a separate load-generator process
(`bench/load.py`) with SigV4-signed HTTP requests, kills the server with SIGKILL and counts what the store holds:
every item answered 2xx must be there, which is what "accepted and durable" means. Then it runs the same
CreateApp/GetApp/GetApps/DeleteApp loop against moto's server for the comparison. The server and the load generator are
pinned to different CPUs where the OS allows, so the client's work is not charged to the server.

Prints a table of medians over the runs (with each run's numbers) and writes everything to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
BIN = Path(sys.executable).parent
REGION = "eu-west-1"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"

ENDPOINTS_GOAL = 30_000  # endpoints/s accepted and durable, UpdateEndpointsBatch with 100 per request
EVENTS_GOAL = 100_000  # events/s accepted and durable, PutEvents with 100 per request

# Wide enough for the tables when the output is a file or a pipe.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True)
class Profile:
    """How much work one run does. Bulk phases prepare `goal x seconds` of requests and stop at `seconds`."""

    seconds: float  # cap on each throughput phase
    concurrency: int  # requests in flight in the throughput phases
    get_rate: int  # GetEndpoint requests per second, open loop
    get_seconds: float
    loop_iterations: int  # CreateApp/GetApp/GetApps/DeleteApp iterations per server
    loop_concurrency: int

    def plan(self) -> dict[str, Any]:
        return {
            "endpoints": {
                "requests": int(ENDPOINTS_GOAL * self.seconds / 100),
                "seconds": self.seconds,
                "concurrency": self.concurrency,
            },
            "events": {
                "requests": int(EVENTS_GOAL * self.seconds / 100),
                "seconds": self.seconds,
                "concurrency": self.concurrency,
            },
            "get_endpoint": {"rate": self.get_rate, "seconds": self.get_seconds},
            "apps_loop": self.loop_plan(),
        }

    def loop_plan(self) -> dict[str, Any]:
        return {"iterations": self.loop_iterations, "concurrency": self.loop_concurrency}


QUICK = Profile(seconds=3, concurrency=32, get_rate=500, get_seconds=3, loop_iterations=300, loop_concurrency=4)
FULL = Profile(seconds=10, concurrency=32, get_rate=500, get_seconds=20, loop_iterations=1500, loop_concurrency=4)


# ---- the machine ----------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        memory_gib = round(int(meminfo.readline().split()[1]) / 1024 / 1024, 1)
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def code_version() -> str:
    """The commit benchmarked, and whether clarion/ had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "clarion"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    overridden = f" (server imports from PYTHONPATH={os.environ['PYTHONPATH']})" if os.environ.get("PYTHONPATH") else ""
    return f"{commit}{' + uncommitted changes in clarion/' if dirty else ''}{overridden}"


def cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """Server on the first allowed CPU, everything else (the load generator) on the rest, if there are two."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


# ---- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}; its log:\n{log.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not become ready in 60 s; its log:\n{log.read_text()[-3000:]}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def started(
    argv: list[str], env: dict[str, str], cpus: set[int] | None, log: Path, ready: Callable[[], bool], what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process for the duration of the block; SIGKILL it at the end if it is still there."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=pinned(cpus))
    try:
        wait_until(ready, process, what, log)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_load(plan: dict[str, Any], cpus: set[int] | None) -> dict[str, Any]:
    """Drive a server from a separate process (its own interpreter, its own CPU)."""
    completed = subprocess.run(
        [sys.executable, str(BENCH_DIR / "load.py")],
        input=json.dumps(plan).encode(),
        capture_output=True,
        preexec_fn=pinned(cpus),
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"load generator failed ({completed.returncode}):\n{completed.stderr.decode()[-5000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


# ---- stores ---------------------------------------------------------------------------------------------------


@dataclass
class Store:
    """A fresh store for one run, and a way to count what it holds for one app."""

    kind: str
    data_dir: Path
    database_url: str = ""
    admin_url: str = ""

    def serve_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        return [*args, "--database-url", self.database_url] if self.database_url else args

    def count(self, app_id: str) -> dict[str, int]:
        queries = {
            "endpoints": ("SELECT count(*) FROM endpoints WHERE app_id = ?", (app_id,)),
            "events": ("SELECT count(*) FROM events WHERE app_id = ?", (app_id,)),
            "apps": ("SELECT count(*) FROM apps", ()),
        }
        return {name: int(value) for name, value in self.scalars(queries).items()}

    def scalars(self, queries: dict[str, tuple[str, tuple[Any, ...]]]) -> dict[str, Any]:
        """The first column of each query's first row, by name (`?` placeholders on both stores)."""
        if self.kind == "sqlite":
            # A plain connection: opening it replays the WAL a killed server left, as a restart would.
            conn = sqlite3.connect(self.data_dir / "clarion.sqlite3")
            try:
                return {name: conn.execute(sql, params).fetchone()[0] for name, (sql, params) in queries.items()}
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.database_url) as pg:
            return {
                name: pg.execute(sql.replace("?", "%s"), params).fetchone()[0]  # type: ignore[index]
                for name, (sql, params) in queries.items()
            }

    def backend_cpu_seconds(self) -> dict[int, float]:
        """PostgreSQL only: CPU seconds so far of each server process connected to this run's database, by pid."""
        import psycopg

        name = self.database_url.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            pids = [pid for (pid,) in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))]
        used = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return used

    def drop(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.database_url:
            import psycopg

            name = self.database_url.rsplit("/", 1)[1]
            with psycopg.connect(self.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fresh_store(kind: str, admin_url: str, scratch: Path) -> Store:
    data_dir = Path(tempfile.mkdtemp(prefix="clarion-bench-", dir=scratch))
    if kind == "sqlite":
        return Store(kind, data_dir)
    import psycopg

    name = f"clarion_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return Store(kind, data_dir, f"{admin_url.rsplit('/', 1)[0]}/{name}", admin_url)


# ---- one run --------------------------------------------------------------------------------------------------


def one_run(number: int, args: argparse.Namespace, profile: Profile, scratch: Path) -> dict[str, Any]:
    server_cpus, client_cpus = cpu_split()
    key_id, secret = "BENCH" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
    # No per-key rate limit: the benchmark measures the server, not the limiter's ceiling (docs/security.md).
    env = {
        **os.environ,
        "CLARION_ACCESS_KEY_ID": key_id,
        "CLARION_SECRET_ACCESS_KEY": secret,
        "CLARION_RATE_LIMIT__REQUESTS_PER_SECOND": "0",
    }
    credentials = {"access_key_id": key_id, "secret_access_key": secret, "region": REGION}
    store = fresh_store(args.store, args.postgres_url, scratch)
    run: dict[str, Any] = {"run": number}
    try:
        port = free_port()
        log = scratch / f"clarion-run{number}.log"
        argv = [str(BIN / "clarion"), "serve", "--port", str(port), *store.serve_args()]
        console.print(f"[dim]run {number}: Clarion ({store.kind}) on :{port}[/dim]")
        with started(argv, env, server_cpus, log, lambda: http_ok(f"http://127.0.0.1:{port}/health"), "clarion") as p:
            plan = {"url": f"http://127.0.0.1:{port}", "server_pid": p.pid, "phases": profile.plan(), **credentials}
            run["clarion"] = run_load(plan, client_cpus)
            p.send_signal(signal.SIGKILL)  # no graceful shutdown: only what was committed before each 2xx survives
            p.wait()
        run["durability"] = check_durability(store, run["clarion"])
    finally:
        store.drop()

    port = free_port()
    log = scratch / f"moto-run{number}.log"
    argv = [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    console.print(f"[dim]run {number}: moto on :{port}[/dim]")
    with started(argv, dict(os.environ), server_cpus, log, lambda: port_open(port), "moto") as p:
        plan = {
            "url": f"http://127.0.0.1:{port}",
            "server_pid": p.pid,
            "phases": {"apps_loop": profile.loop_plan()},
            **credentials,
        }
        run["moto"] = run_load(plan, client_cpus)
    run["ratio"] = round(run["clarion"]["apps_loop"]["ops_per_s"] / run["moto"]["apps_loop"]["ops_per_s"], 2)
    return run


def check_durability(store: Store, result: dict[str, Any]) -> dict[str, Any]:
    """Every item answered 2xx must be in the store after SIGKILL, and nothing else (ids are all distinct)."""
    counted = store.count(result["app_id"])
    expected = {
        "endpoints": result["endpoints"]["accepted_total"],
        "events": result["events"]["accepted_total"],
        "apps": 1 + result["apps_loop"]["apps_left"],  # the benchmark's own app (the loop deletes what it creates)
    }
    return {"expected": expected, "stored": counted, "ok": counted == expected}


# ---- report ---------------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def summarize(runs: list[dict[str, Any]], rate: int) -> list[dict[str, Any]]:
    """One row per metric: median over runs, the goal, whether it is met, and each run's value."""

    def row(metric: str, values: list[float], goal: str, met: bool | None, unit: str = "") -> dict[str, Any]:
        return {"metric": metric, "median": median(values), "unit": unit, "goal": goal, "met": met, "runs": values}

    endpoints = [r["clarion"]["endpoints"]["rate"] for r in runs]
    events = [r["clarion"]["events"]["rate"] for r in runs]
    p50 = [r["clarion"]["get_endpoint"]["p50_ms"] for r in runs]
    p99 = [r["clarion"]["get_endpoint"]["p99_ms"] for r in runs]
    get_errors = [r["clarion"]["get_endpoint"]["errors"] for r in runs]
    clarion_ops = [r["clarion"]["apps_loop"]["ops_per_s"] for r in runs]
    moto_ops = [r["moto"]["apps_loop"]["ops_per_s"] for r in runs]
    ratios = [r["ratio"] for r in runs]
    durable = all(r["durability"]["ok"] for r in runs)
    return [
        row(
            "UpdateEndpointsBatch (100/request)",
            endpoints,
            f"≥ {ENDPOINTS_GOAL:,}",
            median(endpoints) >= ENDPOINTS_GOAL,
            "endpoints/s",
        ),
        row("PutEvents (100/request)", events, f"≥ {EVENTS_GOAL:,}", median(events) >= EVENTS_GOAL, "events/s"),
        row(f"GetEndpoint p50 at {rate}/s open loop", p50, "report", None, "ms"),
        row(f"GetEndpoint p99 at {rate}/s open loop", p99, "report", None, "ms"),
        row("GetEndpoint errors", get_errors, "0", not any(get_errors), "requests"),
        row("CreateApp/GetApp/GetApps/DeleteApp, Clarion", clarion_ops, "", None, "ops/s"),
        row("CreateApp/GetApp/GetApps/DeleteApp, moto", moto_ops, "", None, "ops/s"),
        row("Clarion / moto", ratios, "> 1", median(ratios) > 1, "x"),
        row("2xx items found after SIGKILL", [1.0 if r["durability"]["ok"] else 0.0 for r in runs], "all", durable),
    ]


def fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def cpu_cells(phase: dict[str, Any]) -> list[str]:
    server, client, machine = phase["server_cpu_pct"] or 0.0, phase["client_cpu_pct"], phase["machine_cpu_pct"]
    return [f"{server:.0f}%", f"{client:.0f}%", f"{max(0.0, machine - server - client):.0f}%"]


def print_report(report: dict[str, Any]) -> None:
    info = report["machine"]
    console.print(
        f"\n[bold]Clarion benchmark[/bold] — {report['date']} — store {report['store']} — "
        f"{'quick' if report['quick'] else 'full'}, {len(report['runs'])} run(s)"
    )
    console.print(f"machine: {info['cpu_model']}, {info['cores']} cores, {info['memory_gib']} GiB, {info['os']}")
    console.print(f"pinning: {report['pinning']}")
    console.print(f"code: {report['code']}")
    table = Table(show_lines=False)
    for column in ("metric", "median", "unit", "goal", "met?", "runs"):
        table.add_column(column, justify="right" if column in ("median", "runs") else "left")
    for row in report["summary"]:
        met = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: ""}[row["met"]]
        if row["metric"].startswith("2xx items"):
            median_text, runs_text = (
                ("yes" if row["met"] else "NO"),
                " ".join("ok" if v else "FAIL" for v in row["runs"]),
            )
        else:
            median_text, runs_text = fmt(row["median"]), " / ".join(fmt(v) for v in row["runs"])
        table.add_row(row["metric"], median_text, row["unit"], row["goal"], met, runs_text)
    console.print(table)
    details = Table(
        title="per run: CPU in % of one core (server, load generator, everything else on the machine) "
        "and what the store held after SIGKILL"
    )
    for column in ("run", "endpoints/s", "srv", "cli", "other", "events/s", "srv", "cli", "other", "stored = 2xx"):
        details.add_column(column, justify="right")
    for run in report["runs"]:
        c = run["clarion"]
        stored = run["durability"]["stored"]
        details.add_row(
            str(run["run"]),
            fmt(c["endpoints"]["rate"]),
            *cpu_cells(c["endpoints"]),
            fmt(c["events"]["rate"]),
            *cpu_cells(c["events"]),
            f"{'ok' if run['durability']['ok'] else 'MISMATCH'} ({stored['endpoints']:,} endpoints, "
            f"{stored['events']:,} events, {stored['apps']} apps)",
        )
    console.print(details)
    for run in report["runs"]:
        if not run["durability"]["ok"]:
            console.print(f"[red]run {run['run']}: store does not match 2xx answers: {run['durability']}[/red]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts, one run (< 60 s)")
    parser.add_argument("--runs", type=int, default=None, help="runs to take the median of (default 3; quick: 1)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CLARION_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL the benchmark may create and drop databases on",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.json")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    runs = args.runs or (1 if args.quick else 3)
    server_cpus, client_cpus = cpu_split()
    pinning = (
        f"server on CPU {sorted(server_cpus)}, load generator on CPU {sorted(client_cpus)} (sched_setaffinity)"
        if server_cpus and client_cpus
        else "none (fewer than 2 CPUs or no sched_setaffinity): client and server share CPUs"
    )
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "store": args.store,
        "quick": args.quick,
        "machine": machine(),
        "pinning": pinning,
        "code": code_version(),
        "profile": profile.plan(),
        "server_env": {k: v for k, v in os.environ.items() if k.startswith("CLARION_") and "SECRET" not in k},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="clarion-bench-") as scratch:
        for number in range(1, runs + 1):
            report["runs"].append(one_run(number, args, profile, Path(scratch)))
    report["summary"] = summarize(report["runs"], profile.get_rate)
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    console.print(f"results: {args.out}")
    return 0 if all(run["durability"]["ok"] for run in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
