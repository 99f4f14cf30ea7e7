"""The segment replica's DuckDB memory is capped by default (analytics.memory_limit, 128 MB), and a replica kept in
memory spills into the data folder, not the working directory (docs/segments.md, "Memory and disk")."""

from __future__ import annotations

from conftest import RunningServer

from clarion.analytics.engine import ColumnarSegmentEngine


def test_the_replica_is_capped_by_default(server: RunningServer) -> None:
    engine = server.services.segments_engine
    assert isinstance(engine, ColumnarSegmentEngine)
    with engine.sync.replica.cursor() as con:
        limit, spill = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    assert limit == "122.0 MiB"  # 128 MB
    with engine.sync.replica.cursor() as con:  # freed memory goes back to the system, not kept for reuse
        flush = "SELECT current_setting('allocator_flush_threshold'), current_setting(?)"
        bulk = "allocator_bulk_deallocation_flush_threshold"
        assert con.execute(flush, [bulk]).fetchone() == ("15.2 MiB", "0 bytes")
    data_dir = str(server.settings.data_dir)
    if server.settings.uses_postgres:  # in memory: spills to DATA_DIR/analytics.tmp
        assert spill == f"{data_dir}/analytics.tmp"
    else:  # the file DATA_DIR/analytics.duckdb evicts to itself and spills beside it
        assert spill == f"{data_dir}/analytics.duckdb.tmp"
