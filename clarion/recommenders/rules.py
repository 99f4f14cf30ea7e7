"""What a recommender configuration must satisfy (the rules Pinpoint's API reference gives for
CreateRecommenderConfiguration and UpdateRecommenderConfiguration), and what Clarion asks of its two URLs.

Pinpoint's RecommendationProviderUri named an Amazon Personalize campaign and RecommendationTransformerUri a Lambda
function; here both are http(s) URLs following the contract in docs/recommenders.md. Every error names the member.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from clarion.errors import BadRequest

ENDPOINT_ID, USER_ID = "PINPOINT_ENDPOINT_ID", "PINPOINT_USER_ID"
ID_TYPES = (ENDPOINT_ID, USER_ID)
MAX_RECOMMENDERS = 100  # per account
MAX_PER_MESSAGE = 5
MAX_ATTRIBUTES = 10
MAX_URI = 2048

_NAME = re.compile(r"[^\W_][\w -]{0,127}")  # letters and digits first; then also spaces, _ and -
_DISPLAY_NAME = re.compile(r"[\w -]{1,25}")
_ATTRIBUTE_DISPLAY_NAME = re.compile(r"[^\W_][\w -]{0,24}")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,49}")  # also a template variable: ASCII only
_DESCRIPTION = re.compile(r"[\w ;(),\u2010-]{0,128}")


def _url(member: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{member} is required: the http(s) URL of the recommender")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > MAX_URI:
        raise BadRequest(
            f"{member} {value[:200]!r} is not an http(s) URL of at most {MAX_URI} characters (Clarion calls a "
            "web recommender, not Amazon Personalize or AWS Lambda: see docs/recommenders.md)"
        )
    return value


def _matching(member: str, value: Any, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"{member} {str(value)[:200]!r} is not valid: {rule}")
    return value


def check_configuration(request: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as stored and answered: defaults filled in (RecommendationProviderIdType,
    RecommendationsPerMessage), members not given left out."""
    body: dict[str, Any] = {
        "RecommendationProviderUri": _url("RecommendationProviderUri", request.get("RecommendationProviderUri"))
    }
    role = request.get("RecommendationProviderRoleArn")
    if not isinstance(role, str) or not role.strip():
        raise BadRequest("RecommendationProviderRoleArn is required (Clarion keeps it but assumes no IAM role)")
    body["RecommendationProviderRoleArn"] = role
    id_type = request.get("RecommendationProviderIdType") or ENDPOINT_ID
    if id_type not in ID_TYPES:
        raise BadRequest(f"RecommendationProviderIdType {id_type!r} is not one of {', '.join(ID_TYPES)}")
    body["RecommendationProviderIdType"] = id_type
    per_message = request.get("RecommendationsPerMessage")
    per_message = MAX_PER_MESSAGE if per_message is None else per_message
    if not isinstance(per_message, int) or not 1 <= per_message <= MAX_PER_MESSAGE:
        raise BadRequest(f"RecommendationsPerMessage must be between 1 and {MAX_PER_MESSAGE}, not {per_message}")
    body["RecommendationsPerMessage"] = per_message
    transformer = request.get("RecommendationTransformerUri")
    attributes = request.get("Attributes")
    if transformer:
        body["RecommendationTransformerUri"] = _url("RecommendationTransformerUri", transformer)
        body["Attributes"] = _attributes(attributes)
    elif attributes:
        raise BadRequest("Attributes are given only with a RecommendationTransformerUri, which fills them")
    display = request.get("RecommendationsDisplayName")
    if display is not None:
        body["RecommendationsDisplayName"] = _matching(
            "RecommendationsDisplayName", display, _DISPLAY_NAME, "1 to 25 letters, digits, spaces, '_' or '-'"
        )
    elif not transformer:
        raise BadRequest("RecommendationsDisplayName is required when there is no RecommendationTransformerUri")
    if request.get("Name") is not None:
        body["Name"] = _matching(
            "Name",
            request["Name"],
            _NAME,
            "1 to 128 letters, digits, spaces, '_' or '-', starting with a letter or digit",
        )
    if request.get("Description") is not None:
        body["Description"] = _matching(
            "Description",
            request["Description"],
            _DESCRIPTION,
            "at most 128 letters, digits, spaces and the symbols _ ; ( ) , -",
        )
    return body


def _attributes(attributes: Any) -> dict[str, str]:
    if not isinstance(attributes, Mapping) or not 1 <= len(attributes) <= MAX_ATTRIBUTES:
        raise BadRequest(
            f"Attributes must map 1 to {MAX_ATTRIBUTES} attribute names to display names when a "
            "RecommendationTransformerUri is given"
        )
    for name, display in attributes.items():
        _matching(
            "Attributes name",
            name,
            _ATTRIBUTE_NAME,
            "1 to 50 of A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit",
        )
        _matching(
            f"Attributes[{name!r}]",
            display,
            _ATTRIBUTE_DISPLAY_NAME,
            "1 to 25 letters, digits, spaces, '_' or '-', starting with a letter or digit",
        )
    return dict(attributes)
