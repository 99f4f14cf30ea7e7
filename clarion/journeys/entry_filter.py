"""Why an endpoint a journey's reading produced does not enter it: the run's filter metrics, under Pinpoint's names
(the developer guide's journey run metrics), so that GetJourneyRunExecutionMetrics says where the difference
between ENDPOINT_PRODUCED and ENDPOINT_ENTERED went."""

from __future__ import annotations

from clarion.store.endpoints import EndpointRow
from clarion.store.journeys import Entries

PRODUCED = "ENDPOINT_PRODUCED"
# Answered by GetJourneyRunExecutionMetrics only: they describe one reading, not the journey's participants.
RUN_ONLY = (
    PRODUCED,
    "ENDPOINT_INACTIVE",
    "ENDPOINT_OPT_OUT",
    "ENDPOINT_MISSING_CHANNEL",
    "ENDPOINT_MISSING_ADDRESS",
    "ENDPOINT_TIMEZONE_MISMATCH",
    "DUPLICATE_USER",
    "FILTERED_OUT_BY_SEGMENT",
)


def unreachable(row: EndpointRow) -> str | None:
    """Why this endpoint cannot take part at all, or None. An endpoint without a channel or an address still
    enters for its user (`User.UserId`): a user-level participant is reached through the user's other endpoints."""
    if row.endpoint_status != "ACTIVE":
        return "ENDPOINT_INACTIVE"
    if row.opt_out != "NONE":
        return "ENDPOINT_OPT_OUT"
    if row.user_id:
        return None
    if not row.channel_type:
        return "ENDPOINT_MISSING_CHANNEL"
    if not row.address:
        return "ENDPOINT_MISSING_ADDRESS"
    return None


def entered_before(entries: Entries, run_id: str) -> str:
    """Why an endpoint whose participant (itself, or its user through any endpoint) has entries does not enter
    again from a segment reading: its user entered by another endpoint of this very reading, it is still in the
    journey, or it has been through it (a segment lets each participant in once)."""
    if entries.run_id == run_id:
        return "DUPLICATE_USER"
    return "ACTIVE_ENDPOINT_REJECTED" if entries.active else "REENTRY_CAP_EXCEEDED"
