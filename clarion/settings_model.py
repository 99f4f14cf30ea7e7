"""The base of every settings table: a key Clarion does not know is an error, never a silently ignored typo.

Every operator settings model (clarion/config.py and each area's config.py) derives from it, so a misspelt table
such as `[delivery.smpt]` stops the server at start instead of leaving the relay unconfigured.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SettingsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
