"""Operator settings for processes that share a store (docs/operations.md#several-processes)."""

from __future__ import annotations

from pydantic import Field, field_validator

from clarion.settings_model import SettingsModel


class CoordinationSettings(SettingsModel):
    # Optional: a redis:// URL whose server holds the rate buckets every process draws from (MessagesPerSecond),
    # one round trip per take instead of a statement on PostgreSQL. Empty: PostgreSQL holds them (or, on the
    # embedded store, the one process does).
    redis_url: str = ""
    # How long the campaign scheduler's leader lease lasts unless renewed; the leader renews it every third of
    # that, and another process takes over at most this long (plus one renewal) after the leader dies.
    leader_lease_seconds: float = Field(default=6.0, gt=0.5)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str) -> str:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must be a redis://, rediss:// or unix:// URL, not {url!r}")
        return url
