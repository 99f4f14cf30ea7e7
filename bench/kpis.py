"""KPI latency: 31-day KPIs grouped by date and by campaign activity over many events, on the embedded default (the
DuckDB replica) and on PostgreSQL's row store, each against a raw scan of the same rows measured in the same run.

    .venv/bin/python bench/kpis.py [--events 5000000] [--pg-events 1000000] [--campaigns 20] [--repeat 7]

1. DuckDB: a replica file in a temporary folder, --events events loaded through the replica's own path
   (`Round.apply_events`: the events table, endpoint activity, engagement and the KPI rollups), generated in
   DuckDB in batches of --batch (1,000,000) and spread over 40 days: campaign sends on email, SMS and push with their
   outcomes (opens, clicks, bounces, SMS receipts with prices) for --campaigns campaigns of 4 activities each, and
   app events (sessions) for the rest. Each KPI runs as the API runs it (`clarion/analytics/kpi_duckdb.py`).
   Baseline: `SELECT day, count(*) ... GROUP BY day` over the same project and 31 days of the `events` table.
2. PostgreSQL (skipped with --pg-events 0): the same mix, --pg-events events, in a fresh database on the local
   server, filled by SQL in bulk (bench/bulk_fill.py: the rows, indexes and KPI rollups the write path and its
   trigger leave, clarion/store/kpi_rollup.py), after a --check-events fill both ways proved them equal; KPIs by SQL
   on the row store as the API runs them; baseline the same raw count by day. Each rollup-answered KPI is also run
   scanning the events (--scan-repeat times; 0 skips it) and must give the same rows. `--pg-stage fill` keeps the
   filled database and prints how to time it in a later run (`--pg-database`), so that each run stays within a
   benchmark's time on the shared machine.

Prints a table (median of --repeat after one warm-up) and saves bench/results/kpis.json.
"""

# ruff: noqa: E402  (sys.path is set before the imports; see below)
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.bulk_fill import EventsSql, FreshStore, check, database_url, drop_database, fill, fresh_store, iso_ms
from clarion.analytics import kpi_duckdb
from clarion.analytics.kpis import KPIS, Kpi
from clarion.analytics.replica import Replica
from clarion.clock import epoch_millis
from clarion.store import kpi_rollup, kpi_sql
from clarion.store.database import POSTGRESQL, Dialect, Transaction, connect_postgres
from clarion.store.kpi_sql import KpiQuery

APP_ID = "bench"
DAY_MS = 86_400_000
SPREAD_DAYS = 40
BATCH = 1_000_000
APPEND_BATCH = 10_000  # PostgreSQL: events per insert of the write path the bulk fill stands for
POSTGRES_URL = os.environ.get("CLARION_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# What each measured KPI is: (level, kpi-name, scope id). c0 is one campaign of --campaigns.
MEASURED = (
    ("campaign", "successful-delivery-rate-grouped-by-date", "c0"),
    ("campaign", "attempted-deliveries-grouped-by-campaign-activity", "c0"),
    ("app", "successful-delivery-rate-grouped-by-date", None),
    ("app", "txn-sms-total-price-grouped-by-country", None),
    ("campaign", "unique-deliveries-grouped-by-date", "c0"),
    ("app", "unique-deliveries-grouped-by-date", None),
    ("app", "unique-deliveries-grouped-by-campaign", None),
)
# Event kinds by i % 10: six campaign-message events, four app events.
KINDS = (
    "_campaign.send",
    "_campaign.send",
    "_campaign.send",
    "_email.open",
    "_email.hardbounce",
    "_SMS.SUCCESS",
    "_session.start",
    "_session.stop",
    "level.done",
    "_session.start",
)


def duckdb_batch(start: int, count: int, events: int, now_ms: int, campaigns: int) -> str:
    """A SELECT producing `count` staged events from number `start` on, typed as the replica's feed reads them.

    Events arrive in time order over the 40 days, as a live project's do; each hour one campaign sends (its
    activity changes daily), to email, SMS and push endpoints in four countries."""
    kinds = "[" + ", ".join(f"'{kind}'" for kind in KINDS) + "]"
    first = now_ms - SPREAD_DAYS * DAY_MS
    return f"""
        SELECT '{APP_ID}' AS app_id, 'e' || (i * 7919 % 500000) AS endpoint_id, {kinds}[i % 10 + 1] AS event_type,
               ts AS event_at, ts AS arrival_at, NULL::VARCHAR AS session_id, 1::BIGINT AS change_seq, i AS seq,
               CASE WHEN i % 10 < 6 THEN {{
                   'Attributes': MAP {{
                       'campaign_id': 'c' || (ts // 3600000 % {campaigns}),
                       'ActivityId': 'c' || (ts // 3600000 % {campaigns}) || '-a' || (ts // {DAY_MS} % 4),
                       'channel_type': ['EMAIL', 'SMS', 'GCM'][i // 10 % 3 + 1],
                       'delivery_status': CASE WHEN i % 97 = 0 THEN 'PERMANENT_FAILURE' ELSE 'SUCCESSFUL' END,
                       'iso_country_code': ['US', 'DE', 'FR', 'BR'][i // 3 % 4 + 1]}},
                   'Metrics': MAP {{'price_in_millicents_usd': (i % 900)::DOUBLE}}}}
               ELSE {{'Attributes': MAP {{'level': '3'}}, 'Metrics': MAP {{'score': 1.0}}}} END AS doc
        FROM (SELECT i, {first} + i * {SPREAD_DAYS * DAY_MS} // {max(events, 1)} AS ts
              FROM range({start}, {start + count}) t(i))"""


def load_duckdb(replica: Replica, events: int, now_ms: int, campaigns: int, batch: int) -> float:
    started = time.perf_counter()
    with replica.round() as round_:
        for start in range(0, events, batch):
            count = min(batch, events - start)
            round_.con.execute(
                f"CREATE OR REPLACE TEMP TABLE staged AS {duckdb_batch(start, count, events, now_ms, campaigns)}"
            )
            round_.apply_events()
            round_.commit()
            print(f"  duckdb: {start + count:,} events loaded", flush=True)
    return time.perf_counter() - started


def query_of(kpi: Kpi, scope_id: str | None, start_ms: int, end_ms: int) -> KpiQuery:
    return KpiQuery(APP_ID, start_ms, end_ms, kpi.scope, scope_id, kpi.group, kpi.metric.counters)


def median_ms(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = work()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def time_duckdb(replica: Replica, window: tuple[int, int], repeat: int) -> dict[str, Any]:
    con = replica.cursor()
    baseline_sql = (
        f"SELECT event_at // {DAY_MS}, count(*) FROM events WHERE app_id = ? AND event_at BETWEEN ? AND ? GROUP BY 1"
    )
    base_ms, _ = median_ms(lambda: con.execute(baseline_sql, [APP_ID, *window]).fetchall(), repeat)
    rows: dict[str, Any] = {"baseline_ms": base_ms, "kpis": {}}
    for level, name, scope_id in MEASURED:
        query = query_of(KPIS[level][name], scope_id, *window)
        took, result = median_ms(lambda q=query: kpi_duckdb.run(con, q), repeat)
        source = kpi_duckdb.columns_for(query)
        entry = {"ms": took, "rows": len(result), "source": type(source).__name__}
        if not isinstance(source, kpi_duckdb.ReplicaColumns):  # the same KPI scanning every event, as without rollups
            sql, params = kpi_sql.compile_kpi(query, kpi_duckdb.ReplicaColumns())
            scanned_ms, scanned = median_ms(lambda s=sql, p=params: con.execute(s, p).fetchall(), max(1, repeat // 2))
            assert sorted(map(tuple, scanned)) == sorted(result), name  # the rollup answers exactly the same
            entry["scan_ms"] = scanned_ms
        rows["kpis"][f"{level}:{name}"] = entry
    con.close()
    return rows


def postgres_events(events: int, now_ms: int, campaigns: int) -> EventsSql:
    """Event number i of the mix `duckdb_batch` makes, as the store keeps it: Clarion's message events as
    clarion/channels/outcomes.py records them (type, time and attributes in msgspec's compact JSON), app events as
    PutEvents stores them."""
    first = now_ms - SPREAD_DAYS * DAY_MS
    kinds = "ARRAY[" + ", ".join(f"'{kind}'" for kind in KINDS) + "]"

    def spell(dialect: Dialect) -> str:
        ts = f"({first} + i * {SPREAD_DAYS * DAY_MS} / {max(events, 1)})"
        kind = f"({kinds})[i % 10 + 1]"
        campaign = f"'c' || ({ts} / 3600000 % {campaigns})"
        head = f"""'{{"EventType":"' || {kind} || '","Timestamp":"' || {iso_ms(dialect, ts)} || '",'"""
        message = (
            f"""{head} || '"Attributes":{{"campaign_id":"' || {campaign} || '","ActivityId":"' || {campaign} """
            f"""|| '-a' || ({ts} / {DAY_MS} % 4) || '","channel_type":"' """
            """|| (ARRAY['EMAIL', 'SMS', 'GCM'])[i / 10 % 3 + 1] """
            """|| '","delivery_status":"' || CASE WHEN i % 97 = 0 THEN 'PERMANENT_FAILURE' ELSE 'SUCCESSFUL' END """
            """|| '","iso_country_code":"' || (ARRAY['US', 'DE', 'FR', 'BR'])[i / 3 % 4 + 1] """
            """|| '"},"Metrics":{"price_in_millicents_usd":' || (i % 900) || '.0}}'"""
        )
        app = f"""{head} || '"Attributes":{{"level":"3"}},"Metrics":{{"score":1.0}}}}'"""
        return (
            f"'{APP_ID}', 'e' || (i * 7919 % 500000), i::text, {kind}, {ts}, {ts}, NULL, "
            f"CASE WHEN i % 10 < 6 THEN {message} ELSE {app} END"
        )

    return spell


def load_postgres(store: FreshStore, events: int, now_ms: int, campaigns: int) -> dict[str, float]:
    """The events in bulk (bench/bulk_fill.py): rows, indexes and rollups as the write path and its trigger leave
    them."""
    timings = fill(store.tx_of, postgres_events(events, now_ms, campaigns), events, APPEND_BATCH)
    started = time.perf_counter()
    store.conn.execute("ANALYZE")  # what autovacuum would have done by then
    timings["analyze"] = time.perf_counter() - started
    return timings


def rollup_sizes(tx: Transaction) -> dict[str, int]:
    return {f"{table}_rows": int(tx.scalar(f"SELECT count(*) FROM {table}")) for table in kpi_rollup.TABLES}


def time_postgres(url: str, window: tuple[int, int], repeat: int, scan_repeat: int | None) -> dict[str, Any]:
    conn = connect_postgres(url)
    tx = Transaction(conn, POSTGRESQL)

    def read(work: Callable[[Transaction], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with conn.transaction():  # as the server reads: one transaction (SET LOCAL applies to it)
                return work(tx)

        return run

    baseline_sql = (
        f"SELECT event_at / {DAY_MS}, count(*) FROM events WHERE app_id = ? AND event_at BETWEEN ? AND ? GROUP BY 1"
    )
    base_ms, _ = median_ms(read(lambda t: t.fetchall(baseline_sql, (APP_ID, *window))), repeat)
    rows: dict[str, Any] = {"baseline_ms": base_ms, "kpis": {}}
    for level, name, scope_id in MEASURED:
        query = query_of(KPIS[level][name], scope_id, *window)
        took, result = median_ms(read(lambda t, q=query: kpi_rollup.run(t, q)), repeat)
        source = kpi_rollup.columns_for(query, POSTGRESQL)
        entry = {"ms": took, "rows": len(result), "source": type(source).__name__}
        scans = max(1, repeat // 2) if scan_repeat is None else scan_repeat
        if scans and not isinstance(source, kpi_sql.RowStoreColumns):  # the same KPI scanning the events
            sql, params = kpi_sql.compile_kpi(query, kpi_sql.RowStoreColumns(POSTGRESQL))
            scanned_ms, scanned = median_ms(read(lambda t, s=sql, p=params: t.fetchall(s, p)), scans)
            assert sorted(map(tuple, scanned), key=repr) == sorted(result, key=repr), name
            entry["scan_ms"] = scanned_ms
        rows["kpis"][f"{level}:{name}"] = entry
    conn.close()
    return rows


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{'engine':<9} {'events':>12}  {'KPI':<58} {'ms':>9} {'× baseline':>11} {'scan ms':>9}",
    ]
    for engine in ("duckdb", "postgres"):
        measured = result.get(engine)
        if not measured or "baseline_ms" not in measured:
            continue
        base = measured["baseline_ms"]
        lines.append(f"{engine:<9} {measured['events']:>12,}  {'baseline: raw count by day':<58} {base:>9.1f}")
        for name, entry in measured["kpis"].items():
            scan = f"{entry['scan_ms']:>9.1f}" if "scan_ms" in entry else f"{'':>9}"
            ratio = entry["ms"] / base if base else float("nan")
            source = {
                "RollupColumns": "rollup",
                "HourlyColumns": "rollup",
                "RecipientSetColumns": "recipient sets",
                "RecipientColumns": "recipients rollup",
            }.get(entry.get("source"), "")
            lines.append(
                f"{engine:<9} {measured['events']:>12,}  {name:<58} {entry['ms']:>9.1f} {ratio:>10.2f}× {scan} {source}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000, help="events in the DuckDB replica")
    parser.add_argument("--pg-events", type=int, default=1_000_000, help="events in PostgreSQL (0: skip)")
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (analytics.threads)")
    parser.add_argument("--batch", type=int, default=BATCH, help="events the replica takes in at once (DuckDB)")
    parser.add_argument("--out", default="kpis.json", help="the results' file name, under bench/results")
    parser.add_argument(
        "--check-events", type=int, default=20_000, help="PostgreSQL's bulk-fill check, events (0: skip)"
    )
    parser.add_argument(
        "--pg-stage",
        choices=("all", "fill"),
        default="all",
        help="fill: fill PostgreSQL and keep the database for a later run with --pg-database (a run of each ≤ 25 min)",
    )
    parser.add_argument("--pg-database", help="time the KPIs on this database, filled by --pg-stage fill; drops it")
    parser.add_argument("--pg-now-ms", type=int, help="with --pg-database: the fill's 'now' (it prints it)")
    parser.add_argument(
        "--scan-repeat", type=int, help="PostgreSQL: runs of each KPI scanning the events (default repeat/2; 0: none)"
    )
    args = parser.parse_args()
    now = datetime.now(UTC)
    now_ms = epoch_millis(now)
    window = (epoch_millis(now - timedelta(days=31)), now_ms)
    result: dict[str, Any] = {
        "measured_at": now.isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "args": vars(args),
    }
    if args.events:
        with tempfile.TemporaryDirectory(prefix="clarion-kpis-") as folder:
            replica = Replica(Path(folder) / "analytics.duckdb", threads=args.threads)
            print(f"loading {args.events:,} events into the DuckDB replica", flush=True)
            load_s = load_duckdb(replica, args.events, now_ms, args.campaigns, args.batch)
            timed = time_duckdb(replica, window, args.repeat)
            result["duckdb"] = {"events": args.events, "load_seconds": load_s, **timed}
            counts = replica.counts()
            result["duckdb"]["rollup_rows"] = counts["kpi_hourly"]
            result["duckdb"]["recipient_sets"] = counts["kpi_recipients"]
            result["duckdb"]["recipients_numbered"] = counts["kpi_recipient_ids"]
            replica.close()
    if args.pg_database:  # filled by an earlier run with --pg-stage fill
        url = database_url(POSTGRES_URL, args.pg_database)
        window = (args.pg_now_ms - 31 * DAY_MS, args.pg_now_ms)
        try:
            conn = connect_postgres(url)
            sizes = rollup_sizes(Transaction(conn, POSTGRESQL))
            conn.close()
            result["postgres"] = {
                "events": args.pg_events,
                "database": args.pg_database,
                **sizes,
                **time_postgres(url, window, args.repeat, args.scan_repeat),
            }
        finally:
            drop_database(POSTGRES_URL, args.pg_database)
    elif args.pg_events:
        with tempfile.TemporaryDirectory(prefix="clarion-kpis-") as folder:
            if args.check_events:
                with (
                    fresh_store("postgres", Path(folder), POSTGRES_URL, "export_kpis_bulk") as bulk,
                    fresh_store("postgres", Path(folder), POSTGRES_URL, "export_kpis_appended") as appended,
                ):
                    events_sql = postgres_events(args.check_events, now_ms, args.campaigns)
                    result["check"] = check(bulk.tx_of, appended.tx_of, events_sql, args.check_events, APPEND_BATCH)
                print(f"check: bulk fill and write path agree ({result['check']})", flush=True)
            filling_only = args.pg_stage == "fill"
            with fresh_store("postgres", Path(folder), POSTGRES_URL, "export_kpis", keep=filling_only) as store:
                print(f"loading {args.pg_events:,} events into PostgreSQL", flush=True)
                started = time.perf_counter()
                steps = load_postgres(store, args.pg_events, now_ms, args.campaigns)
                with store.tx_of() as tx:
                    sizes = rollup_sizes(tx)
                result["postgres"] = {
                    "events": args.pg_events,
                    "load_seconds": time.perf_counter() - started,
                    "load_steps": steps,
                    **sizes,
                }
                if filling_only:
                    assert store.url is not None
                    name = store.url.rsplit("/", 1)[1]
                    result["postgres"]["database"] = name
                    print(f"kept; time it with: --events 0 --pg-events {args.pg_events} --pg-database {name} "
                          f"--pg-now-ms {now_ms}")  # fmt: skip
                else:
                    result["postgres"].update(time_postgres(store.url, window, args.repeat, args.scan_repeat))
    result["machine"]["load_after"] = os.getloadavg()
    print(report(result))
    out = Path(__file__).parent / "results" / args.out
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
