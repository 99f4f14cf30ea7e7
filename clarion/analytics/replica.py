"""A columnar copy of endpoints, users, events and imported segment members in DuckDB, for segment evaluation.

The row store stays the system of record; this replica is derived from it and can be deleted at any time (it is
rebuilt from the change feed on the next sync). Endpoint documents are flattened into typed columns once, when they
arrive, so a segment scan reads plain columns that DuckDB filters in the scan: attributes as MAP(VARCHAR, VARCHAR[]),
as a list of name/value pairs and, for each project's first values, as bits of one integer; metrics as
MAP(VARCHAR, DOUBLE) and, for each project's first names, as DOUBLE columns of their own; the country upper-cased; and
each endpoint's last activity kept beside it (`active_ms`), so recency needs no join.

Batches arrive as JSON texts produced by the row store (clarion/store/changes.py), streamed into a temporary file that
DuckDB's JSON reader loads (clarion/analytics/staging.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from clarion.analytics import kpi_rollups
from clarion.analytics.staging import JsonLines, stage_json
from clarion.instants import INSTANT_PATTERN
from clarion.store.events import PURCHASE, app_event_sql

# Pinpoint endpoint ids fold ASCII letters only when events are matched to endpoints (plan.py, "Events").
ASCII_FOLD = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"

# Epoch milliseconds (floored, as Python's arithmetic does) of an ISO text, or NULL when it is not an instant in
# clarion/instants.py's syntax. DuckDB's TIMESTAMPTZ cast reads every string the pattern admits once an `HH:MM`
# time has its seconds spelled out. {0} is the text (free of side effects: it is repeated), {1} the pattern.
_TIMESTAMP = r"try_cast(regexp_replace({0}, '^(.{{10}}[T ][0-9]{{2}}:[0-9]{{2}})(Z|[+-]|$)', '\1:00\2') AS TIMESTAMPTZ)"
INSTANT_MS = (
    "CASE WHEN regexp_full_match({0}, '{1}') AND NOT starts_with({0}, '0000') THEN "
    f"epoch_us({_TIMESTAMP}) // 1000 - CASE WHEN epoch_us({_TIMESTAMP}) % 1000 < 0 THEN 1 ELSE 0 END END"
)

# Every (name, value) of an attributes MAP as one string, `<bytes of name>:<name><value>` (the length prefix keeps
# the encoding unambiguous): equality conditions test list membership, about 4x cheaper than a MAP lookup.
ATTRIBUTE_PAIRS = (
    "flatten(list_transform(map_entries({0}), "
    "lambda a: list_transform(a.value, lambda v: strlen(a.key) || ':' || a.key || v)))"
)


def attribute_pair(name: str, value: str) -> str:
    """The ATTRIBUTE_PAIRS entry of one attribute value."""
    return f"{len(name.encode())}:{name}{value}"


# Each project's first METRIC_SLOTS metric names (in the order the replica met them) get a DOUBLE column of their own,
# `metric_<slot>`, which a condition reads like any typed column (filtered in the scan, skipped by zone maps) where a
# MAP lookup decodes every key of every row; `metric_slots` says which name has which slot. Every metric stays in
# the `metrics` MAP too, which answers the names past the slots. A name gets its slot before the first row holding
# it is written, and keeps it, so a slot column is complete for its name. Pinpoint allows 250 names per project
# across attributes and metrics; projects seldom use more than a handful of metrics.
METRIC_SLOTS = 16
_METRIC_COLUMNS = ", ".join(f"metric_{slot} DOUBLE" for slot in range(1, METRIC_SLOTS + 1))
# Likewise each project's first ATTRIBUTE_BITS attribute values (an `attribute_pairs` entry each), the most frequent
# first among those a batch brings, get a bit of `attribute_bits`: an INCLUSIVE or EXCLUSIVE condition on them is a
# bit test instead of a search of the row's list of strings (at 10,000,000 endpoints 0.4 s of CPU per scan);
# `attribute_slots` says which value has which bit, and values past them are found in `attribute_pairs` as before.
ATTRIBUTE_BITS = 64
# The endpoints table's columns, in order. `country` is upper-cased (segments compare it so) and `active_ms` is the
# endpoint's last activity (its latest event, else its EffectiveDate), kept on the row so recency needs no join and
# both are plain comparisons DuckDB filters in the scan.
_ENDPOINTS_TABLE = f"""CREATE TABLE IF NOT EXISTS endpoints (
        app_id VARCHAR, endpoint_key VARCHAR, id VARCHAR, event_key VARCHAR, channel_type VARCHAR,
        address VARCHAR, endpoint_status VARCHAR, opt_out VARCHAR, user_id VARCHAR, cohort_id INTEGER,
        created_at VARCHAR, effective_at VARCHAR, effective_ms BIGINT,
        app_version VARCHAR, make VARCHAR, model VARCHAR, model_version VARCHAR, platform VARCHAR,
        platform_version VARCHAR, locale VARCHAR, timezone VARCHAR,
        country VARCHAR, region VARCHAR, city VARCHAR, postal_code VARCHAR, latitude DOUBLE, longitude DOUBLE,
        attributes MAP(VARCHAR, VARCHAR[]), attribute_pairs VARCHAR[], metrics MAP(VARCHAR, DOUBLE),
        active_ms BIGINT, change_seq BIGINT, attribute_bits UBIGINT, {_METRIC_COLUMNS}
    )"""
# Per project, the name of each slot (`name_<slot>`, NULL when free).
_SLOT_NAMES = (
    "SELECT app_id, "
    + ", ".join(f"any_value(name) FILTER (WHERE slot = {slot}) AS name_{slot}" for slot in range(1, METRIC_SLOTS + 1))
    + " FROM metric_slots GROUP BY app_id"
)


def _slot_values(metrics: str, names: str) -> str:
    """The metric_<slot> columns of a row: its `metrics` MAP at each slot's name in the _SLOT_NAMES row `names`."""
    return ", ".join(
        f"CASE WHEN {names}.name_{slot} IS NOT NULL THEN {metrics}[{names}.name_{slot}] END"
        for slot in range(1, METRIC_SLOTS + 1)
    )


def _pair_bits(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """Give the attribute pairs of `rows` (a relation of app_id, endpoint_key, pairs) that have no bit a free one of
    their project, the most frequent first, while bits are left; then leave each row's bits in the temporary table
    `pair_bits` (app_id, endpoint_key, bits: rows with at least one such pair)."""
    con.execute(
        f"""INSERT INTO attribute_slots
            SELECT p.app_id, p.pair,
                coalesce(u.used, 0) + row_number() OVER (PARTITION BY p.app_id ORDER BY p.n DESC, p.pair) - 1 AS bit
            FROM (SELECT app_id, pair, count(*) AS n
                  FROM (SELECT app_id, unnest(pairs) AS pair FROM ({rows})) GROUP BY app_id, pair) p
            LEFT JOIN (SELECT app_id, max(bit) + 1 AS used FROM attribute_slots GROUP BY app_id) u
                ON u.app_id = p.app_id
            WHERE NOT EXISTS (SELECT 1 FROM attribute_slots a WHERE a.app_id = p.app_id AND a.pair = p.pair)
            QUALIFY bit < {ATTRIBUTE_BITS}"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE pair_bits AS
            SELECT r.app_id, r.endpoint_key, bit_or(1::UBIGINT << a.bit) AS bits
            FROM (SELECT app_id, endpoint_key, unnest(pairs) AS pair FROM ({rows})) r
            JOIN attribute_slots a ON a.app_id = r.app_id AND a.pair = r.pair
            GROUP BY r.app_id, r.endpoint_key"""
    )


def _assign_metric_slots(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """Give the metric names of `rows` (a relation of app_id, metrics) that have none a free slot of their project,
    in name order, while slots are left."""
    con.execute(
        f"""INSERT INTO metric_slots
            SELECT n.app_id, n.name, coalesce(u.used, 0) + row_number() OVER (PARTITION BY n.app_id ORDER BY n.name)
                AS slot
            FROM (SELECT DISTINCT r.app_id, unnest(map_keys(r.metrics)) AS name FROM ({rows}) r) n
            LEFT JOIN (SELECT app_id, max(slot) AS used FROM metric_slots GROUP BY app_id) u ON u.app_id = n.app_id
            WHERE NOT EXISTS (SELECT 1 FROM metric_slots m WHERE m.app_id = n.app_id AND m.name = n.name)
            QUALIFY slot <= {METRIC_SLOTS}"""
    )


_SCHEMA = (
    _ENDPOINTS_TABLE,
    "CREATE TABLE IF NOT EXISTS metric_slots (app_id VARCHAR, name VARCHAR, slot INTEGER)",
    "CREATE TABLE IF NOT EXISTS attribute_slots (app_id VARCHAR, pair VARCHAR, bit INTEGER)",
    """CREATE TABLE IF NOT EXISTS users (
        app_id VARCHAR, user_id VARCHAR, attributes MAP(VARCHAR, VARCHAR[]), attribute_pairs VARCHAR[],
        change_seq BIGINT
    )""",
    # recipient_id: the number kpi_rollups gave the recipient of an event of RECIPIENT_EVENT_TYPES.
    """CREATE TABLE IF NOT EXISTS events (
        app_id VARCHAR, event_key VARCHAR, event_type VARCHAR, event_at BIGINT, arrival_at BIGINT,
        session_id VARCHAR, attributes MAP(VARCHAR, VARCHAR), metrics MAP(VARCHAR, DOUBLE), seq BIGINT,
        recipient_id UINTEGER
    )""",
    # The latest event time per endpoint, whether or not the endpoint exists yet (events may come first).
    "CREATE TABLE IF NOT EXISTS activity (app_id VARCHAR, event_key VARCHAR, last_event_ms BIGINT)",
    # Each endpoint's app-event activity, whether or not the endpoint exists yet: what engagement is scored from
    # (clarion/segments/plan.py, "Engagement"), moved forward with every batch of events.
    "CREATE TABLE IF NOT EXISTS engagement (app_id VARCHAR, event_key VARCHAR, last_ms BIGINT, events BIGINT, "
    "revenue DOUBLE)",
    *kpi_rollups.SCHEMA,
    # The members import jobs gave IMPORT segments (the row store's segment_imports).
    "CREATE TABLE IF NOT EXISTS segment_members (app_id VARCHAR, segment_id VARCHAR, endpoint_key VARCHAR, "
    "change_seq BIGINT)",
)
_TABLES = (
    "endpoints",
    "metric_slots",
    "attribute_slots",
    "users",
    "events",
    "activity",
    "engagement",
    *kpi_rollups.TABLES,
    "segment_members",
)


_STATE = "CREATE TABLE IF NOT EXISTS replica_state (name VARCHAR PRIMARY KEY, value BIGINT)"
# The shape of the tables above: a replica of another layout (an older Clarion's file) is emptied and rebuilt.
LAYOUT = 7

# How each feed's JSON is typed on read; members the documents carry beyond these are ignored.
_ENDPOINT_JSON = {
    "app_id": "VARCHAR",
    "endpoint_key": "VARCHAR",
    "id": "VARCHAR",
    "channel_type": "VARCHAR",
    "address": "VARCHAR",
    "endpoint_status": "VARCHAR",
    "opt_out": "VARCHAR",
    "user_id": "VARCHAR",
    "cohort_id": "INTEGER",
    "created_at": "VARCHAR",
    "effective_at": "VARCHAR",
    "change_seq": "BIGINT",
    "doc": "STRUCT(ChannelType VARCHAR, "
    "Demographic STRUCT(AppVersion VARCHAR, Locale VARCHAR, Make VARCHAR, Model VARCHAR, ModelVersion VARCHAR, "
    "Platform VARCHAR, PlatformVersion VARCHAR, Timezone VARCHAR), "
    "Location STRUCT(City VARCHAR, Country VARCHAR, Latitude DOUBLE, Longitude DOUBLE, PostalCode VARCHAR, "
    "Region VARCHAR), "
    "Attributes MAP(VARCHAR, VARCHAR[]), Metrics MAP(VARCHAR, DOUBLE))",
}
_USER_JSON = {
    "app_id": "VARCHAR",
    "user_id": "VARCHAR",
    "change_seq": "BIGINT",
    "attributes": "MAP(VARCHAR, VARCHAR[])",
}
_EVENT_JSON = {
    "app_id": "VARCHAR",
    "endpoint_id": "VARCHAR",
    "event_type": "VARCHAR",
    "event_at": "BIGINT",
    "arrival_at": "BIGINT",
    "session_id": "VARCHAR",
    "change_seq": "BIGINT",
    "seq": "BIGINT",
    "doc": "STRUCT(Attributes MAP(VARCHAR, VARCHAR), Metrics MAP(VARCHAR, DOUBLE))",
}
# The typed rows a round stages from each feed (bench/segments.py stages generated rows the same way).
FEED_TYPES = {"endpoints": _ENDPOINT_JSON, "users": _USER_JSON, "events": _EVENT_JSON}
_MEMBER_JSON = {"app_id": "VARCHAR", "segment_id": "VARCHAR", "endpoint_key": "VARCHAR", "change_seq": "BIGINT"}
_TOMBSTONE_JSON = {"change_seq": "BIGINT", "app_id": "VARCHAR", "kind": "VARCHAR", "item_key": "VARCHAR"}

NOTHING_SYNCED = -1  # rows written before the change feed existed carry change_seq 0


def _position(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT value FROM replica_state WHERE name = 'position'").fetchone()
    return int(row[0]) if row else NOTHING_SYNCED


class Replica:
    """One DuckDB database (a file, or memory) holding the replica and how far it has followed the feed.

    Writes come from one sync round at a time (`round`); queries run on their own cursors and see the last
    committed round (DuckDB's MVCC), never a half-applied one.
    """

    def __init__(
        self, path: Path | None, threads: int = 2, memory_limit: str = "", spill_dir: Path | None = None
    ) -> None:
        """`spill_dir`: where a replica in memory spills past `memory_limit` (a file replica evicts to its file and
        spills beside it); without one DuckDB would use `.tmp` in the working directory."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._con = duckdb.connect(str(path) if path is not None else ":memory:")
        self._con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self._con.execute("SET memory_limit = ?", [memory_limit])
        # DuckDB's allocator (jemalloc) keeps what a sync round's staging, inserts and joins freed, outside
        # `memory_limit`: a worker thread's cache unless the thread peaked past `allocator_flush_threshold`, and every
        # arena's dirty pages unless one buffer reservation passes `allocator_bulk_deallocation_flush_threshold`
        # (512 MB). At 0 each reservation purges the arenas: a round of 20,000 send events then leaves the process
        # 100-150 MB smaller, for about a tenth more of the round's CPU (bench/replica_sync.py, docs/benchmarks.md).
        self._con.execute("SET allocator_flush_threshold = '16MB'")
        self._con.execute("SET allocator_bulk_deallocation_flush_threshold = '0MB'")
        if path is None and spill_dir is not None:
            self._con.execute("SET temp_directory = ?", [str(spill_dir)])
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute(_STATE)
        layout = self._con.execute("SELECT value FROM replica_state WHERE name = 'layout'").fetchone()
        if layout != (LAYOUT,):
            for table in _TABLES:
                self._con.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in kpi_rollups.DROP:
                self._con.execute(statement)
            self._con.execute("DELETE FROM replica_state")
            self._con.execute("INSERT INTO replica_state VALUES ('layout', ?)", [LAYOUT])
        for statement in _SCHEMA:
            self._con.execute(statement)
        self._write_lock = threading.Lock()

    def close(self) -> None:
        self._con.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one reader thread (a DuckDB connection is not shared across threads)."""
        return self._con.cursor()

    def position(self) -> int:
        with self._con.cursor() as con:
            return _position(con)

    @contextmanager
    def round(self) -> Iterator[Round]:
        """One sync round: every batch applied in it becomes visible together, with the new position."""
        round_ = self.open_round()
        try:
            yield round_
        except BaseException:
            self.close_round(round_, commit=False)
            raise
        self.close_round(round_, commit=True)

    def open_round(self) -> Round:
        """A round's start: the write lock (another round may hold it), a connection of its own, BEGIN. Both this
        and `close_round` block, so the sync calls them on a worker thread, as it applies batches."""
        self._write_lock.acquire()
        con = None
        try:
            con = self._con.cursor()
            con.execute("BEGIN")
        except BaseException:
            if con is not None:
                con.close()
            self._write_lock.release()
            raise
        return Round(con)

    def close_round(self, round_: Round, *, commit: bool) -> None:
        """COMMIT (the round written out, with its position) or ROLLBACK; the lock is free again either way."""
        try:
            round_.con.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            round_.con.close()
            self._write_lock.release()

    def counts(self) -> dict[str, int]:
        """Rows per replica table (CLI and tests)."""
        with self._con.cursor() as con:
            return {
                table: int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
                for table in _TABLES
            }


class Round:
    """The write side of one sync round, on its own connection inside one DuckDB transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def reset(self) -> None:
        """Forget everything, before a build from scratch."""
        for table in _TABLES:
            self.con.execute(f"DELETE FROM {table}")
        self.con.execute("DELETE FROM replica_state WHERE name = 'position'")

    def commit(self) -> None:
        """Make what this round applied so far durable and start a new transaction (builds from scratch only)."""
        self.con.execute("COMMIT")
        self.con.execute("BEGIN")

    def position(self) -> int:
        """The position as this round's transaction sees it."""
        return _position(self.con)

    def set_position(self, seq: int) -> None:
        # An UPDATE, not INSERT OR REPLACE: DuckDB's conflict check on the key cost several milliseconds a round.
        moved = self.con.execute("UPDATE replica_state SET value = ? WHERE name = 'position'", [seq]).fetchone()
        if moved is None or moved[0] == 0:
            self.con.execute("INSERT INTO replica_state VALUES ('position', ?)", [seq])

    def _staged(self, rows: JsonLines, types: dict[str, str]) -> None:
        stage_json(self.con, rows, types)

    def endpoints(self, rows: JsonLines) -> None:
        """Upsert a batch of endpoint rows (delete by key, then insert the new versions)."""
        self._staged(rows, _ENDPOINT_JSON)
        self.con.execute(
            "DELETE FROM endpoints e USING staged s WHERE e.app_id = s.app_id AND e.endpoint_key = s.endpoint_key"
        )
        self.insert_endpoints()

    def insert_endpoints(self) -> None:
        """Insert the endpoints of the temporary table `staged` (typed as FEED_TYPES says), none of them present."""
        _assign_metric_slots(self.con, "SELECT app_id, doc.Metrics AS metrics FROM staged")
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE pairs AS SELECT app_id, endpoint_key, "
            f"{ATTRIBUTE_PAIRS.format('doc.Attributes')} AS pairs FROM staged"
        )
        _pair_bits(self.con, "SELECT * FROM pairs")
        self.con.execute(
            f"""INSERT INTO endpoints SELECT
                s.app_id, s.endpoint_key, s.id, s.event_key, s.channel_type, s.address, s.endpoint_status, s.opt_out,
                s.user_id, s.cohort_id, s.created_at, s.effective_at, s.effective_ms,
                s.doc.Demographic.AppVersion, s.doc.Demographic.Make, s.doc.Demographic.Model,
                s.doc.Demographic.ModelVersion, s.doc.Demographic.Platform, s.doc.Demographic.PlatformVersion,
                s.doc.Demographic.Locale, s.doc.Demographic.Timezone,
                upper(s.doc.Location.Country), s.doc.Location.Region, s.doc.Location.City,
                s.doc.Location.PostalCode, s.doc.Location.Latitude, s.doc.Location.Longitude,
                s.doc.Attributes, p.pairs, s.doc.Metrics, coalesce(a.last_event_ms, s.effective_ms), s.change_seq,
                coalesce(b.bits, 0), {_slot_values("s.doc.Metrics", "n")}
            FROM (SELECT *, {ASCII_FOLD.format("id")} AS event_key,
                         {INSTANT_MS.format("effective_at", INSTANT_PATTERN)} AS effective_ms FROM staged) s
            JOIN pairs p ON p.app_id = s.app_id AND p.endpoint_key = s.endpoint_key
            LEFT JOIN pair_bits b ON b.app_id = s.app_id AND b.endpoint_key = s.endpoint_key
            LEFT JOIN activity a ON a.app_id = s.app_id AND a.event_key = s.event_key
            LEFT JOIN ({_SLOT_NAMES}) n ON n.app_id = s.app_id"""
        )

    def users(self, rows: JsonLines) -> None:
        self._staged(rows, _USER_JSON)
        self.con.execute("DELETE FROM users u USING staged s WHERE u.app_id = s.app_id AND u.user_id = s.user_id")
        self.insert_users()

    def insert_users(self) -> None:
        """Insert the users of the temporary table `staged`, none of them present."""
        self.con.execute(
            f"INSERT INTO users SELECT app_id, user_id, attributes, {ATTRIBUTE_PAIRS.format('attributes')}, "
            "change_seq FROM staged"
        )

    def events(self, rows: JsonLines) -> None:
        """Append events and move each endpoint's last event time forward.

        No de-duplication: a round commits together with the feed position, so no batch is applied twice.
        """
        self._staged(rows, _EVENT_JSON)
        self.apply_events()

    def apply_events(self) -> None:
        """Apply the events in the temporary table `staged` (typed as _EVENT_JSON reads them)."""
        numbered = kpi_rollups.number_recipients(self.con, ASCII_FOLD)
        self.con.execute(
            f"""INSERT INTO events SELECT app_id, {ASCII_FOLD.format("endpoint_id")}, event_type, event_at,
                arrival_at, session_id, doc.Attributes, doc.Metrics, seq, recipient_id FROM {numbered}"""
        )
        self._per_endpoint()
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE latest AS
                SELECT s.app_id, s.event_key, greatest(s.last_ms, a.last_event_ms) AS last_event_ms
                FROM arrived s LEFT JOIN activity a ON a.app_id = s.app_id AND a.event_key = s.event_key"""
        )
        self.con.execute(
            "DELETE FROM activity a USING latest l WHERE a.app_id = l.app_id AND a.event_key = l.event_key"
        )
        self.con.execute("INSERT INTO activity SELECT * FROM latest")
        self.con.execute(
            "UPDATE endpoints e SET active_ms = l.last_event_ms FROM latest l "
            "WHERE e.app_id = l.app_id AND e.event_key = l.event_key"
        )
        self._engagement()
        kpi_rollups.roll_up(self.con)
        kpi_rollups.roll_up_recipients(self.con, numbered)

    def _per_endpoint(self) -> None:
        """The staged events summed up per endpoint once, in the temporary table `arrived`: the latest event, and
        the latest app event, the app events and their revenue. `activity` and `engagement` are then moved forward
        by joining one row per endpoint of the batch, not one per event."""
        app_event = app_event_sql("event_type")
        purchase = "coalesce(doc.Metrics['_item_price'], 0) * coalesce(doc.Metrics['_quantity'], 1)"
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE arrived AS
                SELECT app_id, {ASCII_FOLD.format("endpoint_id")} AS event_key, max(event_at) AS last_ms,
                       max(event_at) FILTER (WHERE {app_event}) AS app_last_ms,
                       count(*) FILTER (WHERE {app_event}) AS app_events,
                       sum(CASE WHEN event_type = '{PURCHASE}' THEN {purchase} ELSE 0 END)
                           FILTER (WHERE {app_event}) AS revenue
                FROM staged GROUP BY 1, 2"""
        )

    def _engagement(self) -> None:
        """Add the batch's app events (`arrived`) to each endpoint's activity (latest app event, app events,
        revenue)."""
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE engaged AS
                SELECT s.app_id, s.event_key, greatest(s.app_last_ms, g.last_ms) AS last_ms,
                       s.app_events + coalesce(g.events, 0) AS events, s.revenue + coalesce(g.revenue, 0) AS revenue
                FROM arrived s LEFT JOIN engagement g ON g.app_id = s.app_id AND g.event_key = s.event_key
                WHERE s.app_events > 0"""
        )
        self.con.execute(
            "DELETE FROM engagement g USING engaged n WHERE g.app_id = n.app_id AND g.event_key = n.event_key"
        )
        self.con.execute("INSERT INTO engagement SELECT * FROM engaged")

    def prune_events(self, before_ms: int) -> int:
        """Drop events that happened and arrived before `before_ms`, as retention does in the store; the endpoints
        that lose events have their engagement totals worked out again from the events they keep."""
        old = "event_at < ? AND arrival_at < ?"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT app_id, event_key FROM events WHERE {old}",
            [before_ms, before_ms],
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE pruned_recipients AS SELECT DISTINCT app_id, recipient_id AS id FROM events "
            f"WHERE {old} AND recipient_id IS NOT NULL",
            [before_ms, before_ms],
        )
        row = self.con.execute(f"DELETE FROM events WHERE {old} RETURNING 1", [before_ms, before_ms]).fetchall()
        self.con.execute(
            "DELETE FROM engagement g USING touched t WHERE g.app_id = t.app_id AND g.event_key = t.event_key"
        )
        purchase = "coalesce(ev.metrics['_item_price'], 0) * coalesce(ev.metrics['_quantity'], 1)"
        self.con.execute(
            f"""INSERT INTO engagement
                SELECT ev.app_id, ev.event_key, max(ev.event_at), count(*),
                       sum(CASE WHEN ev.event_type = '{PURCHASE}' THEN {purchase} ELSE 0 END)
                FROM events ev JOIN touched t ON t.app_id = ev.app_id AND t.event_key = ev.event_key
                WHERE {app_event_sql("ev.event_type")} GROUP BY 1, 2"""
        )
        kpi_rollups.prune(self.con, before_ms, "pruned_recipients")
        return len(row)

    def segment_members(self, rows: JsonLines) -> None:
        """Add a batch of imported segment members (by key: a member added again replaces itself)."""
        self._staged(rows, _MEMBER_JSON)
        self.con.execute(
            "DELETE FROM segment_members m USING staged s WHERE m.app_id = s.app_id AND m.segment_id = s.segment_id "
            "AND m.endpoint_key = s.endpoint_key"
        )
        self.con.execute("INSERT INTO segment_members SELECT app_id, segment_id, endpoint_key, change_seq FROM staged")

    def tombstones(self, rows: JsonLines) -> None:
        """Apply deletions, each only to rows older than itself (a later re-creation survives)."""
        self._staged(rows, _TOMBSTONE_JSON)
        self.con.execute(
            "DELETE FROM endpoints e USING staged s WHERE s.kind = 'endpoint' AND e.app_id = s.app_id "
            "AND e.endpoint_key = s.item_key AND e.change_seq < s.change_seq"
        )
        self.con.execute(
            "DELETE FROM users u USING staged s WHERE s.kind = 'user' AND u.app_id = s.app_id "
            "AND u.user_id = s.item_key AND u.change_seq < s.change_seq"
        )
        self.con.execute(
            "DELETE FROM segment_members m USING staged s WHERE s.kind = 'segment' AND m.app_id = s.app_id "
            "AND m.segment_id = s.item_key AND m.change_seq < s.change_seq"
        )
        gone = self.con.execute("SELECT app_id, max(change_seq) FROM staged WHERE kind = 'app' GROUP BY 1").fetchall()
        for app_id, seq in gone:
            for table in ("endpoints", "users", "segment_members"):
                self.con.execute(f"DELETE FROM {table} WHERE app_id = ? AND change_seq < ?", [app_id, seq])
            # Events carry no stamp of their own here: a deleted project's events go, later ones come again.
            self.con.execute("DELETE FROM events WHERE app_id = ?", [app_id])
            self.con.execute("DELETE FROM activity WHERE app_id = ?", [app_id])
            self.con.execute("DELETE FROM engagement WHERE app_id = ?", [app_id])
            kpi_rollups.forget_app(self.con, app_id)
