"""Operator settings for the server's outbound requests, to tenant-supplied URLs and message providers
(docs/security.md#requests-to-tenant-urls)."""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork

from clarion.settings_model import SettingsModel


class OutboundSettings(SettingsModel):
    # Networks (CIDR) tenant URLs may reach although they are not public: an internal file server, a local test
    # stub. Empty: only public addresses. Anything listed here is reachable by every project's URLs.
    allow_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    # Redirects followed by a download (each hop is checked again); posts never follow redirects.
    max_redirects: int = Field(default=5, ge=0, le=20)
    # Seconds to open a connection; each request's total time is bounded by its caller's own timeout.
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    # Requests one project may have in flight at once (webhooks, hooks, sends to providers); more wait their turn,
    # so a project whose receiver is slow holds at most this many while the others go on.
    max_requests_per_project: int = Field(default=1000, ge=1)
