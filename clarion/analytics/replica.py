"""A columnar copy of endpoints, users, events and imported segment members in DuckDB, for segment evaluation.

The row store stays the system of record; this replica is derived from it and can be deleted at any time (it is
rebuilt from the change feed on the next sync). Endpoint documents are flattened into typed columns once, when they
arrive, so a segment scan reads plain columns: attributes as MAP(VARCHAR, VARCHAR[]) (and as a list of name/value pairs
for equality tests), metrics as
MAP(VARCHAR, DOUBLE), and each endpoint's last event time kept beside it (`last_event_ms`), so recency needs no join.

Batches arrive as JSON array text produced by the row store (clarion/store/changes.py) and are read by DuckDB's
JSON reader from a temporary file (clarion/analytics/staging.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from clarion.analytics import kpi_rollups
from clarion.analytics.staging import stage_json
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


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS endpoints (
        app_id VARCHAR, endpoint_key VARCHAR, id VARCHAR, event_key VARCHAR, channel_type VARCHAR,
        address VARCHAR, endpoint_status VARCHAR, opt_out VARCHAR, user_id VARCHAR, cohort_id INTEGER,
        created_at VARCHAR, effective_at VARCHAR, effective_ms BIGINT,
        app_version VARCHAR, make VARCHAR, model VARCHAR, model_version VARCHAR, platform VARCHAR,
        platform_version VARCHAR, locale VARCHAR, timezone VARCHAR,
        country VARCHAR, region VARCHAR, city VARCHAR, postal_code VARCHAR, latitude DOUBLE, longitude DOUBLE,
        attributes MAP(VARCHAR, VARCHAR[]), attribute_pairs VARCHAR[], metrics MAP(VARCHAR, DOUBLE),
        last_event_ms BIGINT, change_seq BIGINT
    )""",
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
    "users",
    "events",
    "activity",
    "engagement",
    *kpi_rollups.TABLES,
    "segment_members",
)
_STATE = "CREATE TABLE IF NOT EXISTS replica_state (name VARCHAR PRIMARY KEY, value BIGINT)"
# The shape of the tables above: a replica of another layout (an older Clarion's file) is emptied and rebuilt.
LAYOUT = 6

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


NOTHING_SYNCED = -1  # rows written before the change feed existed carry change_seq 0


def _columns(types: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in types.items()) + "}"


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
            row = con.execute("SELECT value FROM replica_state WHERE name = 'position'").fetchone()
        return int(row[0]) if row else NOTHING_SYNCED

    @contextmanager
    def round(self) -> Iterator[Round]:
        """One sync round: every batch applied in it becomes visible together, with the new position."""
        with self._write_lock:
            con = self._con.cursor()
            con.execute("BEGIN")
            try:
                yield Round(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.close()

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

    def set_position(self, seq: int) -> None:
        self.con.execute("INSERT OR REPLACE INTO replica_state VALUES ('position', ?)", [seq])

    def _staged(self, text: str, types: dict[str, str]) -> None:
        stage_json(self.con, text, types)

    def endpoints(self, text: str) -> None:
        """Upsert a batch of endpoint rows (delete by key, then insert the new versions)."""
        self._staged(text, _ENDPOINT_JSON)
        self.con.execute(
            "DELETE FROM endpoints e USING staged s WHERE e.app_id = s.app_id AND e.endpoint_key = s.endpoint_key"
        )
        self.insert_endpoints()

    def insert_endpoints(self) -> None:
        """Insert the endpoints of the temporary table `staged` (typed as FEED_TYPES says), none of them present."""
        self.con.execute(
            f"""INSERT INTO endpoints SELECT
                s.app_id, s.endpoint_key, s.id, {ASCII_FOLD.format("s.id")}, s.channel_type, s.address,
                s.endpoint_status, s.opt_out, s.user_id, s.cohort_id, s.created_at, s.effective_at,
                {INSTANT_MS.format("s.effective_at", INSTANT_PATTERN)},
                s.doc.Demographic.AppVersion, s.doc.Demographic.Make, s.doc.Demographic.Model,
                s.doc.Demographic.ModelVersion, s.doc.Demographic.Platform, s.doc.Demographic.PlatformVersion,
                s.doc.Demographic.Locale, s.doc.Demographic.Timezone,
                s.doc.Location.Country, s.doc.Location.Region, s.doc.Location.City, s.doc.Location.PostalCode,
                s.doc.Location.Latitude, s.doc.Location.Longitude,
                s.doc.Attributes, {ATTRIBUTE_PAIRS.format("s.doc.Attributes")}, s.doc.Metrics, a.last_event_ms,
                s.change_seq
            FROM staged s LEFT JOIN activity a
              ON a.app_id = s.app_id AND a.event_key = {ASCII_FOLD.format("s.id")}"""
        )

    def users(self, text: str) -> None:
        self._staged(text, _USER_JSON)
        self.con.execute("DELETE FROM users u USING staged s WHERE u.app_id = s.app_id AND u.user_id = s.user_id")
        self.insert_users()

    def insert_users(self) -> None:
        """Insert the users of the temporary table `staged`, none of them present."""
        self.con.execute(
            f"INSERT INTO users SELECT app_id, user_id, attributes, {ATTRIBUTE_PAIRS.format('attributes')}, "
            "change_seq FROM staged"
        )

    def events(self, text: str) -> None:
        """Append events and move each endpoint's last event time forward.

        No de-duplication: a round commits together with the feed position, so no batch is applied twice.
        """
        self._staged(text, _EVENT_JSON)
        self.apply_events()

    def apply_events(self) -> None:
        """Apply the events in the temporary table `staged` (typed as _EVENT_JSON reads them)."""
        numbered = kpi_rollups.number_recipients(self.con, ASCII_FOLD)
        self.con.execute(
            f"""INSERT INTO events SELECT app_id, {ASCII_FOLD.format("endpoint_id")}, event_type, event_at,
                arrival_at, session_id, doc.Attributes, doc.Metrics, seq, recipient_id FROM {numbered}"""
        )
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE latest AS
                SELECT s.app_id, s.event_key, greatest(max(s.event_at), any_value(a.last_event_ms)) AS last_event_ms
                FROM (SELECT app_id, {ASCII_FOLD.format("endpoint_id")} AS event_key, event_at FROM staged) s
                LEFT JOIN activity a ON a.app_id = s.app_id AND a.event_key = s.event_key
                GROUP BY s.app_id, s.event_key"""
        )
        self.con.execute(
            "DELETE FROM activity a USING latest l WHERE a.app_id = l.app_id AND a.event_key = l.event_key"
        )
        self.con.execute("INSERT INTO activity SELECT * FROM latest")
        self.con.execute(
            "UPDATE endpoints e SET last_event_ms = l.last_event_ms FROM latest l "
            "WHERE e.app_id = l.app_id AND e.event_key = l.event_key"
        )
        self._engagement()
        kpi_rollups.roll_up(self.con)
        kpi_rollups.roll_up_recipients(self.con, numbered)

    def _engagement(self) -> None:
        """Add the staged app events to each endpoint's activity (latest app event, app events, revenue)."""
        purchase = "coalesce(doc.Metrics['_item_price'], 0) * coalesce(doc.Metrics['_quantity'], 1)"
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE engaged AS
                SELECT s.app_id, s.event_key, greatest(s.last_ms, g.last_ms) AS last_ms,
                       s.events + coalesce(g.events, 0) AS events, s.revenue + coalesce(g.revenue, 0) AS revenue
                FROM (SELECT app_id, {ASCII_FOLD.format("endpoint_id")} AS event_key, max(event_at) AS last_ms,
                             count(*) AS events,
                             sum(CASE WHEN event_type = '{PURCHASE}' THEN {purchase} ELSE 0 END) AS revenue
                      FROM staged WHERE {app_event_sql("event_type")} GROUP BY 1, 2) s
                LEFT JOIN engagement g ON g.app_id = s.app_id AND g.event_key = s.event_key"""
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

    def segment_members(self, text: str) -> None:
        """Add a batch of imported segment members (by key: a member added again replaces itself)."""
        self._staged(text, _MEMBER_JSON)
        self.con.execute(
            "DELETE FROM segment_members m USING staged s WHERE m.app_id = s.app_id AND m.segment_id = s.segment_id "
            "AND m.endpoint_key = s.endpoint_key"
        )
        self.con.execute("INSERT INTO segment_members SELECT app_id, segment_id, endpoint_key, change_seq FROM staged")

    def tombstones(self, text: str) -> None:
        """Apply deletions, each only to rows older than itself (a later re-creation survives)."""
        self._staged(text, _TOMBSTONE_JSON)
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
