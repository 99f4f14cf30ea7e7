"""Operator settings for journeys (docs/journeys.md)."""

from __future__ import annotations

from clarion.settings_model import SettingsModel


class JourneySettings(SettingsModel):
    # Clarion has no Amazon Connect: a ContactCenter activity is accepted only when this webhook stands in for it
    # (each participant who reaches one is POSTed to it, docs/journeys.md#contact-center); unset, it is refused.
    contact_center_url: str | None = None
    # Run the journey engine in this process (several may: steps are leased, entries held while they run).
    engine: bool = True
    # How often the engine looks for due timers when nothing wakes it: the most a timer fires late.
    poll_seconds: float = 0.25
    # Participants leased per step batch, and how long a lease lasts before another stepper may take them over.
    step_batch: int = 500
    lease_seconds: float = 60.0
