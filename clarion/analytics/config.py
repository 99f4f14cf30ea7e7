"""Operator settings for segment evaluation and the columnar replica (docs/segments.md, "The columnar engine"), and
the prices the cost view uses (docs/analytics.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from clarion.settings_model import SettingsModel


class AnalyticsSettings(SettingsModel):
    # Where segment membership is computed: "duckdb", the columnar replica (fast at millions of endpoints), or
    # "store", SQL over the row store (no replica kept; fine for small projects).
    segment_engine: Literal["duckdb", "store"] = "duckdb"
    # The replica's DuckDB file. Empty: data_dir/analytics.duckdb on SQLite; in memory on PostgreSQL, where several
    # processes share one data_dir. "memory" forces memory.
    replica_path: str = ""
    # On PostgreSQL, which processes of a group keep a replica: "one", the holder of the analytics lease (the others
    # answer segment and KPI reads on the row store); "every", each its own copy in memory.
    replica_holders: Literal["one", "every"] = "one"
    # DuckDB worker threads, and its memory ceiling (e.g. "4GB"; empty: DuckDB's default, 80% of RAM). Past the
    # ceiling DuckDB evicts to the replica file or spills to data_dir/analytics.tmp.
    threads: int = 2
    memory_limit: str = "128MB"
    # How often the background loop pulls changes; evaluations also pull them first, so this only keeps it warm.
    sync_seconds: float = 5.0
    # The scheduled Parquet export of the who/when/what dataset (docs/analytics.md): a folder turns it on. Once a day,
    # after export_hour UTC, the last export_days full days are written again (late events join their day).
    export_dir: str = ""
    export_hour: int = Field(default=1, ge=0, le=23)
    export_days: int = Field(default=3, ge=1, le=90)


class ProviderPrices(SettingsModel):
    """What the operator pays its own providers per message (docs/analytics.md, "Cost view"); 0 = free."""

    currency: str = "USD"
    email: Decimal = Field(default=Decimal(0), ge=0)
    push: Decimal = Field(default=Decimal(0), ge=0)
    voice: Decimal = Field(default=Decimal(0), ge=0)
    custom: Decimal = Field(default=Decimal(0), ge=0)
    # Per SMS part, by the destination's ISO country code; "default" prices the countries not listed.
    sms: dict[str, Decimal] = Field(default_factory=dict)


class CostSettings(SettingsModel):
    provider: ProviderPrices = Field(default_factory=ProviderPrices)
    # What AWS charged per SMS part (USD) by ISO country ("default" for the rest), for the Pinpoint column: AWS
    # priced SMS per country and changed the rates often, so Clarion ships none of its own.
    pinpoint_sms: dict[str, Decimal] = Field(default_factory=dict)


class RetentionSettings(SettingsModel):
    """How long rows are kept (docs/analytics.md, "Retention"); 0 keeps them for ever. Pinpoint kept 90 days."""

    events_days: int = Field(default=90, ge=0)  # events (and so KPIs: a range may start this far back)
    messages_days: int = Field(default=90, ge=0)  # the message log
    changes_days: int = Field(default=90, ge=0)  # change-feed tombstones (deletions the replica follows)
    interval_seconds: float = Field(default=300.0, gt=0)  # how often the background prune runs
    batch_rows: int = Field(default=500, ge=1)  # rows removed per write: writers wait for one batch at most
    pause_seconds: float = Field(default=0.01, ge=0)  # between batches, so that other writes go first
