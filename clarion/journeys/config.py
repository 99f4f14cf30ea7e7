"""Operator settings for journeys (docs/journeys.md)."""

from __future__ import annotations

from clarion.settings_model import SettingsModel


class JourneySettings(SettingsModel):
    # Clarion has no Amazon Connect: a ContactCenter activity is accepted only when this webhook stands in for it
    # (each participant who reaches one is POSTed to it, docs/journeys.md#contact-center); unset, it is refused.
    contact_center_url: str | None = None
