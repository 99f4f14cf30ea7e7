"""The wire contract: every modeled operation answers as botocore expects, errors have Pinpoint's shape,
routing, paging, health/metrics/OpenAPI, and projects, tags and application settings over real HTTP.

Most tests share one server per store (module scope, its own database) so the 122-operation sweep stays fast;
tests that need an empty store take the per-test `server` fixture.
"""

from __future__ import annotations

import http.client
import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import botocore
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.serialize import create_serializer
from conftest import ADMIN, POSTGRES_URL, REGION, RunningServer, free_port
from prometheus_client.parser import text_string_to_metric_families

import clarion.projects.service
from clarion import __version__
from clarion.api.extended import EXTENSION_OPERATIONS
from clarion.api.handlers import HANDLERS
from clarion.api.openapi import openapi_document
from clarion.api.operations import ERROR_STATUS, OPERATIONS
from clarion.api.routing import Router
from clarion.config import AccessKey, Settings
from clarion.errors import MethodNotAllowed, NotFound

MODEL = botocore.session.get_session().get_service_model("pinpoint")
ACCOUNT = "000000000000"


def app_arn(app_id: str, region: str = REGION) -> str:
    return f"arn:aws:mobiletargeting:{region}:{ACCOUNT}:apps/{app_id}"


# --------------------------------------------------------------------------------------------------------------
# A server per store shared by this module (its own database, so the per-test fixtures' resets cannot touch it)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    values: dict[str, Any] = {
        "data_dir": tmp_path_factory.mktemp("wire"),
        "port": free_port(),
        "access_keys": [ADMIN],
        "access_log": False,
    }
    dropper = None
    if request.param == "postgres":
        psycopg = pytest.importorskip("psycopg")
        try:
            admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError as error:
            pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL} ({error})")
        name = f"clarion_wire_{uuid.uuid4().hex[:10]}"
        admin.execute(f"CREATE DATABASE {name}")
        values["database_url"] = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"

        def dropper() -> None:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.close()

    running = RunningServer(Settings(**values)).start()
    try:
        yield running
    finally:
        running.stop()
        if dropper:
            dropper()


@pytest.fixture(scope="module")
def shared_client(shared: RunningServer) -> Any:
    return shared.client()


@pytest.fixture(scope="module")
def shared_app(shared_client: Any) -> str:
    return shared_client.create_app(CreateApplicationRequest={"Name": "shared"})["ApplicationResponse"]["Id"]


def new_app(client: Any, name: str = "p", **extra: Any) -> str:
    return client.create_app(CreateApplicationRequest={"Name": name, **extra})["ApplicationResponse"]["Id"]


# --------------------------------------------------------------------------------------------------------------
# Raw HTTP, signed like botocore signs


def raw(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    key: AccessKey = ADMIN,
    region: str = REGION,
    sign: bool = True,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = AWSRequest(method=method, url=server.url + path, data=body, headers=dict(headers or {}))
    if body:
        request.headers["Content-Type"] = "application/json"
    if sign:
        credentials = Credentials(key.access_key_id, key.secret_access_key)
        SigV4Auth(credentials, "mobiletargeting", region).add_auth(request)
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=dict(request.headers.items()))
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def assert_pinpoint_error(status: int, headers: dict[str, str], body: bytes, code: str, expected_status: int) -> dict:
    assert status == expected_status, body
    assert headers["x-amzn-errortype"] == code
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["Message"]
    assert document["RequestID"] == headers["x-amzn-requestid"]
    assert document["__type"] == code
    return document


def client_error(excinfo: pytest.ExceptionInfo[ClientError], code: str) -> str:
    """Check a botocore error is the typed Pinpoint one, with a message and a request id; return the message."""
    response = excinfo.value.response
    assert response["Error"]["Code"] == code, response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == ERROR_STATUS[code]
    message = response["Error"]["Message"]
    assert message
    assert response["RequestID"] == response["ResponseMetadata"]["RequestId"]
    return message


# --------------------------------------------------------------------------------------------------------------
# Every operation in the model


def minimal(shape: Any, member: str, app_id: str) -> Any:
    """The smallest input botocore accepts for `shape`: required members only, recursively."""
    kind = shape.type_name
    if kind == "structure":
        return {name: minimal(shape.members[name], name, app_id) for name in shape.required_members}
    if kind == "list":
        return []
    if kind == "map":
        return {}
    if kind == "string":
        if member == "ApplicationId":
            return app_id
        if member == "ResourceArn":
            return app_arn(app_id)
        if member.endswith("RoleArn"):
            return f"arn:aws:iam::{ACCOUNT}:role/clarion"
        return shape.enum[0] if shape.enum else "x"
    if kind in ("integer", "long"):
        return 1
    if kind in ("double", "float"):
        return 1.0
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime(2024, 1, 1, tzinfo=UTC)
    if kind == "blob":
        return b"x"
    raise AssertionError(f"no sample for {shape.name} ({kind})")


def test_model_and_route_table_agree() -> None:
    assert sorted(MODEL.operation_names) == sorted(OPERATIONS)
    assert len(OPERATIONS) == 122
    assert set(HANDLERS) <= set(OPERATIONS) | set(EXTENSION_OPERATIONS)


@pytest.mark.parametrize("operation", MODEL.operation_names)
def test_every_operation_answers_as_modeled(operation: str, shared_client: Any, shared_app: str) -> None:
    op_model = MODEL.operation_model(operation)
    # DeleteApp gets a project of its own so the shared one survives the sweep.
    app_id = new_app(shared_client, "doomed") if operation == "DeleteApp" else shared_app
    params = minimal(op_model.input_shape, "", app_id) if op_model.input_shape else {}
    method = getattr(shared_client, botocore.xform_name(operation))
    try:
        response = method(**params)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        message = error.response["Error"]["Message"]
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        modeled = {shape.name for shape in op_model.error_shapes}
        assert code in modeled, f"{operation} answered {code} ({status}): {message}"
        assert code != "InternalServerErrorException", message
        assert status == ERROR_STATUS[code]
        assert message.strip()
        assert error.response["RequestID"] == error.response["ResponseMetadata"]["RequestId"]
        if operation not in HANDLERS:
            assert code == "MethodNotAllowedException"
            assert operation in message
        return
    assert operation in HANDLERS, f"{operation} is not built, yet it answered {response}"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == OPERATIONS[operation].status


def test_not_built_operation_over_raw_http(shared: RunningServer, shared_app: str) -> None:
    not_built = [name for name, op in OPERATIONS.items() if name not in HANDLERS and op.method == "GET"]
    if not not_built:
        pytest.skip("every GET operation is built: none is left to answer MethodNotAllowedException")
    operation = OPERATIONS[not_built[0]]
    path = operation.uri.replace("{application-id}", shared_app)
    path = "/".join("x" if part.startswith("{") else part for part in path.split("/"))
    status, headers, body = raw(shared, "GET", path)
    document = assert_pinpoint_error(status, headers, body, "MethodNotAllowedException", 405)
    assert operation.name in document["Message"]


# --------------------------------------------------------------------------------------------------------------
# Modeled success status codes


def test_modeled_success_status_codes(shared_client: Any) -> None:
    client = shared_client

    def status(response: dict[str, Any], operation: str) -> int:
        got = response["ResponseMetadata"]["HTTPStatusCode"]
        assert got == OPERATIONS[operation].status, operation
        return got

    created = client.create_app(CreateApplicationRequest={"Name": "codes"})
    assert status(created, "CreateApp") == 201
    app_id = created["ApplicationResponse"]["Id"]
    assert status(client.get_app(ApplicationId=app_id), "GetApp") == 200
    assert status(client.get_apps(), "GetApps") == 200

    endpoint = {"ChannelType": "EMAIL", "Address": "a@example.com", "User": {"UserId": "u1"}}
    updated = client.update_endpoint(ApplicationId=app_id, EndpointId="e1", EndpointRequest=endpoint)
    assert status(updated, "UpdateEndpoint") == 202
    assert updated["MessageBody"]["RequestID"] == updated["ResponseMetadata"]["RequestId"]
    batch = {"Item": [{"Id": "e2", "ChannelType": "SMS", "Address": "+15555550100", "User": {"UserId": "u2"}}]}
    assert (
        status(client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest=batch), "UpdateEndpointsBatch")
        == 202
    )
    assert status(client.get_endpoint(ApplicationId=app_id, EndpointId="e1"), "GetEndpoint") == 200
    assert status(client.get_user_endpoints(ApplicationId=app_id, UserId="u2"), "GetUserEndpoints") == 200
    events = {
        "BatchItem": {
            "e1": {
                "Endpoint": {},
                "Events": {"ev1": {"EventType": "app.opened", "Timestamp": datetime.now(UTC).isoformat()}},
            }
        }
    }
    assert status(client.put_events(ApplicationId=app_id, EventsRequest=events), "PutEvents") == 202
    assert status(client.delete_endpoint(ApplicationId=app_id, EndpointId="e1"), "DeleteEndpoint") == 202
    assert status(client.delete_user_endpoints(ApplicationId=app_id, UserId="u2"), "DeleteUserEndpoints") == 202

    arn = created["ApplicationResponse"]["Arn"]
    tagged = client.tag_resource(ResourceArn=arn, TagsModel={"tags": {"team": "growth"}})
    assert status(tagged, "TagResource") == 204
    assert tagged["ResponseMetadata"]["HTTPHeaders"]["content-length"] == "0"
    untagged = client.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert status(untagged, "UntagResource") == 204
    assert untagged["ResponseMetadata"]["HTTPHeaders"]["content-length"] == "0"
    assert status(client.list_tags_for_resource(ResourceArn=arn), "ListTagsForResource") == 200
    assert status(client.get_application_settings(ApplicationId=app_id), "GetApplicationSettings") == 200
    settings = client.update_application_settings(ApplicationId=app_id, WriteApplicationSettingsRequest={})
    assert status(settings, "UpdateApplicationSettings") == 200
    assert status(client.delete_app(ApplicationId=app_id), "DeleteApp") == 200


def test_no_content_response_has_empty_body(shared: RunningServer, shared_app: str) -> None:
    body = json.dumps({"tags": {"k": "v"}}).encode()
    status, headers, payload = raw(shared, "POST", f"/v1/tags/{quote(app_arn(shared_app), safe='')}", body)
    assert (status, payload) == (204, b"")
    assert headers["x-amzn-requestid"]


# --------------------------------------------------------------------------------------------------------------
# Error format


def test_error_shape_on_unknown_project(shared: RunningServer) -> None:
    status, headers, body = raw(shared, "GET", "/v1/apps/0123456789abcdef0123456789abcdef")
    document = assert_pinpoint_error(status, headers, body, "NotFoundException", 404)
    assert "0123456789abcdef0123456789abcdef" in document["Message"]


def test_error_shape_through_boto3(shared_client: Any) -> None:
    with pytest.raises(shared_client.exceptions.NotFoundException) as excinfo:
        shared_client.get_app(ApplicationId="nope")
    assert "nope" in client_error(excinfo, "NotFoundException")


def test_wrong_verb_on_known_path(shared: RunningServer) -> None:
    status, headers, body = raw(shared, "PATCH", "/v1/apps")
    document = assert_pinpoint_error(status, headers, body, "MethodNotAllowedException", 405)
    assert "PATCH" in document["Message"]
    assert "GET, POST" in document["Message"]


def test_unknown_path_is_json_not_found(shared: RunningServer) -> None:
    status, headers, body = raw(shared, "GET", "/v2/no/such/thing")
    document = assert_pinpoint_error(status, headers, body, "NotFoundException", 404)
    assert "/v2/no/such/thing" in document["Message"]
    assert not body.lstrip().startswith(b"<")


def test_malformed_json_body(shared: RunningServer) -> None:
    status, headers, body = raw(shared, "POST", "/v1/apps", b'{"Name": ')
    document = assert_pinpoint_error(status, headers, body, "BadRequestException", 400)
    assert "not valid JSON" in document["Message"]


def test_missing_body(shared: RunningServer) -> None:
    status, headers, body = raw(shared, "POST", "/v1/apps")
    document = assert_pinpoint_error(status, headers, body, "BadRequestException", 400)
    assert "CreateApplicationRequest" in document["Message"]


def test_wrong_type_in_body_names_the_json_path(shared: RunningServer, shared_app: str) -> None:
    status, headers, body = raw(shared, "POST", "/v1/apps", b'{"Name": 5}')
    document = assert_pinpoint_error(status, headers, body, "BadRequestException", 400)
    assert "$.Name" in document["Message"]
    assert "str" in document["Message"]

    nested = json.dumps({"Item": [{"Id": "e", "ChannelType": "EMAIL", "Demographic": {"Locale": 7}}]}).encode()
    status, headers, body = raw(shared, "PUT", f"/v1/apps/{shared_app}/endpoints", nested)
    document = assert_pinpoint_error(status, headers, body, "BadRequestException", 400)
    assert "$.Item[0].Demographic.Locale" in document["Message"]


def test_unknown_enum_value_is_bad_request(shared_client: Any, shared_app: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        shared_client.update_endpoint(
            ApplicationId=shared_app, EndpointId="e", EndpointRequest={"ChannelType": "PIGEON", "Address": "x"}
        )
    assert "ChannelType" in client_error(excinfo, "BadRequestException")


# --------------------------------------------------------------------------------------------------------------
# GetApps paging


def test_get_apps_paging(client: Any) -> None:
    created = {new_app(client, f"page {i}") for i in range(5)}
    seen: list[str] = []
    pages = 0
    token = None
    while True:
        kwargs = {"PageSize": "2", **({"Token": token} if token else {})}
        page = client.get_apps(**kwargs)["ApplicationsResponse"]
        pages += 1
        assert len(page["Item"]) <= 2
        seen += [item["Id"] for item in page["Item"]]
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 10, "paging does not end"
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == created

    everything = client.get_apps()["ApplicationsResponse"]
    assert {item["Id"] for item in everything["Item"]} == created
    assert "NextToken" not in everything


def test_get_apps_paging_errors(shared_client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        shared_client.get_apps(Token="not-a-token!")
    assert "token" in client_error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        shared_client.get_apps(PageSize="abc")
    assert "PageSize" in client_error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        shared_client.get_apps(PageSize="0")
    assert "PageSize" in client_error(excinfo, "BadRequestException")


# --------------------------------------------------------------------------------------------------------------
# Router (no server)

ODD_VALUES = ["plain", "a/b", "with space", "%2F", "100%", "a+b:c=d", "日本語é", "a%20b", "~tilde.-_"]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_router_matches_every_operation_uri(value: str) -> None:
    """Serialise each operation with botocore itself (so the path is exactly what goes on the wire) and route it."""
    router = Router()
    for name in MODEL.operation_names:
        op_model = MODEL.operation_model(name)
        params = minimal(op_model.input_shape, "", "app") if op_model.input_shape else {}
        labels = {
            member: value
            for member, shape in (op_model.input_shape.members.items() if op_model.input_shape else [])
            if shape.serialization.get("location") == "uri"
        }
        params.update(labels)
        wire = create_serializer("rest-json").serialize_to_request(params, op_model)
        operation, values = router.match(wire["method"], wire["url_path"])
        assert operation.name == name, (name, wire["url_path"])
        assert values == labels, name


def test_router_template_paths() -> None:
    router = Router()
    operation, values = router.match("GET", "/v1/templates/my%2Fname/email")
    assert (operation.name, values) == ("GetEmailTemplate", {"TemplateName": "my/name"})
    operation, values = router.match("GET", "/v1/templates/welcome/EMAIL/versions")
    assert operation.name == "ListTemplateVersions"
    assert values == {"TemplateName": "welcome", "TemplateType": "EMAIL"}
    operation, values = router.match("GET", "/v1/templates/welcome/email/versions")
    assert (operation.name, values["TemplateType"]) == ("ListTemplateVersions", "email")
    operation, values = router.match("PUT", "/v1/templates/email/SMS/active-version")
    assert operation.name == "UpdateTemplateActiveVersion"
    assert values == {"TemplateName": "email", "TemplateType": "SMS"}
    assert router.match("POST", "/v1/templates/t/sms")[0].name == "CreateSmsTemplate"
    assert router.match("PUT", "/v1/templates/t/sms")[0].name == "UpdateSmsTemplate"
    assert router.match("DELETE", "/v1/templates/t/inapp")[0].name == "DeleteInAppTemplate"
    assert router.match("GET", "/v1/templates")[0].name == "ListTemplates"


def test_router_literal_beats_parameter_and_trailing_slash() -> None:
    router = Router()
    assert router.match("GET", "/v1/apps/a1/settings")[0].name == "GetApplicationSettings"
    assert router.match("GET", "/v1/apps/a1/channels/email")[0].name == "GetEmailChannel"
    assert router.match("GET", "/v1/apps/a1/")[0].name == "GetApp"


def test_router_refusals() -> None:
    router = Router()
    with pytest.raises(MethodNotAllowed) as not_allowed:
        router.match("PATCH", "/v1/apps/a1")
    assert "DELETE, GET" in not_allowed.value.message
    with pytest.raises(NotFound):
        router.match("GET", "/v1/nothing/here")
    with pytest.raises(NotFound):
        router.match("GET", "/v1/apps//endpoints/e1")  # an empty id is no id


# --------------------------------------------------------------------------------------------------------------
# Health, metrics, OpenAPI


def http_get(server: RunningServer, path: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(server.url + path, timeout=10) as response:
        return response.status, response.headers.get("content-type", ""), response.read()


def metric_samples(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    _, content_type, body = http_get(server, "/metrics")
    assert content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_health(shared: RunningServer, request: pytest.FixtureRequest) -> None:
    status, content_type, body = http_get(shared, "/health")
    document = json.loads(body)
    assert status == 200
    assert content_type == "application/json"
    assert document["status"] == "ok"
    assert document["store"] == {"sqlite": "sqlite", "postgres": "postgresql"}[request.node.callspec.params["shared"]]


def test_metrics_count_requests_and_ingestion(shared: RunningServer, shared_client: Any, shared_app: str) -> None:
    shared_client.get_app(ApplicationId=shared_app)
    with pytest.raises(ClientError):
        shared_client.get_app(ApplicationId="missing")
    before = metric_samples(shared)
    assert before[("clarion_requests_total", (("operation", "GetApp"), ("status", "200")))] >= 1
    assert before[("clarion_requests_total", (("operation", "GetApp"), ("status", "404")))] >= 1

    now = datetime.now(UTC).isoformat()
    events = {
        "BatchItem": {
            "m1": {"Endpoint": {}, "Events": {f"ev{i}": {"EventType": "t", "Timestamp": now} for i in range(3)}}
        }
    }
    shared_client.put_events(ApplicationId=shared_app, EventsRequest=events)
    items = [{"Id": f"m{i}", "ChannelType": "EMAIL", "Address": f"m{i}@example.com"} for i in range(4)]
    shared_client.update_endpoints_batch(ApplicationId=shared_app, EndpointBatchRequest={"Item": items})
    after = metric_samples(shared)

    assert after[("clarion_events_ingested_total", ())] - before.get(("clarion_events_ingested_total", ()), 0) == 3
    grown = after[("clarion_endpoints_ingested_total", ())] - before.get(("clarion_endpoints_ingested_total", ()), 0)
    assert grown == 4
    put_events = ("clarion_requests_total", (("operation", "PutEvents"), ("status", "202")))
    assert after[put_events] - before.get(put_events, 0) == 1
    assert ("clarion_request_seconds_count", (("operation", "GetApp"),)) in after


def test_metrics_describe_the_process(shared: RunningServer) -> None:
    samples = {name for name, _ in metric_samples(shared)}
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "python_info"):
        assert name in samples, name
    assert "python_gc_collections_total" in samples


def test_openapi_document(shared: RunningServer) -> None:
    status, content_type, body = http_get(shared, "/openapi.json")
    assert status == 200
    assert content_type == "application/json"
    document = json.loads(body)
    assert document["openapi"].startswith("3.1")
    operations = [op for item in document["paths"].values() for op in item.values()]
    operation_ids = [op["operationId"] for op in operations if not op.get("x-clarion-extension")]
    assert len(operation_ids) == len(set(operation_ids)) == 122
    assert {op["operationId"] for op in operations if op.get("x-clarion-extension")} == set(EXTENSION_OPERATIONS)
    assert set(operation_ids) == set(OPERATIONS)
    schemas = document["components"]["schemas"]
    assert "EndpointBatchRequest" in schemas
    assert "Item" in schemas["EndpointBatchRequest"]["properties"]
    put = document["paths"]["/v1/apps/{application-id}/endpoints"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/EndpointBatchRequest")
    assert "202" in put["responses"]
    for name, op in OPERATIONS.items():
        status = document["paths"][op.uri][op.method.lower()].get("x-clarion-status")
        assert status == (None if name in HANDLERS else "not-built"), name
    assert document == json.loads(json.dumps(openapi_document(__version__)))


def test_openapi_document_is_valid() -> None:
    """Checked once, without a server: the served document is this one (test_openapi_document)."""
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(json.loads(json.dumps(openapi_document(__version__))))


# --------------------------------------------------------------------------------------------------------------
# Projects


def test_project_lifecycle(shared_client: Any) -> None:
    client = shared_client
    created = client.create_app(CreateApplicationRequest={"Name": "lifecycle", "tags": {"env": "test"}})
    app = created["ApplicationResponse"]
    assert len(app["Id"]) == 32
    assert app["Arn"] == app_arn(app["Id"])
    assert app["tags"] == {"env": "test"}
    assert app["CreationDate"].endswith("Z")

    fetched = client.get_app(ApplicationId=app["Id"])["ApplicationResponse"]
    assert fetched == app
    listed = client.get_apps(PageSize="1000")["ApplicationsResponse"]["Item"]
    assert app in listed

    deleted = client.delete_app(ApplicationId=app["Id"])["ApplicationResponse"]
    assert deleted["Id"] == app["Id"]
    with pytest.raises(client.exceptions.NotFoundException) as excinfo:
        client.get_app(ApplicationId=app["Id"])
    assert app["Id"] in client_error(excinfo, "NotFoundException")
    with pytest.raises(client.exceptions.NotFoundException):
        client.delete_app(ApplicationId=app["Id"])
    assert app["Id"] not in {a["Id"] for a in client.get_apps(PageSize="1000")["ApplicationsResponse"]["Item"]}


def test_blank_project_name_is_refused(shared_client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        shared_client.create_app(CreateApplicationRequest={"Name": "  "})
    assert "Name" in client_error(excinfo, "BadRequestException")


def test_arns_carry_the_signed_region(shared: RunningServer, shared_app: str) -> None:
    for region in ("eu-west-1", "ap-northeast-2"):
        client = shared.client(region=region)
        app = client.get_app(ApplicationId=shared_app)["ApplicationResponse"]
        assert app["Arn"] == app_arn(shared_app, region)
        assert "tags" in client.list_tags_for_resource(ResourceArn=app["Arn"])["TagsModel"]
    seoul = shared.client(region="ap-northeast-2")
    created = seoul.create_app(CreateApplicationRequest={"Name": "seoul"})["ApplicationResponse"]
    assert created["Arn"].startswith("arn:aws:mobiletargeting:ap-northeast-2:")


def test_tags_round_trip(shared: RunningServer, shared_client: Any) -> None:
    client = shared_client
    app_id = new_app(client, "tagged", tags={"a": "1"})
    arn = app_arn(app_id)
    client.tag_resource(ResourceArn=arn, TagsModel={"tags": {"b": "2", "a": "one"}})
    assert client.list_tags_for_resource(ResourceArn=arn)["TagsModel"]["tags"] == {"a": "one", "b": "2"}
    # tags hold whichever region the ARN names
    other = shared.client(region="ap-northeast-2")
    assert other.list_tags_for_resource(ResourceArn=app_arn(app_id, "ap-northeast-2"))["TagsModel"]["tags"] == {
        "a": "one",
        "b": "2",
    }
    client.untag_resource(ResourceArn=arn, TagKeys=["a", "never-there"])
    assert client.list_tags_for_resource(ResourceArn=arn)["TagsModel"]["tags"] == {"b": "2"}
    assert client.get_app(ApplicationId=app_id)["ApplicationResponse"]["tags"] == {"b": "2"}


def test_tag_limits(shared_client: Any, shared_app: str) -> None:
    client = shared_client
    too_many = {f"k{i}": "v" for i in range(51)}
    with pytest.raises(ClientError) as excinfo:
        client.create_app(CreateApplicationRequest={"Name": "t", "tags": too_many})
    assert "50" in client_error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(ResourceArn=app_arn(shared_app), TagsModel={"tags": {"aws:owner": "me"}})
    assert "aws:" in client_error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(ResourceArn=app_arn(shared_app), TagsModel={"tags": {"k" * 129: "v"}})
    assert "128" in client_error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(ResourceArn=app_arn(shared_app), TagsModel={"tags": {"k": "v" * 257}})
    assert "256" in client_error(excinfo, "BadRequestException")

    full = new_app(client, "full", tags={f"k{i}": "v" for i in range(50)})
    client.tag_resource(ResourceArn=app_arn(full), TagsModel={"tags": {"k0": "replaced"}})  # still 50
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(ResourceArn=app_arn(full), TagsModel={"tags": {"k50": "v"}})
    assert "50" in client_error(excinfo, "BadRequestException")
    tags = client.list_tags_for_resource(ResourceArn=app_arn(full))["TagsModel"]["tags"]
    assert len(tags) == 50
    assert tags["k0"] == "replaced"


def test_tags_on_unknown_or_malformed_arns(shared_client: Any) -> None:
    client = shared_client
    with pytest.raises(ClientError) as excinfo:
        client.list_tags_for_resource(ResourceArn=app_arn("0" * 32))
    assert "0" * 32 in client_error(excinfo, "NotFoundException")
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(ResourceArn=app_arn("0" * 32), TagsModel={"tags": {"a": "b"}})
    client_error(excinfo, "NotFoundException")
    for arn in ("not-an-arn", "arn:aws:s3:::bucket", f"arn:aws:mobiletargeting:{REGION}:{ACCOUNT}:widgets/1"):
        with pytest.raises(ClientError) as excinfo:
            client.list_tags_for_resource(ResourceArn=arn)
        assert arn in client_error(excinfo, "BadRequestException")


# --------------------------------------------------------------------------------------------------------------
# Application settings

SETTINGS = {
    "CampaignHook": {"LambdaFunctionName": "arn:aws:lambda:eu-west-1:000000000000:function:hook", "Mode": "FILTER"},
    "Limits": {"Daily": 5, "MaximumDuration": 120, "MessagesPerSecond": 50, "Total": 20, "Session": 3},
    "QuietTime": {"Start": "22:00", "End": "07:30"},
    "JourneyLimits": {"DailyCap": 3, "TimeframeCap": {"Cap": 10, "Days": 7}, "TotalCap": 30},
}


def test_application_settings_store_and_echo(shared_client: Any) -> None:
    client = shared_client
    app_id = new_app(client, "settings")
    empty = client.get_application_settings(ApplicationId=app_id)["ApplicationSettingsResource"]
    assert empty["ApplicationId"] == app_id

    written = client.update_application_settings(
        ApplicationId=app_id, WriteApplicationSettingsRequest={**SETTINGS, "CloudWatchMetricsEnabled": True}
    )["ApplicationSettingsResource"]
    read = client.get_application_settings(ApplicationId=app_id)["ApplicationSettingsResource"]
    for resource in (written, read):
        assert resource["ApplicationId"] == app_id
        assert resource["LastModifiedDate"]
        for member, value in SETTINGS.items():
            assert resource[member] == value, member

    # a member left out keeps its stored value; a member given replaces it
    client.update_application_settings(
        ApplicationId=app_id, WriteApplicationSettingsRequest={"QuietTime": {"Start": "23:00", "End": "06:00"}}
    )
    read = client.get_application_settings(ApplicationId=app_id)["ApplicationSettingsResource"]
    assert read["QuietTime"] == {"Start": "23:00", "End": "06:00"}
    assert read["Limits"] == SETTINGS["Limits"]

    with pytest.raises(client.exceptions.NotFoundException):
        client.get_application_settings(ApplicationId="0" * 32)


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"QuietTime": {"Start": "25:00", "End": "07:00"}}, "QuietTime.Start"),
        ({"QuietTime": {"Start": "22:00", "End": "7pm"}}, "QuietTime.End"),
        ({"Limits": {"Daily": 101}}, "Limits.Daily"),
        ({"Limits": {"MessagesPerSecond": 0}}, "Limits.MessagesPerSecond"),
        ({"Limits": {"MaximumDuration": 59}}, "Limits.MaximumDuration"),
        ({"JourneyLimits": {"TimeframeCap": {"Cap": 1, "Days": 31}}}, "JourneyLimits.TimeframeCap.Days"),
    ],
)
def test_invalid_application_settings(shared_client: Any, shared_app: str, request_body: dict, field: str) -> None:
    before = shared_client.get_application_settings(ApplicationId=shared_app)["ApplicationSettingsResource"]
    with pytest.raises(ClientError) as excinfo:
        shared_client.update_application_settings(
            ApplicationId=shared_app, WriteApplicationSettingsRequest=request_body
        )
    assert field in client_error(excinfo, "BadRequestException")
    after = shared_client.get_application_settings(ApplicationId=shared_app)["ApplicationSettingsResource"]
    assert after == before


def test_project_limit(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clarion.projects.service, "MAX_PROJECTS", 3)
    ids = [new_app(client, f"p{i}") for i in range(3)]
    with pytest.raises(ClientError) as excinfo:
        new_app(client, "one too many")
    assert "3 projects" in client_error(excinfo, "BadRequestException")
    assert len(client.get_apps()["ApplicationsResponse"]["Item"]) == 3
    client.delete_app(ApplicationId=ids[0])
    new_app(client, "room again")
