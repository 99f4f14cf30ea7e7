"""Bounded fuzzing of the whole API with schemathesis, from the OpenAPI document a live server publishes at
/openapi.json: no generated request, valid or deliberately invalid, may get a 5xx.

One example per operation and generation mode: every operation gets a valid request, and every operation with
something to get wrong (`can_be_invalid`) a deliberately invalid one. Generating the cases, not serving them, is
what the run costs (a second example each took it from 17 s to 50 s). The server runs in development mode (any
credentials) so that the cases reach the handlers rather than stopping at the signature check, and requests that
name a project name one that exists. Cases are driven by hypothesis directly (schemathesis's pytest plugin does not
run under this pytest), failures are collected rather than shrunk, and all are reported together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from conftest import RunningServer, free_port
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from clarion.config import Settings

EXAMPLES = 1  # per operation and generation mode: 123 operations and ~120 invalid = ~250 requests
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
DELETE_APP = "DELETE /v1/apps/{application-id}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    data = Path(tmp_path_factory.mktemp("fuzz")) / "data"
    settings = Settings(data_dir=data, port=free_port(), insecure_any_credentials=True, access_log=False)
    server = RunningServer(settings).start()
    try:
        app_id = server.client().create_app(CreateApplicationRequest={"Name": "fuzzed"})["ApplicationResponse"]["Id"]
        yield server, app_id
    finally:
        server.stop()


def can_be_invalid(operation: schemathesis.APIOperation, pinned: dict[str, str]) -> bool:
    """Whether a request breaking the schema exists: it needs a body, a query or header parameter, or a path
    parameter constrained beyond a string. Without one, hypothesis gives up only after some 460 draws
    (Unsatisfiable): for the 50 operations taking nothing but ids in their path, that was four fifths of the run."""
    if "requestBody" in operation.definition.raw:
        return True
    return any(
        parameter["in"] != "path" or parameter.get("schema") != {"type": "string"}
        for parameter in operation.definition.raw.get("parameters", [])
        if parameter["name"] not in pinned or parameter["in"] != "path"
    )


def fuzz(
    operation: schemathesis.APIOperation,
    mode: schemathesis.GenerationMode,
    session: requests.Session,
    base_url: str,
    path_parameters: dict[str, str],
) -> list[tuple[int, str]]:
    """Send EXAMPLES generated cases of one operation; return each answer's status and the start of its body."""
    answers: list[tuple[int, str]] = []

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, session=session, timeout=30)
        answers.append((response.status_code, response.text[:300]))

    try:
        send()
    except Unsatisfiable:
        # Only when every request is valid, for an operation `can_be_invalid` did not foresee.
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise
    return answers


def test_no_generated_request_gets_a_server_error(live: tuple[RunningServer, str]) -> None:
    server, app_id = live
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 123
    server_errors: list[str] = []
    answered: Counter[int] = Counter()
    with requests.Session() as session:
        for operation in operations:
            # A project that exists, so that cases get past NotFound (DeleteApp would remove it for the rest).
            known = {"application-id": app_id} if "{application-id}" in operation.path else {}
            if operation.label == DELETE_APP:
                known = {}
            modes = MODES if can_be_invalid(operation, known) else (schemathesis.GenerationMode.POSITIVE,)
            for mode in modes:
                for status, body in fuzz(operation, mode, session, server.url, known):
                    answered[status // 100 * 100] += 1
                    if status >= 500:
                        server_errors.append(f"{operation.label} [{mode.value}] {status}: {body}")
    assert not server_errors, "\n".join(server_errors)
    # The cases reached the handlers: many were accepted, not only refused by validation.
    assert answered[200] >= len(operations) // 4, answered
