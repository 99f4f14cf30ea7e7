"""Journeys: multi-step, event-driven paths through messages, waits and splits (docs/journeys.md)."""
