"""Files uploaded through the console (ClarionUploadImportFile) on both stores: kept in the project's own import
folder, imported by an ordinary import job; bad names, empty files and a project's upload budget are refused."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import RunningServer, running
from pinpoint_calls import import_job, wait_job

from clarion.config import Settings
from clarion.jobs.config import JobSettings

CSV = "Id,ChannelType,Address,User.UserId\na1,EMAIL,a1@example.com,u1\na2,EMAIL,a2@example.com,u2\n"


@pytest.fixture
def server(settings: Settings) -> Iterator[RunningServer]:
    jobs = JobSettings(upload_bytes_per_project=200)
    with running(settings.model_copy(update={"jobs": jobs})) as started:
        yield started


def upload(server: RunningServer, app_id: str, name: str, content: str) -> tuple[int, dict[str, Any]]:
    return server.signed_request(
        "POST", f"/v1/apps/{app_id}/clarion/import-files", {"FileName": name, "Content": content}
    )


def test_an_uploaded_file_is_imported_by_an_import_job(server: RunningServer, client: Any, app_id: str) -> None:
    status, kept = upload(server, app_id, "people.csv", CSV)
    assert status == 201, kept
    folder = server.settings.data_dir / "imports" / app_id / "uploads"
    assert kept["Size"] == len(CSV) and kept["S3Url"].startswith(folder.as_uri() + "/")
    assert kept["S3Url"].endswith("-people.csv")
    created = import_job(client, app_id, kept["S3Url"], DefineSegment=True, SegmentName="uploaded")
    job = wait_job(client, app_id, created["Id"])
    assert (job["JobStatus"], job["TotalProcessed"], job["TotalFailures"]) == ("COMPLETED", 2, 0)
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="a2")["EndpointResponse"]["Address"] == (
        "a2@example.com"
    )


def test_names_empty_files_and_the_upload_budget_are_checked(server: RunningServer, client: Any, app_id: str) -> None:
    for name in ("../escape.csv", "people.xlsx", "people.csv.gz", "a" * 101 + ".csv"):
        status, refused = upload(server, app_id, name, CSV)
        assert status == 400 and "FileName" in refused["Message"], (name, refused)
    status, refused = upload(server, app_id, "blank.csv", "\n")
    assert status == 400 and "empty" in refused["Message"]
    assert upload(server, "nope", "people.csv", CSV)[0] == 404

    assert upload(server, app_id, "first.csv", CSV)[0] == 201  # twice fits in the 200 bytes allowed, not three times
    assert upload(server, app_id, "second.csv", CSV)[0] == 201
    status, refused = upload(server, app_id, "third.csv", CSV)
    assert status == 413 and f"hold {2 * len(CSV)} bytes" in refused["Message"]
    # Uploads older than jobs.upload_days are removed before the budget is counted.
    folder = server.settings.data_dir / "imports" / app_id / "uploads"
    week_ago = time.time() - 8 * 86400
    for path in folder.iterdir():
        os.utime(path, (week_ago, week_ago))
    assert upload(server, app_id, "third.csv", CSV)[0] == 201
    assert len(list(folder.iterdir())) == 1
