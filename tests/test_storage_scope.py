"""External storage is scoped per project: a project's jobs read and write only its own S3 prefix and folders.

S3 is moto's S3 server (a real S3-compatible HTTP service); keys limited to one project are loaded by restarting
the server on the same store, as an operator adds keys.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import ADMIN, RunningServer, free_port
from pinpoint_calls import export_job, folder_of, import_job, wait_job
from pydantic import ValidationError

from clarion.config import AccessKey, Settings
from clarion.jobs.config import JobSettings, S3Settings
from clarion.jobs.scope import BadLocation, OutsideScope, StorageScope
from clarion.queue.config import QueueSettings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

APP_A, APP_B = "a" * 32, "b" * 32


def s3_client(s3_url: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="AKIDS3", aws_secret_access_key="x"
    )


def endpoints_csv(prefix: str, count: int) -> bytes:
    body = io.StringIO()
    writer = csv.writer(body, lineterminator="\n")
    writer.writerow(["Id", "ChannelType", "Address", "User.UserId", "User.UserAttributes.Secret"])
    writer.writerows([f"{prefix}{n}", "EMAIL", f"{prefix}{n}@example.com", f"u{n}", "private"] for n in range(count))
    return body.getvalue().encode()


def refused(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def test_a_project_key_reads_and_writes_only_its_own_s3_prefix(settings: Settings, s3_url: str) -> None:
    s3 = s3_client(s3_url)
    bucket = f"shared{free_port()}"
    s3.create_bucket(Bucket=bucket)
    jobs = JobSettings(
        s3=S3Settings(endpoint_url=s3_url, access_key_id="AKIDS3", secret_access_key="s3/secret"), export_part_rows=50
    )
    with RunningServer(settings.model_copy(update={"jobs": jobs})) as first:
        admin = first.client()
        mine, theirs = (
            admin.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
            for name in ("mine", "theirs")
        )
        s3.put_object(Bucket=bucket, Key=f"{theirs}/in/people.csv", Body=endpoints_csv("t", 20))
        job = wait_job(admin, theirs, import_job(admin, theirs, f"s3://{bucket}/{theirs}/in/")["Id"])
        assert job["JobStatus"] == "COMPLETED"
        export = export_job(admin, theirs, f"s3://{bucket}/{theirs}/out")
        assert wait_job(admin, theirs, export["Id"], "export")["JobStatus"] == "COMPLETED"
    theirs_before = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=theirs)["Contents"])

    key = AccessKey(access_key_id="AKIDPROJECTMINE00001", secret_access_key="mine", projects=[mine])
    restarted = settings.model_copy(update={"jobs": jobs, "access_keys": [ADMIN, key], "port": free_port()})
    with RunningServer(restarted) as server:
        client = server.client(key)
        allowed = f"use a location under s3://<any bucket>/{mine}/"
        for url in (
            f"s3://{bucket}/{theirs}/out/",  # their exported endpoints, user attributes included
            f"s3://{bucket}/{theirs}/in/people.csv",
            f"s3://{bucket}/{mine}",  # not a folder of its own: would also match keys that merely start so
            f"s3://{bucket}/{mine}x/in/",
            f"s3://{bucket}/",
        ):
            with pytest.raises(ClientError) as excinfo:
                import_job(client, mine, url)
            code, message = refused(excinfo)
            assert code == "ForbiddenException" and message.endswith(allowed), message
        for prefix in (f"s3://{bucket}/{theirs}/out", f"s3://{bucket}/{theirs}"):
            with pytest.raises(ClientError) as excinfo:
                export_job(client, mine, prefix)
            assert refused(excinfo) == (
                "ForbiddenException",
                f"S3UrlPrefix: {prefix!r} is outside this project's storage; {allowed}",
            )
        with pytest.raises(ClientError) as excinfo:
            import_job(client, mine, f"s3://{bucket}/{mine}/../{theirs}/in/")
        assert refused(excinfo)[0] == "BadRequestException"

        s3.put_object(Bucket=bucket, Key=f"{mine}/in/people.csv", Body=endpoints_csv("m", 30))
        own = wait_job(client, mine, import_job(client, mine, f"s3://{bucket}/{mine}/in/")["Id"])
        assert (own["JobStatus"], own["TotalProcessed"]) == ("COMPLETED", 30)
        written = wait_job(client, mine, export_job(client, mine, f"s3://{bucket}/{mine}/out")["Id"], "export")
        assert written["JobStatus"] == "COMPLETED"
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=theirs)["Contents"]) == theirs_before
    mine_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=mine)["Contents"]]
    assert any(k.startswith(f"{mine}/out/{written['Id']}/part-") for k in mine_keys)


def test_a_job_stored_before_the_scope_narrowed_fails_when_it_runs(settings: Settings, s3_url: str) -> None:
    """The scope is checked again whenever a file is opened, not only when the job is created."""
    s3 = s3_client(s3_url)
    bucket = f"old{free_port()}"
    s3.create_bucket(Bucket=bucket)
    s3_settings = S3Settings(endpoint_url=s3_url, access_key_id="AKIDS3", secret_access_key="s3/secret")
    idle = settings.model_copy(update={"jobs": JobSettings(s3=s3_settings), "queue": QueueSettings(workers=0)})
    with RunningServer(idle) as server:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "p"})["ApplicationResponse"]["Id"]
        s3.put_object(Bucket=bucket, Key=f"{app_id}/in/people.csv", Body=endpoints_csv("p", 5))
        job_id = import_job(client, app_id, f"s3://{bucket}/{app_id}/in/")["Id"]
    narrowed = S3Settings(
        endpoint_url=s3_url,
        access_key_id="AKIDS3",
        secret_access_key="s3/secret",
        project_scope="s3://exchange/tenants/{ApplicationId}/",
    )
    later = settings.model_copy(update={"jobs": JobSettings(s3=narrowed), "port": free_port()})
    with RunningServer(later) as server:
        done = wait_job(server.client(), app_id, job_id)
    assert done["JobStatus"] == "FAILED"
    assert done["Failures"] == [
        f"'s3://{bucket}/{app_id}/in/' is outside this project's storage; "
        f"use a location under s3://exchange/tenants/{app_id}/"
    ]


def test_local_folders_belong_to_one_project(server: RunningServer, client: Any) -> None:
    mine, theirs = (
        client.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
        for name in ("mine", "theirs")
    )
    settings = server.settings
    their_file = folder_of(settings, theirs) / "people.csv"
    their_file.parent.mkdir(parents=True)
    their_file.write_bytes(endpoints_csv("t", 3))
    for url in (str(their_file), their_file.as_uri(), str(folder_of(settings, mine) / ".." / theirs)):
        with pytest.raises(ClientError) as excinfo:
            import_job(client, mine, url)
        code, message = refused(excinfo)
        assert code == "ForbiddenException" and f"{folder_of(settings, mine).resolve()}/" in message
    with pytest.raises(ClientError) as excinfo:
        export_job(client, mine, str(folder_of(settings, theirs, "exports")))
    assert refused(excinfo)[0] == "ForbiddenException"

    # A link in my folder leading into theirs is listed, then refused when opened.
    own = folder_of(settings, mine)
    own.mkdir(parents=True)
    (own / "mine.csv").write_bytes(endpoints_csv("m", 2))
    (own / "theirs.csv").symlink_to(their_file)
    job = wait_job(client, mine, import_job(client, mine, str(own))["Id"])
    assert (job["JobStatus"], job["CompletedPieces"], job["FailedPieces"], job["TotalProcessed"]) == ("FAILED", 1, 1, 2)
    [failure] = job["Failures"]
    assert failure.startswith((own / "theirs.csv").as_uri()) and "is outside this project's folders" in failure
    with pytest.raises(ClientError, match="NotFoundException"):
        client.get_endpoint(ApplicationId=mine, EndpointId="t0")


@pytest.mark.parametrize(
    ("scope", "url", "allowed"),
    [
        ("s3://*/{ApplicationId}/", f"s3://any-bucket/{APP_A}/in/x.csv", True),
        ("s3://*/{ApplicationId}/", f"s3://any-bucket/{APP_B}/in/x.csv", False),
        ("s3://*/{ApplicationId}/", f"s3://any-bucket/{APP_A}", False),
        ("s3://exchange/tenants/{ApplicationId}/", f"s3://exchange/tenants/{APP_A}/", True),
        ("s3://exchange/tenants/{ApplicationId}/", f"s3://other/tenants/{APP_A}/", False),
        ("s3://exchange/tenants/{ApplicationId}/", f"s3://exchange/{APP_A}/", False),
        ("s3://clarion-{ApplicationId}/", f"s3://clarion-{APP_A}/anything/at/all.csv", True),
        ("s3://clarion-{ApplicationId}/", f"s3://clarion-{APP_B}/x.csv", False),
    ],
)
def test_the_operator_chooses_where_each_project_lives(scope: str, url: str, allowed: bool, tmp_path: Path) -> None:
    storage = StorageScope(JobSettings(s3=S3Settings(project_scope=scope)), tmp_path)
    if allowed:
        storage.check(APP_A, url, export=True)
    else:
        with pytest.raises(OutsideScope):
            storage.check(APP_A, url, export=True)


def test_a_scope_must_name_the_project(tmp_path: Path) -> None:
    for scope in (
        "s3://shared/",
        "s3://shared/{ApplicationId}",
        "s3://a*/{ApplicationId}/",
        "http://x/{ApplicationId}/",
    ):
        with pytest.raises(ValidationError):
            S3Settings(project_scope=scope)
    storage = StorageScope(JobSettings(), tmp_path)
    for url in ("s3:///key", f"s3://b/{APP_A}/./x", "relative/path.csv", "ftp://example.com/x"):
        with pytest.raises(BadLocation):
            storage.check(APP_A, url, export=False)
