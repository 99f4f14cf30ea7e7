"""Operator settings for calls to recommenders and transformers (docs/recommenders.md, docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field

from clarion.settings_model import SettingsModel


class RecommenderSettings(SettingsModel):
    # One call's time, each attempt (Pinpoint waited at most 15 s for a transformer).
    timeout_seconds: float = Field(default=15.0, gt=0)
    # Attempts per call when the far side fails for now (timeout, 429, 5xx, unreachable); Pinpoint made 3.
    attempts: int = Field(default=3, ge=1, le=10)
    # Seconds before the second attempt; each further one waits twice as long.
    retry_backoff_seconds: float = Field(default=0.5, ge=0)
    # The largest answer read (Pinpoint's transformer payload quota: 6 MB).
    max_response_bytes: int = Field(default=6 * 1024 * 1024, ge=1024)
    # Ids per recommender call and endpoints per transformer call (Pinpoint sent a transformer 50 at a time).
    batch_size: int = Field(default=50, ge=1, le=1000)
