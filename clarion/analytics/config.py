"""Operator settings for segment evaluation and the columnar replica (docs/segments.md, "The columnar engine")."""

from __future__ import annotations

from typing import Literal

from clarion.settings_model import SettingsModel


class AnalyticsSettings(SettingsModel):
    # Where segment membership is computed: "duckdb", the columnar replica (fast at millions of endpoints), or
    # "store", SQL over the row store (no replica kept; fine for small projects).
    segment_engine: Literal["duckdb", "store"] = "duckdb"
    # The replica's DuckDB file. Empty: data_dir/analytics.duckdb on SQLite; in memory on PostgreSQL, where several
    # processes share one data_dir and each keeps its own replica. "memory" forces memory.
    replica_path: str = ""
    # DuckDB worker threads, and its memory ceiling (e.g. "4GB"; empty: DuckDB's default, 80% of RAM).
    threads: int = 2
    memory_limit: str = ""
    # How often the background loop pulls changes; evaluations also pull them first, so this only keeps it warm.
    sync_seconds: float = 5.0
