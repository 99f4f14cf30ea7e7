"""Import and export jobs as a client makes them (boto3), and where a project's local files go."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from clarion.config import Settings

ROLE = "arn:aws:iam::123456789012:role/import"


def wait_job(client: Any, app_id: str, job_id: str, kind: str = "import", timeout: float = 240) -> dict[str, Any]:
    """Poll the job until it ends (the worker runs on the server's own loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kind == "import":
            job = client.get_import_job(ApplicationId=app_id, JobId=job_id)["ImportJobResponse"]
        else:
            job = client.get_export_job(ApplicationId=app_id, JobId=job_id)["ExportJobResponse"]
        if job["JobStatus"] in ("COMPLETED", "FAILED"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{kind} job {job_id} did not finish: {job}")


def import_job(client: Any, app_id: str, url: str, fmt: str = "CSV", **extra: Any) -> dict[str, Any]:
    response = client.create_import_job(
        ApplicationId=app_id, ImportJobRequest={"S3Url": url, "RoleArn": ROLE, "Format": fmt, **extra}
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    job = response["ImportJobResponse"]
    assert job["JobStatus"] == "CREATED" and job["Type"] == "IMPORT"
    return job


def export_job(client: Any, app_id: str, prefix: str, **extra: Any) -> dict[str, Any]:
    response = client.create_export_job(
        ApplicationId=app_id, ExportJobRequest={"S3UrlPrefix": prefix, "RoleArn": ROLE, **extra}
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    return response["ExportJobResponse"]


def folder_of(settings: Settings, app_id: str, kind: str = "imports") -> Path:
    """A project's own folder under the default import (or export) root: the only one its jobs may use."""
    return settings.data_dir / kind / app_id
