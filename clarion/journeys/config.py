"""Operator settings for journeys (docs/journeys.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from clarion.settings_model import SettingsModel


class JourneySettings(SettingsModel):
    # Clarion has no Amazon Connect: a ContactCenter activity is accepted only when this webhook stands in for it
    # (each participant who reaches one is POSTed to it, docs/journeys.md#contact-center); unset, it is refused.
    contact_center_url: str | None = None
    # Let this process run the journey engine: the processes that may contend for its leader lease, and one at a
    # time runs it (docs/operations.md#several-processes).
    engine: bool = True
    # How often the engine looks for due timers when nothing wakes it: the most a timer fires late.
    poll_seconds: float = 0.25
    # Participants leased per step batch, and how long a lease lasts before another stepper may take them over.
    step_batch: int = 500
    lease_seconds: float = 60.0
    # A step that raises is tried again this many times, waiting step_retry_seconds, then twice that, and so on;
    # then its participants leave the journey with the step marked failed (STEP_FAILED, docs/journeys.md).
    step_retries: int = Field(default=5, ge=0)
    step_retry_seconds: float = Field(default=10.0, gt=0)
    # TimezoneEstimationMethods POSTAL_CODE: a CSV of country, postal code or prefix, IANA zone for the countries
    # with more than one clock (docs/journeys.md#local-time-zones); read at start, a bad row stops the process.
    postal_code_zones: Path | None = None
