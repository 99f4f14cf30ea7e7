"""Journey blueprints (clarion/journeys/blueprints/*.json): a segment, templates and a journey that belong
together, created on a server over its API, as any client would (`clarion journeys create-cascade`).

A blueprint file holds `Segment` (a WriteSegmentRequest), `Templates` (each `{Type, Name, Request}`) and `Journey`
(a WriteJourneyRequest whose `{SegmentId}` placeholders name the segment created with it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from clarion.client import ApiClient, ApiError

CASCADE = "re-engagement"


def load_blueprint(name: str) -> dict[str, Any]:
    text = resources.files("clarion.journeys").joinpath("blueprints", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True, slots=True)
class Created:
    segment_id: str
    templates: list[str]  # "name (type)" of the templates created; existing ones are used as they are
    journey: dict[str, Any]


def create_from_blueprint(
    client: ApiClient, app_id: str, blueprint: dict[str, Any], *, segment_id: str | None, activate: bool
) -> Created:
    """Create the blueprint's segment (unless one is given), its templates (unless they exist) and its journey."""
    if segment_id is None:
        segment_id = client.post("apps", app_id, "segments", body=blueprint["Segment"])["Id"]
    created = []
    for template in blueprint.get("Templates", []):
        try:
            client.get("templates", template["Name"], template["Type"])
        except ApiError as error:
            if error.status != 404:
                raise
            client.post("templates", template["Name"], template["Type"], body=template["Request"])
            created.append(f"{template['Name']} ({template['Type']})")
    text = json.dumps(blueprint["Journey"]).replace("{SegmentId}", segment_id)
    request = {**json.loads(text), "State": "ACTIVE" if activate else "DRAFT"}
    journey = client.post("apps", app_id, "journeys", body=request)
    return Created(segment_id, created, journey)
