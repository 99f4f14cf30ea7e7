"""The DuckDB segment engine: the columnar replica against the reference evaluator and the row-store SQL, and the
change feed that keeps the replica fresh — on SQLite and on PostgreSQL.

Data goes in through the Pinpoint API (boto3, real server); the engine is the server's own (segment_engine =
"duckdb"). The random data and definitions come from tests/test_segment_engine.py, which states the semantics'
corner cases once for every engine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bench.segments import compare_builds
from clarion.analytics.config import AnalyticsSettings
from clarion.analytics.engine import ColumnarSegmentEngine
from clarion.analytics.replica import ATTRIBUTE_BITS, LAYOUT, METRIC_SLOTS, NOTHING_SYNCED, Replica, attribute_pair
from clarion.analytics.sync import ReplicaSync
from clarion.config import Settings
from clarion.segments import plan, reference
from clarion.segments.engine import SegmentEngine
from clarion.segments.plan import Node
from clarion.services import open_database
from clarion.store.migrations import migrate
from tests.conftest import RunningServer
from tests.test_segment_engine import (
    BASE,
    dimensions,
    endpoint_ids,
    endpoint_requests,
    engine_members,
    events,
    groups,
    import_segment,
    new_app,
    plan_for,
    put_endpoints,
    put_events,
    read_world,
    subplans,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with the DuckDB engine chosen explicitly, whatever the default."""
    return settings.model_copy(update={"analytics": AnalyticsSettings(segment_engine="duckdb", sync_seconds=3600)})


# Import files name endpoints in any case (members are matched by folded id), some of which do not exist.
imported_ids = st.one_of(endpoint_ids, endpoint_ids.map(str.upper), st.sampled_from(["nobody", "Dev-99"]))


def engine(server: RunningServer) -> ColumnarSegmentEngine:
    """The server's columnar engine once its replica is built: on PostgreSQL the process builds it in the background
    after taking the analytics lease, and answers on the row store until then."""
    found = server.services.segments_engine
    assert isinstance(found, ColumnarSegmentEngine)
    deadline = time.monotonic() + 30
    while not getattr(found, "ready", True):
        assert time.monotonic() < deadline, "the analytics replica was not built within 30 s"
        time.sleep(0.05)
    return found


def count(server: RunningServer, app_id: str, node: Node, **options: Any) -> int:
    return server.run(lambda services: services.segments_engine.count(app_id, node, **options))


def store_count(server: RunningServer, app_id: str, node: Node, **options: Any) -> int:
    """The same count by the row-store SQL engine (the base class), in the same server."""
    return server.run(lambda services: SegmentEngine.count(services.segments_engine, app_id, node, **options))


# --------------------------------------------------------------------------------------------------------------
# Property: DuckDB == reference == row-store SQL


@hypothesis_settings(
    max_examples=30,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_duckdb_matches_reference_and_sql(server: RunningServer, client: Any, data: st.DataObject) -> None:
    # Paging through the feed too: batches of 5 rows split most examples' endpoints and events, each written under
    # one stamp. Each batch costs a dozen DuckDB statements: batches of 2 (which the freshness test below pages by)
    # made the run half as long again.
    engine(server).sync.batch_rows = data.draw(st.sampled_from([5, 1000]))
    app_id = new_app(client)
    try:  # a project per example, removed after it: hypothesis may run hundreds while shrinking
        put_endpoints(client, app_id, data.draw(st.dictionaries(endpoint_ids, endpoint_requests(), max_size=12)))
        put_events(client, app_id, data.draw(events))
        sources: list[dict[str, Any]] = []
        if data.draw(st.booleans()):
            # botocore cannot send Clarion's extension members: saved sources go without them
            extensions = ("ClarionBehavior", "ClarionEngagement")
            source = {k: v for k, v in data.draw(dimensions()).items() if k not in extensions}
            created = client.create_segment(
                ApplicationId=app_id, WriteSegmentRequest={"Name": "source", "Dimensions": source}
            )["SegmentResponse"]
            sources.append({"Id": created["Id"]})
        if data.draw(st.booleans()):  # an IMPORT segment, alone or beside the dimensional one in a group
            members = data.draw(st.lists(imported_ids, max_size=6))
            segment_id = import_segment(server, client, app_id, members)
            if data.draw(st.booleans()):  # imported again: the second file's members replace the first's
                import_segment(server, client, app_id, data.draw(st.lists(imported_ids, max_size=6)), segment_id)
            sources.append({"Id": segment_id})
        definition: dict[str, Any] = {}
        if data.draw(st.booleans()):
            definition["Dimensions"] = data.draw(dimensions())
        if sources or data.draw(st.booleans()):  # saved sources are there to be used
            definition["SegmentGroups"] = data.draw(groups(sources))
        now = BASE + timedelta(days=data.draw(st.sampled_from([0, 3, 10, 40])))

        node = plan_for(server, app_id, definition, now)
        world = read_world(server, app_id)
        expected = reference.members(node, world)
        imports = [part for part in subplans(node) if isinstance(part, plan.InImport)]
        event(f"imported segments in the plan: {'yes' if imports else 'no'}")
        found = engine_members(server, app_id, node, page_size=4)
        assert len(found) == len(set(found))
        assert set(found) == expected
        assert count(server, app_id, node) == len(expected) == store_count(server, app_id, node)
        channels = Counter(e.get("ChannelType", "") for e in world.endpoints if e["Id"] in expected)
        assert server.run(lambda s: s.segments_engine.channel_counts(app_id, node)) == dict(channels)
        sendable = {
            e["Id"]
            for e in world.endpoints
            if e["Id"] in expected and e["OptOut"] == "NONE" and e["EndpointStatus"] == "ACTIVE"
        }
        assert count(server, app_id, node, sendable_only=True) == len(sendable)
        sample = server.run(lambda s: s.segments_engine.sample(app_id, node, 3))
        assert set(sample) <= expected and len(sample) == min(3, len(expected))
    finally:
        client.delete_app(ApplicationId=app_id)


# --------------------------------------------------------------------------------------------------------------
# Freshness: every committed change is visible to the next evaluation


def test_updates_deletes_and_events_reach_the_next_evaluation(server: RunningServer, client: Any) -> None:
    app_id = new_app(client)
    gold = plan.AttributeCondition(plan.Source.ENDPOINT, "tier", plan.Operator.INCLUSIVE, ("gold",))
    premium = plan.AttributeCondition(plan.Source.USER, "plan", plan.Operator.INCLUSIVE, ("premium",))
    bought = plan.EventCount("buy", (), None, 1)
    recent = plan.ActiveSince(int((datetime.now(UTC) - timedelta(days=3)).timestamp() * 1000))
    engine(server).sync.batch_rows = 2

    put_endpoints(
        client,
        app_id,
        {
            f"Dev-{n}": {
                "ChannelType": "EMAIL",
                "Address": f"d{n}@example.com",
                "Attributes": {"tier": ["gold" if n % 2 else "silver"]},
                "User": {"UserId": f"u{n % 3}", "UserAttributes": {"plan": ["premium" if n < 3 else "basic"]}},
            }
            for n in range(7)
        },
    )
    assert count(server, app_id, gold) == 3
    assert count(server, app_id, premium) == 0  # a user's attributes are shared: Dev-3..6 wrote "basic" last
    client.update_endpoint(
        ApplicationId=app_id,
        EndpointId="Dev-0",
        EndpointRequest={"User": {"UserId": "u0", "UserAttributes": {"plan": ["premium"]}}},
    )
    assert count(server, app_id, premium) == 3  # every endpoint of u0: Dev-0, Dev-3, Dev-6

    client.update_endpoint(ApplicationId=app_id, EndpointId="dev-2", EndpointRequest={"Attributes": {"tier": ["gold"]}})
    assert count(server, app_id, gold) == 4

    client.delete_endpoint(ApplicationId=app_id, EndpointId="DEV-1")
    assert count(server, app_id, gold) == 3

    assert count(server, app_id, bought) == 0
    assert count(server, app_id, plan.Not(recent)) == 0  # EffectiveDate is now for every endpoint
    put_events(client, app_id, [("DEV-3", "buy", datetime.now(UTC) - timedelta(days=10), {})])
    assert count(server, app_id, bought) == 1
    assert count(server, app_id, plan.Not(recent)) == 1  # its last event, not its EffectiveDate, now counts

    client.delete_user_endpoints(ApplicationId=app_id, UserId="u0")  # Dev-0, Dev-3, Dev-6
    assert count(server, app_id, bought) == 0
    assert count(server, app_id, plan.EVERYONE) == 3 == store_count(server, app_id, plan.EVERYONE)

    # Deleted and re-created in between two evaluations: the re-creation wins over the older tombstone.
    client.delete_endpoint(ApplicationId=app_id, EndpointId="Dev-5")
    client.update_endpoint(
        ApplicationId=app_id,
        EndpointId="Dev-5",
        EndpointRequest={"ChannelType": "SMS", "Address": "+12065550105", "Attributes": {"tier": ["gold"]}},
    )
    assert server.run(lambda s: s.segments_engine.channel_counts(app_id, gold)) == {"EMAIL": 1, "SMS": 1}

    other = new_app(client)
    put_endpoints(client, other, {"x": {"ChannelType": "EMAIL", "Address": "x@example.com"}})
    assert count(server, other, plan.EVERYONE) == 1
    client.delete_app(ApplicationId=app_id)
    assert count(server, app_id, plan.EVERYONE) == 0
    assert count(server, other, plan.EVERYONE) == 1
    replica = engine(server).sync.replica.cursor()
    assert replica.execute("SELECT count(*) FROM endpoints WHERE app_id = ?", [app_id]).fetchone() == (0,)
    assert replica.execute("SELECT count(*) FROM events WHERE app_id = ?", [app_id]).fetchone() == (0,)


def test_imported_members_follow_imports_reimports_and_deletions(server: RunningServer, client: Any) -> None:
    """IMPORT members reach the replica through the change feed; every read is DuckDB's, checked against the
    row-store SQL at each step."""
    app_id = new_app(client)
    put_endpoints(
        client,
        app_id,
        {
            name: {"ChannelType": "EMAIL", "Address": f"{name}@example.com", "Attributes": {"tier": [tier]}}
            for name, tier in (("Ann", "gold"), ("bob", "silver"), ("cy", "gold"), ("dee", "gold"))
        },
    )
    segment_id = import_segment(server, client, app_id, ["ANN", "bob", "nobody"])
    imported = plan_for(server, app_id, {"SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": segment_id}]}]}})
    gold = {"Attributes": {"tier": {"Values": ["gold"]}}}
    mixed = plan_for(  # imported members that are gold, or gold endpoints outside the import: a mixed group
        server,
        app_id,
        {
            "SegmentGroups": {
                "Include": "ANY",
                "Groups": [
                    {"SourceSegments": [{"Id": segment_id}], "Dimensions": [gold]},
                    {"Dimensions": [gold, {"Attributes": {"tier": {"Values": ["silver"]}}}], "Type": "ANY"},
                ],
            }
        },
    )
    outside = plan.AllOf(
        (plan.Not(imported), plan.AttributeCondition(plan.Source.ENDPOINT, "tier", plan.Operator.INCLUSIVE, ("gold",)))
    )

    def members(node: Node) -> set[str]:
        found = set(engine_members(server, app_id, node))
        assert len(found) == count(server, app_id, node) == store_count(server, app_id, node)
        return found

    assert members(imported) == {"Ann", "bob"}
    assert members(outside) == {"cy", "dee"}
    assert members(mixed) == {"Ann", "bob", "cy", "dee"}

    import_segment(server, client, app_id, ["cy"], segment_id)  # re-imported: cy replaces Ann and bob
    assert members(imported) == {"cy"}
    assert members(outside) == {"Ann", "dee"}

    client.delete_endpoint(ApplicationId=app_id, EndpointId="cy")
    assert members(imported) == set()
    put_endpoints(client, app_id, {"CY": {"ChannelType": "EMAIL", "Address": "cy@example.com"}})
    assert members(imported) == {"CY"}  # the member is the endpoint key: a re-created endpoint is in again

    client.delete_segment(ApplicationId=app_id, SegmentId=segment_id)
    assert members(imported) == set()  # the plan made before the deletion still names it: it holds no one now
    replica = engine(server).sync.replica.cursor()
    held = "SELECT count(*) FROM segment_members WHERE app_id = ?"
    assert replica.execute(held, [app_id]).fetchone() == (0,)

    again = import_segment(server, client, app_id, ["dee"])
    assert replica.execute(held, [app_id]).fetchone() == (0,)  # the replica follows at the next evaluation
    assert members(plan_for(server, app_id, {"SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": again}]}]}})) == {
        "dee"
    }
    assert replica.execute(held, [app_id]).fetchone() == (1,)
    client.delete_app(ApplicationId=app_id)
    assert count(server, app_id, plan.EVERYONE) == 0
    assert replica.execute(held, [app_id]).fetchone() == (0,)


def test_metrics_and_attribute_values_past_the_replicas_slots_and_bits(server: RunningServer, client: Any) -> None:
    """A project's first metric names get columns and its first attribute values bits (clarion/analytics/replica.py);
    the names and values past them, written in later rounds, are read from the MAP and the list, with the same
    answers as the row-store SQL, alone and mixed with slotted ones in one condition."""
    app_id = new_app(client)
    replica = engine(server).sync.replica
    first = {
        f"e{n}": {
            "ChannelType": "EMAIL",
            "Address": f"e{n}@example.com",
            "Metrics": {"m00": float(n)},
            "Attributes": {"tag": [f"v{n:02d}"]},
        }
        for n in range(3)
    }
    put_endpoints(client, app_id, first)
    assert count(server, app_id, plan.EVERYONE) == 3  # this round gives m00 and v00-v02 their slot and bits
    later = {
        f"f{n}": {
            "ChannelType": "EMAIL",
            "Address": f"f{n}@example.com",
            "Metrics": {f"m{k:02d}": float(n + k) for k in range(20)},
            "Attributes": {"tag": [f"v{(n * 7 + k) % 80:02d}" for k in range(40)]},
        }
        for n in range(12)
    }
    put_endpoints(client, app_id, later)
    assert count(server, app_id, plan.EVERYONE) == 15
    with replica.cursor() as con:
        slots = con.execute("SELECT name FROM metric_slots WHERE app_id = ?", [app_id]).fetchall()
        bits = {
            pair for (pair,) in con.execute("SELECT pair FROM attribute_slots WHERE app_id = ?", [app_id]).fetchall()
        }
    assert len(slots) == METRIC_SLOTS and ("m19",) not in slots and len(bits) == ATTRIBUTE_BITS
    past = [f"v{n:02d}" for n in range(80) if attribute_pair("tag", f"v{n:02d}") not in bits]
    definitions = [
        {"Metrics": {"m19": {"ComparisonOperator": "GREATER_THAN_OR_EQUAL", "Value": 25}}},
        {
            "Metrics": {
                "m00": {"ComparisonOperator": "LESS_THAN", "Value": 2},
                "m18": {"ComparisonOperator": "EQUAL", "Value": 20},
            }
        },
        {"Attributes": {"tag": {"Values": ["v01", past[0], past[-1]]}}},
        {"Attributes": {"tag": {"AttributeType": "EXCLUSIVE", "Values": ["v02", past[1]]}}},
        {"Attributes": {"tag": {"Values": [past[2]]}}},
    ]
    for definition in definitions:
        node = plan_for(server, app_id, {"Dimensions": definition})
        assert count(server, app_id, node) == store_count(server, app_id, node), definition


def test_a_replica_of_another_layout_is_rebuilt(tmp_path: Path) -> None:
    """A replica file an older Clarion wrote (its tables of another shape) starts over instead of being trusted."""
    older = Replica(tmp_path / "analytics.duckdb")
    with older.round() as round_:
        round_.con.execute("INSERT INTO endpoints (app_id, endpoint_key, id) VALUES ('app', 'a', 'a')")
        round_.set_position(7)
        round_.con.execute("UPDATE replica_state SET value = ? WHERE name = 'layout'", [LAYOUT - 1])
    older.close()
    reopened = Replica(tmp_path / "analytics.duckdb")
    assert reopened.position() == NOTHING_SYNCED
    assert set(reopened.counts().values()) == {0}
    with reopened.round() as round_:
        round_.set_position(9)
    reopened.close()
    kept = Replica(tmp_path / "analytics.duckdb")  # one of this layout resumes where it was
    assert kept.position() == 9
    kept.close()


def test_the_benchmarks_replica_built_in_duckdb_equals_a_synced_one(settings: Settings, tmp_path: Path) -> None:
    """bench/segments.py --fast builds its 10,000,000-endpoint replica straight in DuckDB instead of loading a store
    and syncing it (half an hour): the two must hold the same rows, every table, with the sync reading the store in
    several batches across several change-feed stamps."""

    async def compare() -> dict[str, int]:
        db = open_database(settings)
        try:
            await db.write(migrate)
            return await compare_builds(db, tmp_path, 3_000, chunk=1_000, batch_rows=700)
        finally:
            db.close()

    assert asyncio.run(compare()) == {}


def test_nothing_changed_reads_nothing(server: RunningServer, client: Any) -> None:
    app_id = new_app(client)
    put_endpoints(client, app_id, {"a": {"ChannelType": "EMAIL", "Address": "a@example.com"}})
    first = server.run(lambda s: engine(server).sync.sync())
    again = server.run(lambda s: engine(server).sync.sync())
    assert first.position == again.position and again.batches == 0


def test_a_replica_ahead_of_its_store_starts_over(server: RunningServer, client: Any) -> None:
    """A replica file left from another store (its position is beyond this store's feed) is rebuilt, not trusted."""
    app_id = new_app(client)
    put_endpoints(client, app_id, {"a": {"ChannelType": "EMAIL", "Address": "a@example.com"}})
    assert count(server, app_id, plan.EVERYONE) == 1
    replica = engine(server).sync.replica
    with replica.round() as round_:
        round_.con.execute("INSERT INTO endpoints (app_id, endpoint_key, id) VALUES (?, 'ghost', 'ghost')", [app_id])
        round_.set_position(10**9)
    assert count(server, app_id, plan.EVERYONE) == 1
    assert replica.position() < 10**9


@pytest.mark.parametrize("store", ["sqlite"])  # the replica file exists on SQLite; on PostgreSQL it is in memory
def test_the_replica_file_survives_restarts_and_is_rebuilt_when_damaged(settings: Settings, store: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "analytics.duckdb").write_bytes(b"not a DuckDB file")
    first = RunningServer(settings).start()
    try:
        app_id = new_app(first.client())
        put_endpoints(first.client(), app_id, {"a": {"ChannelType": "EMAIL", "Address": "a@example.com"}})
        assert count(first, app_id, plan.EVERYONE) == 1
        position = engine(first).sync.replica.position()
    finally:
        first.stop()
    kept = Replica(settings.data_dir / "analytics.duckdb")  # what the next start will resume from
    assert kept.position() == position and kept.counts()["endpoints"] == 1
    kept.close()
    second = RunningServer(settings).start()
    try:
        put_endpoints(second.client(), app_id, {"b": {"ChannelType": "EMAIL", "Address": "b@example.com"}})
        assert count(second, app_id, plan.EVERYONE) == 2
    finally:
        second.stop()


def test_a_sync_goes_in_rounds_and_a_failed_round_keeps_the_ones_before(
    server: RunningServer, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each round commits the changes up to one stamp with that stamp as the position, so a sync that fails in a
    later round keeps the earlier rounds, and the next sync goes on from there to the same replica."""
    app_id = new_app(client)
    for n in range(6):  # six stamps, an endpoint each
        put_endpoints(client, app_id, {f"e{n}": {"ChannelType": "EMAIL", "Address": f"e{n}@example.com"}})
    replica = Replica(tmp_path / "rounds.duckdb")
    sync = ReplicaSync(server.services.db, replica, batch_rows=1, round_rows=2)
    applied = Replica.open_round

    def failing_third_round(self: Replica) -> Any:
        rounds.append(1)
        if len(rounds) == 3:
            raise RuntimeError("the third round fails")
        return applied(self)

    rounds: list[int] = []
    monkeypatch.setattr(Replica, "open_round", failing_third_round)
    with pytest.raises(RuntimeError, match="third round"):
        server.run(lambda _: sync.sync())
    kept = replica.position()
    assert kept > NOTHING_SYNCED and replica.counts()["endpoints"] >= 2  # two rounds of at least two rows each
    monkeypatch.setattr(Replica, "open_round", applied)
    result = server.run(lambda _: sync.sync())
    assert result.position > kept and replica.counts()["endpoints"] >= 6
    with replica.cursor() as con:
        ids = sorted(row[0] for row in con.execute("SELECT id FROM endpoints WHERE app_id = ?", [app_id]).fetchall())
    assert ids == [f"e{n}" for n in range(6)]
    replica.close()


def test_a_round_waits_and_commits_off_the_event_loop_and_a_cancelled_one_lets_go(
    server: RunningServer, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round's BEGIN waits for the replica's write lock (retention's prune holds it on a thread of its own) and its
    COMMIT writes the round out: the event loop goes on meanwhile. A sync cancelled while it waits leaves neither the
    lock held nor a round open, and the next sync takes the changes in."""
    app_id = new_app(client)
    put_endpoints(client, app_id, {"a": {"ChannelType": "EMAIL", "Address": "a@example.com"}})
    replica = Replica(tmp_path / "loop.duckdb")
    sync = ReplicaSync(server.services.db, replica)
    opening, held, release = threading.Event(), threading.Event(), threading.Event()
    closed_on: list[int] = []
    open_round, close_round = Replica.open_round, Replica.close_round

    def opened(self: Replica) -> Any:
        opening.set()
        return open_round(self)

    def closed(self: Replica, round_: Any, *, commit: bool) -> None:
        closed_on.append(threading.get_ident())
        close_round(self, round_, commit=commit)

    monkeypatch.setattr(Replica, "close_round", closed)

    def prune() -> None:
        with replica.round():
            held.set()
            release.wait(10)

    async def work(_: Any) -> tuple[bool, float, int]:
        holder = threading.Thread(target=prune)
        holder.start()
        await asyncio.to_thread(held.wait, 10)
        monkeypatch.setattr(Replica, "open_round", opened)
        waiting = asyncio.ensure_future(sync.sync())
        await asyncio.to_thread(opening.wait, 10)
        started = time.monotonic()
        await asyncio.sleep(0.3)  # the loop runs on while the sync waits for the lock
        slept = time.monotonic() - started
        still_waiting = not waiting.done()
        waiting.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.to_thread(holder.join)
        await sync.sync()
        return still_waiting, slept, threading.get_ident()

    still_waiting, slept, loop_thread = server.run(work)
    assert still_waiting and slept < 2
    assert replica.counts()["endpoints"] == 1 and replica.position() > NOTHING_SYNCED
    # the prune's round, the cancelled one's, then the next sync's (one or more)
    assert len(closed_on) >= 3 and loop_thread not in closed_on
    replica.close()
