"""A journey as the engine and the rules read it: its states, and the kinds of activity with their wire keys.

The stored definition is the WriteJourneyRequest as written (the API echoes it back); activities are read through
the generated `clarion.shapes` Structs, whose members are Pinpoint's own, so nothing here re-declares the wire.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class JourneyState(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"
    CLOSED = "CLOSED"  # running, but closed to new first-time entrants
    COMPLETED = "COMPLETED"


WRITABLE_STATES = (JourneyState.DRAFT, JourneyState.ACTIVE)  # what CreateJourney and UpdateJourney accept
FINAL_STATES = (JourneyState.CANCELLED, JourneyState.COMPLETED)  # no edits, no state changes


# Activity member (wire key) -> ActivityType as execution metrics name it.
ACTIVITY_TYPES = {
    "EMAIL": "MESSAGE",
    "SMS": "MESSAGE",
    "PUSH": "MESSAGE",
    "CUSTOM": "MESSAGE",
    "Wait": "WAIT",
    "Holdout": "HOLDOUT",
    "RandomSplit": "RANDOM_SPLIT",
    "ConditionalSplit": "CONDITIONAL_SPLIT",
    "MultiCondition": "MULTI_CONDITIONAL_SPLIT",
    "ContactCenter": "CONTACT_CENTER",
}
MESSAGE_KINDS = ("EMAIL", "SMS", "PUSH", "CUSTOM")
# Message activity kind -> the template type its TemplateName names (CUSTOM has none of its own type).
TEMPLATE_TYPES = {"EMAIL": "EMAIL", "SMS": "SMS", "PUSH": "PUSH"}


def kinds_of(activity: dict[str, Any]) -> list[str]:
    """The activity type keys an activity (as written) holds; a valid one holds exactly one."""
    return [key for key in ACTIVITY_TYPES if activity.get(key) is not None]


def start_event(definition: dict[str, Any]) -> str | None:
    """The one event type an event-started journey starts on; None for a segment start (or none yet)."""
    event = (definition.get("StartCondition") or {}).get("EventStartCondition") or {}
    values = (((event.get("EventFilter") or {}).get("Dimensions") or {}).get("EventType") or {}).get("Values") or []
    return values[0] if values else None


def next_activities(body: dict[str, Any]) -> list[str]:
    """Every activity id one activity (the body under its type key) can lead to, in the order of its branches."""
    found = [body[member] for member in ("NextActivity", "TrueActivity", "FalseActivity") if body.get(member)]
    found.extend(branch["NextActivity"] for branch in body.get("Branches") or [] if branch.get("NextActivity"))
    if body.get("DefaultActivity"):
        found.append(body["DefaultActivity"])
    return found
