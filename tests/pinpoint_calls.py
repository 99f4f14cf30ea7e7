"""Calls several test modules make as a client would (boto3): import and export jobs, and where a project's local
files go; a project with email endpoints, a segment of all of them, and an immediate campaign."""

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


def email_project(client: Any, name: str, endpoints: int) -> str:
    """A project with an email channel and `endpoints` email endpoints (e00@example.org, ...)."""
    app_id = client.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    items = [{"Id": f"e{n:02d}", "ChannelType": "EMAIL", "Address": f"e{n:02d}@example.org"} for n in range(endpoints)]
    if items:
        client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    return app_id


def everyone(client: Any, app_id: str) -> str:
    """A new segment of every endpoint of the project (no dimensions); its id."""
    return client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"]["Id"]


def add_endpoints(client: Any, app_id: str, count: int, *, width: int = 0, **extra: Any) -> list[str]:
    """`count` email endpoints ep-0, ep-1, ... (numbers zero-padded to `width` digits) at ID@example.org, with the
    attribute name = [ID] and `extra` members, 100 per UpdateEndpointsBatch; their ids."""
    ids = [f"ep-{n:0{width}d}" for n in range(count)]
    for start in range(0, count, 100):
        items = [
            {"Id": e, "ChannelType": "EMAIL", "Address": f"{e}@example.org", "Attributes": {"name": [e]}, **extra}
            for e in ids[start : start + 100]
        ]
        client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    return ids


def project_with_email(client: Any, name: str, endpoints: int, prefix: str = "e") -> tuple[str, str]:
    """A project with an email channel and `endpoints` email endpoints e0, e1... at {prefix}0@example.org, ...;
    (its id, a segment of all of them)."""
    app_id = client.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    for start in range(0, endpoints, 100):
        items = [
            {"Id": f"e{n}", "ChannelType": "EMAIL", "Address": f"{prefix}{n}@example.org"}
            for n in range(start, min(start + 100, endpoints))
        ]
        client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    return app_id, everyone(client, app_id)


def immediate_campaign(client: Any, app_id: str, segment_id: str | None = None, **members: Any) -> str:
    """An email campaign that starts at once, to `segment_id` (else a new segment of every endpoint); its id."""
    request = {
        "Name": "c",
        "SegmentId": segment_id or everyone(client, app_id),
        "Schedule": {"StartTime": "IMMEDIATE"},
        "MessageConfiguration": {"EmailMessage": {"Title": "Hi", "Body": "Hello"}},
        **members,
    }
    return client.create_campaign(ApplicationId=app_id, WriteCampaignRequest=request)["CampaignResponse"]["Id"]
