"""Operator settings for the campaign engine (docs/campaigns.md)."""

from __future__ import annotations

from pydantic import Field

from clarion.settings_model import SettingsModel


class CampaignSettings(SettingsModel):
    # Run the scheduler in this process (at most one process needs to; several are safe: runs are keyed).
    scheduler: bool = True
    # How often the scheduler looks for due campaigns when nothing wakes it.
    poll_seconds: float = 1.0
    # Workers in this process that deliver campaign batches, one batch at a time each (0: another process does).
    delivery_workers: int = 1
    # Endpoints per delivery batch: the unit of work on the queue, and the most a crash can send twice.
    batch_size: int = 100
    # Segment members read per planning step (each step commits its batches and its cursor together).
    plan_chunk: int = 5_000
    # Retries of a THROTTLED or TEMPORARY_FAILURE message, 2, 4, 8... seconds apart, before it is given up.
    max_retries: int = 3
    # Campaign hooks: a LambdaFunctionName (name or ARN) -> the web URL Clarion calls instead.
    lambda_urls: dict[str, str] = Field(default_factory=dict)
    hook_timeout_seconds: float = 15.0
    hook_attempts: int = 3
    # An event-triggered message not sent within this many seconds of its event is dropped (Pinpoint: 5 minutes).
    event_expiry_seconds: float = 300.0
