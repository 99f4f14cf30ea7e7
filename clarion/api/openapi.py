"""An OpenAPI 3.1 document of the Pinpoint API, generated from the same model the routes come from."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

from clarion.api.extended import EXTENSION_OPERATIONS, EXTENSION_SUMMARIES, ROUTED_OPERATIONS
from clarion.api.handlers import HANDLERS
from clarion.api.operations import ERROR_STATUS

MODEL = Path(__file__).parent / "model" / "pinpoint-2016-12-01.json"
_TAG = re.compile(r"<[^>]+>")


def _summary(documentation: str | None) -> str:
    text = _TAG.sub("", documentation or "").strip()
    return text.split(". ")[0][:200]


@lru_cache(maxsize=1)
def openapi_document(version: str = "dev") -> dict[str, Any]:
    model = json.loads(MODEL.read_text())
    structs = sorted(
        {t for op in ROUTED_OPERATIONS.values() for t in (op.input_type, op.output_type) if t is not None},
        key=lambda t: t.__name__,
    )
    _, components = msgspec.json.schema_components(structs, ref_template="#/components/schemas/{name}")
    components["PinpointError"] = {
        "type": "object",
        "properties": {"Message": {"type": "string"}, "RequestID": {"type": "string"}, "__type": {"type": "string"}},
    }
    paths: dict[str, dict[str, Any]] = {}
    for name, op in sorted(ROUTED_OPERATIONS.items()):
        parameters = [
            {"name": label, "in": "path", "required": True, "schema": {"type": "string"}} for _, label in op.path_params
        ] + [
            {
                "name": q.name,
                "in": "query",
                "schema": {"type": "array", "items": {"type": "string"}} if q.kind == "list" else {"type": "string"},
            }
            for q in op.query_params
        ]
        success: dict[str, Any] = {"description": "Success"}
        if op.output_type is not None and op.status != 204:
            success["content"] = {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{op.output_type.__name__}"}}
            }
        responses = {str(op.status): success}
        for error in op.errors:
            responses[str(ERROR_STATUS[error])] = {
                "description": error,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PinpointError"}}},
            }
        operation: dict[str, Any] = {
            "operationId": name,
            "summary": EXTENSION_SUMMARIES.get(name) or _summary(model["operations"][name].get("documentation")),
            "parameters": parameters,
            "responses": responses,
        }
        if name not in HANDLERS:
            operation["x-clarion-status"] = "not-built"
        if name in EXTENSION_OPERATIONS:  # Clarion's own operation, same SigV4 and error shape (api/extended.py)
            operation["x-clarion-extension"] = True
        if op.input_type is not None:
            operation["requestBody"] = {
                "required": op.input_required,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.input_type.__name__}"}}},
            }
        paths.setdefault(op.uri, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Clarion — Amazon Pinpoint API (2016-12-01)",
            "version": version,
            "description": "Pinpoint's REST API as Clarion serves it. Requests are signed with AWS SigV4 "
            "(service name mobiletargeting) or carry a web console session. Operations marked "
            "x-clarion-status: not-built answer MethodNotAllowedException; operations marked "
            "x-clarion-extension are Clarion's own additions.",
        },
        "security": [{"sigv4": []}, {"consoleSession": []}],
        "components": {
            "schemas": components,
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4, service mobiletargeting",
                },
                "consoleSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "clarion_session",
                    "description": "A web console session (ClarionSignIn); changes also need the X-Clarion-CSRF header",
                },
            },
        },
        "paths": paths,
    }
