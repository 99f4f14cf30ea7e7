"""Import and export jobs through boto3 against a real server, on SQLite and PostgreSQL.

Sources and destinations are real: files under the allowed folders, a local HTTP server, and moto's S3 server
(a real S3-compatible HTTP service) for s3:// URLs.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.server
import io
import json
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import RunningServer, free_port
from pinpoint_calls import ROLE, export_job, folder_of, import_job, wait_job

from clarion.clock import FixedClock
from clarion.config import Settings
from clarion.jobs.config import JobSettings, S3Settings
from clarion.jobs.s3 import S3Client
from clarion.outbound.config import OutboundSettings
from clarion.queue.config import QueueSettings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

ROUND_TRIP_ENDPOINTS = 20_000  # two export parts; bench/imports.py weighs a million rows
HEADER = [
    "Id",
    "ChannelType",
    "Address",
    "Location.Country",
    "Demographic.Platform",
    "User.UserId",
    "User.UserAttributes.FirstName",
    "Attributes.Interest",
    "Attributes.Interest",
    "Metrics.score",
]


def endpoint_rows(count: int) -> Iterator[list[str]]:
    for n in range(count):
        email = n % 3 != 0
        yield [
            f"ep-{n:06d}",
            "EMAIL" if email else "SMS",
            f"user{n}@example.com" if email else f"+1206{n:07d}",
            ["US", "DE", "FR"][n % 3],
            "ios" if n % 2 else "android",
            f"user-{n // 5}",
            f"Name{n // 5}",
            "music",
            f"topic-{n % 7}",
            str(n % 100),
        ]


def write_csv(path: Path, header: list[str], rows: Iterator[list[str]] | list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def read_export(folder: Path) -> list[dict[str, Any]]:
    parts = sorted(folder.rglob("part-*.gz"))
    return [json.loads(line) for part in parts for line in gzip.decompress(part.read_bytes()).splitlines()]


def expected_endpoint(row: list[str]) -> dict[str, Any]:
    return {
        "Id": row[0],
        "ChannelType": row[1],
        "Address": row[2],
        "Location": {"Country": row[3]},
        "Demographic": {"Platform": row[4]},
        "User": {"UserId": row[5], "UserAttributes": {"FirstName": [row[6]]}},
        "Attributes": {"Interest": [row[7], row[8]]},
        "Metrics": {"score": float(row[9])},
    }


def test_csv_round_trip_through_import_and_export(server: RunningServer, client: Any, app_id: str) -> None:
    """20k endpoints: CSV in, gzip'd JSON lines out (two parts), every field as the file had it."""
    imports = folder_of(server.settings, app_id)
    write_csv(imports / "endpoints.csv", HEADER, endpoint_rows(ROUND_TRIP_ENDPOINTS))
    created = import_job(client, app_id, (imports / "endpoints.csv").as_uri(), DefineSegment=True, SegmentName="all")
    job = wait_job(client, app_id, created["Id"])
    assert job["JobStatus"] == "COMPLETED", job["Failures"]
    assert (job["TotalProcessed"], job["TotalFailures"], job["Failures"]) == (ROUND_TRIP_ENDPOINTS, 0, [])
    assert (job["TotalPieces"], job["CompletedPieces"], job["FailedPieces"]) == (1, 1, 0)
    assert job["CompletionDate"] >= job["CreationDate"]

    segment = client.get_segment(ApplicationId=app_id, SegmentId=job["Definition"]["SegmentId"])["SegmentResponse"]
    assert segment["SegmentType"] == "IMPORT" and segment["Name"] == "all"
    definition = segment["ImportDefinition"]
    assert definition["Size"] == ROUND_TRIP_ENDPOINTS
    sms = len(range(0, ROUND_TRIP_ENDPOINTS, 3))
    assert definition["ChannelCounts"] == {"SMS": sms, "EMAIL": ROUND_TRIP_ENDPOINTS - sms}
    assert (definition["Format"], definition["S3Url"], definition["RoleArn"]) == (
        "CSV",
        created["Definition"]["S3Url"],
        ROLE,
    )

    exports = folder_of(server.settings, app_id, "exports")
    export = wait_job(client, app_id, export_job(client, app_id, exports.as_uri())["Id"], "export")
    assert export["JobStatus"] == "COMPLETED"
    assert export["TotalProcessed"] == ROUND_TRIP_ENDPOINTS
    assert export["TotalPieces"] == export["CompletedPieces"] == ROUND_TRIP_ENDPOINTS // 10_000
    exported = read_export(exports / export["Id"])
    assert len(exported) == ROUND_TRIP_ENDPOINTS
    for row, line in zip(endpoint_rows(ROUND_TRIP_ENDPOINTS), exported, strict=True):
        assert {key: line[key] for key in expected_endpoint(row)} == expected_endpoint(row)
        assert line["ApplicationId"] == app_id and line["EndpointStatus"] == "ACTIVE"


def test_bad_rows_fail_alone_with_file_and_line(server: RunningServer, client: Any, app_id: str) -> None:
    client.update_endpoint(
        ApplicationId=app_id, EndpointId="known", EndpointRequest={"ChannelType": "EMAIL", "Address": "k@example.com"}
    )
    folder = folder_of(server.settings, app_id) / "mixed"
    header = ["Id", "ChannelType", "Address", "Metrics.score", "Attributes.team"]
    write_csv(
        folder / "a.csv",
        header,
        [
            ["good-1", "EMAIL", "g1@example.com", "1", "red"],
            ["short", "EMAIL"],  # wrong number of columns
            ["no-address", "", "", "", "blue"],  # a new endpoint without Address/ChannelType
            ["bad-email", "EMAIL", "not-an-address", "", ""],
            ["bad-metric", "EMAIL", "m@example.com", "lots", ""],
            ["known", "", "", "5", "green"],  # an update of an existing endpoint needs neither
            ["", "SMS", "+12065550100", "", ""],  # no Id: one is made up
        ],
    )
    oversized = {"Id": "huge", "ChannelType": "EMAIL", "Address": "h@example.com"}
    oversized["Attributes"] = {f"a{n}": [f"{n}-{v}-" + "x" * 90 for v in range(50)] for n in range(10)}
    (folder / "b.json").write_text(
        "\n".join(
            [
                json.dumps({"Id": "good-2", "ChannelType": "EMAIL", "Address": "g2@example.com"}),
                "{not json",
                json.dumps(["a", "list"]),
                json.dumps({"Id": "pigeon", "ChannelType": "PIGEON", "Address": "coo"}),
                json.dumps(oversized),
                "",
                json.dumps({"Id": "good-3", "ChannelType": "EMAIL", "Address": "g3@example.com"}),
            ]
        )
        + "\n"
    )
    (folder / "notes.txt").write_text("not read: neither CSV nor JSON\n")

    csv_job = wait_job(client, app_id, import_job(client, app_id, str(folder), "CSV")["Id"])
    assert csv_job["JobStatus"] == "COMPLETED"  # rows failed, no piece did
    assert (csv_job["TotalPieces"], csv_job["TotalProcessed"], csv_job["TotalFailures"]) == (1, 7, 4)
    failures = csv_job["Failures"]
    source = (folder / "a.csv").as_uri()
    assert failures[0] == f"{source} line 3: 2 columns where the header has 5"
    assert failures[1].startswith(f"{source} line 4: endpoint 'no-address' does not exist")
    assert failures[2].startswith(f"{source} line 5: ") and "not an email address" in failures[2]
    assert failures[3] == f"{source} line 6: column 4 is not a number"  # no cell of the file is repeated
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="good-1")["EndpointResponse"]["Metrics"] == {
        "score": 1.0
    }
    known = client.get_endpoint(ApplicationId=app_id, EndpointId="known")["EndpointResponse"]
    assert known["Attributes"] == {"team": ["green"]} and known["Address"] == "k@example.com"
    for missing in ("no-address", "bad-email", "bad-metric"):
        with pytest.raises(ClientError, match="NotFoundException"):
            client.get_endpoint(ApplicationId=app_id, EndpointId=missing)

    json_job = wait_job(client, app_id, import_job(client, app_id, folder.as_uri(), "JSON")["Id"])
    assert (json_job["JobStatus"], json_job["TotalProcessed"], json_job["TotalFailures"]) == ("COMPLETED", 6, 4)
    source = (folder / "b.json").as_uri()
    reasons = json_job["Failures"]
    assert reasons[0].startswith(f"{source} line 2: not JSON")
    assert reasons[1] == f"{source} line 3: each line must hold one JSON object"
    assert reasons[2].startswith(f"{source} line 4: ") and "PIGEON" in reasons[2]
    assert reasons[3].startswith(f"{source} line 5: Endpoint 'huge' would be") and "at most 15360" in reasons[3]
    for present in ("good-2", "good-3"):
        assert client.get_endpoint(ApplicationId=app_id, EndpointId=present)["EndpointResponse"]["Id"] == present


def test_a_bad_file_fails_its_piece_and_the_job_but_not_the_other_files(
    server: RunningServer, client: Any, app_id: str
) -> None:
    folder = folder_of(server.settings, app_id) / "three"
    write_csv(folder / "good.csv", ["Id", "ChannelType", "Address"], [["ok", "EMAIL", "ok@example.com"]])
    write_csv(folder / "sub" / "bad.csv", ["Id", "Colour"], [["x", "red"]])
    write_csv(folder / "huge.csv", ["Id", "Attributes.a"], [["first", "fine"], ["h", "x" * (2 << 20)]])
    job = wait_job(client, app_id, import_job(client, app_id, str(folder))["Id"])
    assert (job["JobStatus"], job["TotalPieces"], job["CompletedPieces"], job["FailedPieces"]) == ("FAILED", 3, 1, 2)
    assert sorted(job["Failures"]) == [
        f"{(folder / 'huge.csv').as_uri()}: a line is longer than 1,048,576 bytes",
        f"{(folder / 'sub' / 'bad.csv').as_uri()}: header: column 2 is not an endpoint field "
        "(docs/segments.md lists the paths)",
    ]
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="ok")["EndpointResponse"]["Address"] == "ok@example.com"


def test_locations_are_checked(server: RunningServer, client: Any, app_id: str) -> None:
    imports = folder_of(server.settings, app_id)
    for url in ("/etc/passwd", "file:///etc/", str(imports / ".." / ".." / "clarion.sqlite3")):
        with pytest.raises(ClientError, match=r"ForbiddenException.*outside this project's folders"):
            import_job(client, app_id, url)
    with pytest.raises(ClientError, match=r"BadRequestException.*must be an s3://"):
        import_job(client, app_id, "ftp://example.com/a.csv")
    with pytest.raises(ClientError, match=r"BadRequestException.*absolute path"):
        import_job(client, app_id, "relative/a.csv")
    with pytest.raises(ClientError, match="outside this project's folders"):
        export_job(client, app_id, str(imports))
    with pytest.raises(ClientError, match="SegmentName is required"):
        import_job(client, app_id, str(imports), DefineSegment=True)
    missing = wait_job(client, app_id, import_job(client, app_id, str(imports / "no.csv"))["Id"])
    assert missing["JobStatus"] == "FAILED" and "does not exist" in missing["Failures"][0]
    with pytest.raises(ClientError, match="NotFoundException"):
        client.get_import_job(ApplicationId=app_id, JobId="nope")
    with pytest.raises(ClientError, match="NotFoundException"):
        client.get_export_job(ApplicationId=app_id, JobId=missing["Id"])  # an import job is not an export job


def test_job_lists_newest_first_and_by_segment(server: RunningServer, client: Any, app_id: str) -> None:
    imports = folder_of(server.settings, app_id)
    write_csv(imports / "few.csv", ["Id", "ChannelType", "Address"], [["a", "EMAIL", "a@example.com"]])
    plain = [import_job(client, app_id, str(imports / "few.csv"))["Id"] for _ in range(3)]
    defining = import_job(client, app_id, str(imports / "few.csv"), DefineSegment=True, SegmentName="few")
    segment_id = defining["Definition"]["SegmentId"]
    first = client.get_import_jobs(ApplicationId=app_id, PageSize="2")["ImportJobsResponse"]
    rest = client.get_import_jobs(ApplicationId=app_id, PageSize="2", Token=first["NextToken"])["ImportJobsResponse"]
    assert [j["Id"] for j in first["Item"] + rest["Item"]] == [defining["Id"], *reversed(plain)]
    assert "NextToken" not in rest
    by_segment = client.get_segment_import_jobs(ApplicationId=app_id, SegmentId=segment_id)["ImportJobsResponse"]
    assert [j["Id"] for j in by_segment["Item"]] == [defining["Id"]]
    wait_job(client, app_id, defining["Id"])

    # SegmentId: the same imported segment, new members, a new version.
    write_csv(imports / "other.csv", ["Id", "ChannelType", "Address"], [["b", "EMAIL", "b@example.com"]] * 2)
    again = wait_job(client, app_id, import_job(client, app_id, str(imports / "other.csv"), SegmentId=segment_id)["Id"])
    segment = client.get_segment(ApplicationId=app_id, SegmentId=segment_id)["SegmentResponse"]
    assert (segment["Version"], segment["ImportDefinition"]["Size"], again["TotalProcessed"]) == (2, 1, 2)

    exports = folder_of(server.settings, app_id, "exports")
    export = wait_job(client, app_id, export_job(client, app_id, str(exports), SegmentId=segment_id)["Id"], "export")
    assert [line["Id"] for line in read_export(exports / export["Id"])] == ["b"]  # the segment's members only
    listed = client.get_segment_export_jobs(ApplicationId=app_id, SegmentId=segment_id)["ExportJobsResponse"]
    assert [j["Id"] for j in listed["Item"]] == [export["Id"]]
    assert client.get_export_jobs(ApplicationId=app_id)["ExportJobsResponse"]["Item"][0]["Id"] == export["Id"]

    client.delete_segment(ApplicationId=app_id, SegmentId=segment_id)
    with pytest.raises(ClientError, match="NotFoundException"):
        client.get_segment_import_jobs(ApplicationId=app_id, SegmentId=segment_id)


def test_a_user_id_file_defines_a_segment_of_their_endpoints(server: RunningServer, client: Any, app_id: str) -> None:
    for n, user in enumerate(["u1", "u1", "u2", "u3"]):
        client.update_endpoint(
            ApplicationId=app_id,
            EndpointId=f"e{n}",
            EndpointRequest={"ChannelType": "EMAIL", "Address": f"e{n}@example.com", "User": {"UserId": user}},
        )
    path = folder_of(server.settings, app_id) / "users.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"User": {"UserId": "u1"}}\n{"User": {"UserId": "u3"}}\n')
    job = import_job(client, app_id, str(path), "JSON", DefineSegment=True, SegmentName="vip")
    done = wait_job(client, app_id, job["Id"])
    assert (done["JobStatus"], done["TotalProcessed"], done["TotalFailures"]) == ("COMPLETED", 2, 0)
    segment = client.get_segment(ApplicationId=app_id, SegmentId=job["Definition"]["SegmentId"])["SegmentResponse"]
    assert segment["ImportDefinition"]["Size"] == 3


def test_an_interrupted_import_resumes_without_counting_twice(settings: Settings) -> None:
    """Stop the server mid-job; a server without workers shows the committed progress; a third one finishes."""
    rows = 12_000  # 60 batches: the server stops within a batch or two of the 400th row
    small_batches = settings.model_copy(update={"jobs": JobSettings(import_batch_rows=200)})
    first = RunningServer(small_batches).start()
    try:
        client = first.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "resume"})["ApplicationResponse"]["Id"]
        write_csv(folder_of(settings, app_id) / "big.csv", HEADER, endpoint_rows(rows))
        job_id = import_job(client, app_id, str(folder_of(settings, app_id)), DefineSegment=True, SegmentName="s")["Id"]
        deadline = time.monotonic() + 60
        while client.get_import_job(ApplicationId=app_id, JobId=job_id)["ImportJobResponse"]["TotalProcessed"] < 400:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        first.stop()

    idle = RunningServer(small_batches.model_copy(update={"queue": QueueSettings(workers=0)})).start()
    try:
        paused = idle.client().get_import_job(ApplicationId=app_id, JobId=job_id)["ImportJobResponse"]
    finally:
        idle.stop()
    assert paused["JobStatus"] == "PROCESSING"
    assert 0 < paused["TotalProcessed"] < rows and paused["TotalProcessed"] % 200 == 0

    last = RunningServer(small_batches).start()
    try:
        client = last.client()
        done = wait_job(client, app_id, job_id)
        assert (done["JobStatus"], done["TotalProcessed"], done["TotalFailures"]) == ("COMPLETED", rows, 0)
        assert (done["TotalPieces"], done["CompletedPieces"]) == (1, 1)
        assert last.project_row_counts(app_id)["endpoints"] == rows
        segment_id = done["Definition"]["SegmentId"]
        size = client.get_segment(ApplicationId=app_id, SegmentId=segment_id)["SegmentResponse"]["ImportDefinition"]
        assert size["Size"] == rows
    finally:
        last.stop()


def test_s3_prefix_import_and_export(settings: Settings, s3_url: str) -> None:
    s3_settings = S3Settings(
        endpoint_url=s3_url, region="us-east-1", access_key_id="AKIDS3", secret_access_key="s3/secret"
    )
    bucket = f"b{free_port()}"
    s3 = boto3.client(
        "s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="AKIDS3", aws_secret_access_key="x"
    )
    s3.create_bucket(Bucket=bucket)
    server = RunningServer(
        settings.model_copy(update={"jobs": JobSettings(s3=s3_settings, export_part_rows=1000)})
    ).start()
    try:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "s3"})["ApplicationResponse"]["Id"]
        for name, rows in (("in/one.csv", range(0, 1500)), ("in/deeper/two + more.csv", range(1500, 2500))):
            body = io.StringIO()
            writer = csv.writer(body, lineterminator="\n")
            writer.writerow(["Id", "ChannelType", "Address"])
            writer.writerows([f"s{n}", "EMAIL", f"s{n}@example.com"] for n in rows)
            s3.put_object(Bucket=bucket, Key=f"{app_id}/{name}", Body=body.getvalue().encode())
        s3.put_object(Bucket=bucket, Key=f"{app_id}/in/readme.md", Body=b"# not an import file")
        job = wait_job(client, app_id, import_job(client, app_id, f"s3://{bucket}/{app_id}/in/")["Id"])
        assert (job["JobStatus"], job["TotalPieces"], job["TotalProcessed"], job["TotalFailures"]) == (
            "COMPLETED",
            2,
            2500,
            0,
        )
        out = f"s3://{bucket}/{app_id}/out"
        export = wait_job(client, app_id, export_job(client, app_id, out)["Id"], "export")
        assert (export["JobStatus"], export["TotalPieces"], export["TotalProcessed"]) == ("COMPLETED", 3, 2500)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{app_id}/out/")["Contents"]]
        assert keys == [f"{app_id}/out/{export['Id']}/part-{n:05d}.gz" for n in range(3)]
        ids = set()
        for key in keys:
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            ids |= {json.loads(line)["Id"] for line in body.splitlines()}
        assert ids == {f"s{n}" for n in range(2500)}

        missing = wait_job(client, app_id, import_job(client, app_id, f"s3://{bucket}/{app_id}/nothing/")["Id"])
        assert missing["JobStatus"] == "FAILED" and "holds no CSV files" in missing["Failures"][0]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("method", "key", "query", "body"),
    [
        ("GET", "in/two + more.csv", {}, b""),
        ("GET", "", {"list-type": "2", "prefix": "in/x y", "continuation-token": "a+b/c=="}, b""),
        ("PUT", "out/a~b(1)/part-00000.gz", {}, b"gzip bytes"),
    ],
)
def test_s3_requests_are_signed_as_botocore_signs_them(
    method: str, key: str, query: dict[str, str], body: bytes
) -> None:
    """Differential check against botocore's S3 signer: keys are encoded once, as S3 (unlike other services) wants."""
    moment = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    settings = S3Settings(endpoint_url="http://127.0.0.1:9000", access_key_id="AKIDS3", secret_access_key="s3/sec+ret")
    client = S3Client(settings, session=None, clock=FixedClock(moment), timeout=60)  # type: ignore[arg-type]
    url, headers = client._request_args(method, "bucket", key, query, body)
    request = AWSRequest(
        method=method, url=str(url), headers={k: v for k, v in headers.items() if k != "Authorization"}, data=body
    )
    request.context["timestamp"] = moment.strftime("%Y%m%dT%H%M%SZ")
    signer = S3SigV4Auth(Credentials("AKIDS3", "s3/sec+ret"), "s3", "us-east-1")
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    assert headers["Authorization"].endswith(f"Signature={expected}")
    assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_web_server(migrated_settings: Settings) -> Iterator[RunningServer]:
    """A server whose operator allows tenant URLs to reach 127.0.0.1, where this module's file server runs (the
    documented way to reach a local service: outbound.allow_networks)."""
    allowed = migrated_settings.model_copy(update={"outbound": OutboundSettings(allow_networks=["127.0.0.0/8"])})
    running = RunningServer(allowed).start()
    try:
        yield running
    finally:
        running.stop()


def test_http_import_of_an_export_file(local_web_server: RunningServer) -> None:
    """A .gz export, served over HTTP, imports as JSON into another project (Pinpoint exports move straight in)."""
    server = local_web_server
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "source"})["ApplicationResponse"]["Id"]
    imports = folder_of(server.settings, app_id)
    write_csv(imports / "e.csv", HEADER, endpoint_rows(50))
    wait_job(client, app_id, import_job(client, app_id, str(imports / "e.csv"))["Id"])
    exports = folder_of(server.settings, app_id, "exports")
    export = wait_job(client, app_id, export_job(client, app_id, str(exports))["Id"], "export")
    folder = exports / export["Id"]

    handler = lambda *args: _Files(*args, directory=str(folder))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        other = client.create_app(CreateApplicationRequest={"Name": "copy"})["ApplicationResponse"]["Id"]
        url = f"http://127.0.0.1:{httpd.server_address[1]}/part-00000.gz"
        job = wait_job(client, other, import_job(client, other, url, "JSON")["Id"])
        assert (job["JobStatus"], job["TotalProcessed"], job["TotalFailures"]) == ("COMPLETED", 50, 0)
        gone = wait_job(client, other, import_job(client, other, url + ".missing", "JSON")["Id"])
        assert gone["JobStatus"] == "FAILED" and "404" in gone["Failures"][0]
    finally:
        httpd.shutdown()
    original = client.get_endpoint(ApplicationId=app_id, EndpointId="ep-000007")["EndpointResponse"]
    copied = client.get_endpoint(ApplicationId=other, EndpointId="ep-000007")["EndpointResponse"]
    for member in ("ChannelType", "Address", "Attributes", "Metrics", "Location", "Demographic", "User"):
        assert copied[member] == original[member]


def test_an_import_survives_a_killed_server(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL mid-job: the dead worker's lease runs out (2 s here; a real clock, since the server is another
    process) and the restarted server resumes the piece after its last committed batch."""
    from processes import pinpoint, start_server

    rows = 8_000  # 40 batches: SIGKILL comes within a batch of the 400th row
    monkeypatch.setenv("CLARION_QUEUE__VISIBILITY_SECONDS", "2")
    monkeypatch.setenv("CLARION_JOBS__IMPORT_BATCH_ROWS", "200")
    settings.data_dir.mkdir(parents=True)
    log = settings.data_dir / "server.log"
    process = start_server(settings, log)
    try:
        client = pinpoint(settings.port)
        app_id = client.create_app(CreateApplicationRequest={"Name": "killed"})["ApplicationResponse"]["Id"]
        write_csv(folder_of(settings, app_id) / "big.csv", HEADER, endpoint_rows(rows))
        job_id = import_job(client, app_id, str(folder_of(settings, app_id)))["Id"]
        deadline = time.monotonic() + 60
        seen = 0
        while seen < 400:
            assert time.monotonic() < deadline
            time.sleep(0.01)
            seen = client.get_import_job(ApplicationId=app_id, JobId=job_id)["ImportJobResponse"]["TotalProcessed"]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert seen < rows  # killed mid-job
    process = start_server(settings, log)
    try:
        client = pinpoint(settings.port)
        done = wait_job(client, app_id, job_id)
        assert (done["JobStatus"], done["TotalProcessed"], done["TotalFailures"]) == ("COMPLETED", rows, 0)
        exports = folder_of(settings, app_id, "exports")
        export = wait_job(client, app_id, export_job(client, app_id, str(exports))["Id"], "export")
        assert export["TotalProcessed"] == rows
        assert sorted(line["Id"] for line in read_export(exports / export["Id"])) == [
            row[0] for row in endpoint_rows(rows)
        ]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_export_of_a_dimensional_segment_holds_its_members(server: RunningServer, client: Any, app_id: str) -> None:
    imports = folder_of(server.settings, app_id)
    write_csv(imports / "d.csv", HEADER, endpoint_rows(40))
    wait_job(client, app_id, import_job(client, app_id, str(imports / "d.csv"))["Id"])
    segment_id = client.create_segment(
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": "ios", "Dimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}},
    )["SegmentResponse"]["Id"]
    exports = folder_of(server.settings, app_id, "exports")
    job = wait_job(client, app_id, export_job(client, app_id, str(exports), SegmentId=segment_id)["Id"], "export")
    assert (job["JobStatus"], job["TotalProcessed"]) == ("COMPLETED", 20)
    assert [line["Id"] for line in read_export(exports / job["Id"])] == [f"ep-{n:06d}" for n in range(1, 40, 2)]
    with pytest.raises(ClientError, match="NotFoundException"):
        export_job(client, app_id, str(exports), SegmentId=segment_id, SegmentVersion=7)
