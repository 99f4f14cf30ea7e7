"""How Clarion's extension operations are declared: the same `Operation` the generated Pinpoint ones are, stated
by what differs (the body and answer members, parameters, status, errors) rather than every field each time."""

from __future__ import annotations

from msgspec import Struct

from clarion.api.operations import Operation, QueryParam

PROJECT = (("ApplicationId", "application-id"),)  # the path parameter of an operation under /v1/apps/{application-id}


def extension_operation(
    name: str,
    method: str,
    uri: str,
    *,
    status: int = 200,
    path: tuple[tuple[str, str], ...] = (),
    query: tuple[QueryParam, ...] = (),
    body: tuple[str, type[Struct]] | None = None,
    output: tuple[str, type[Struct]] | None = None,
    errors: tuple[str, ...] = (),
) -> Operation:
    """An operation whose request body, when it has one, is required (`body`: its member and type)."""
    return Operation(
        name=name,
        method=method,
        uri=uri,
        status=status,
        path_params=path,
        query_params=query,
        input_member=body[0] if body else None,
        input_type=body[1] if body else None,
        input_required=body is not None,
        output_member=output[0] if output else None,
        output_type=output[1] if output else None,
        errors=errors,
    )
