"""ClarionGetExportFile on both stores: a file an export job wrote, read back from the project's folder as the
console downloads it; parts that do not exist, other projects' jobs and files too large to hand out are refused."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import RunningServer
from pinpoint_calls import export_job, folder_of, wait_job

from clarion.jobs import service as job_service


def export_file(server: RunningServer, app_id: str, **query: str) -> tuple[int, dict[str, Any]]:
    return server.signed_request("GET", f"/v1/apps/{app_id}/clarion/export-files?{urlencode(query)}", {})


def test_an_export_jobs_files_are_read_back_whole_and_bounded(
    server: RunningServer, client: Any, app_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = [{"Id": f"e{n}", "ChannelType": "EMAIL", "Address": f"e{n}@example.com"} for n in range(3)]
    client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": endpoints})
    folder = folder_of(server.settings, app_id, "exports")
    job = wait_job(client, app_id, export_job(client, app_id, str(folder / "all"))["Id"], "export")
    assert job["JobStatus"] == "COMPLETED" and job["TotalPieces"] == 1

    status, answer = export_file(server, app_id, **{"job-id": job["Id"], "part": "0"})
    assert status == 200, answer
    written = (folder / "all" / job["Id"] / "part-00000.gz").read_bytes()
    content = base64.b64decode(answer["Content"])
    assert content == written and answer["Size"] == len(written)
    assert answer["FileName"] == f"{job['Id']}-part-00000.gz" and (answer["JobId"], answer["Part"]) == (job["Id"], 0)
    assert sorted(json.loads(line)["Id"] for line in gzip.decompress(content).splitlines()) == ["e0", "e1", "e2"]

    status, refused = export_file(server, app_id, **{"job-id": job["Id"], "part": "1"})
    assert status == 404 and "wrote 1 file" in refused["Message"]
    status, refused = export_file(server, app_id, **{"job-id": job["Id"], "part": "-1"})
    assert status == 400 and "part must be" in refused["Message"]
    status, refused = export_file(server, app_id, part="0")
    assert status == 400 and "job-id is required" in refused["Message"]
    other = client.create_app(CreateApplicationRequest={"Name": "other"})["ApplicationResponse"]["Id"]
    assert export_file(server, other, **{"job-id": job["Id"], "part": "0"})[0] == 404

    monkeypatch.setattr(job_service, "EXPORT_FILE_BYTES", len(written) - 1)
    status, refused = export_file(server, app_id, **{"job-id": job["Id"], "part": "0"})
    assert status == 413 and "larger than" in refused["Message"]
