"""Operator settings for import and export jobs: where files may be read and written, and the S3 store used."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from clarion.settings_model import SettingsModel

PROJECT = "{ApplicationId}"


class S3Settings(SettingsModel):
    """The S3-compatible object store `s3://bucket/key` URLs refer to (AWS S3, MinIO, Ceph, ...)."""

    # Empty: AWS S3 in `region` (https://s3.<region>.amazonaws.com). Requests use path-style addressing.
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    # Where each project's files live: its jobs' S3Url / S3UrlPrefix must lie under this location, with
    # {ApplicationId} replaced by the project's id. `*` as the bucket means any bucket these credentials reach;
    # `s3://exchange/tenants/{ApplicationId}/` or a bucket per project, `s3://clarion-{ApplicationId}/`, narrow it.
    project_scope: str = f"s3://*/{PROJECT}/"

    @field_validator("project_scope")
    @classmethod
    def _valid_scope(cls, scope: str) -> str:
        bucket, _, prefix = scope.removeprefix("s3://").partition("/")
        if not scope.startswith("s3://") or not bucket or not scope.endswith("/"):
            raise ValueError(f"{scope!r} must be an s3://bucket/prefix/ location ending in /")
        if PROJECT not in scope:
            raise ValueError(f"{scope!r} must contain {PROJECT}, or every project would share it")
        if "*" in prefix or ("*" in bucket and bucket != "*"):
            raise ValueError(f"{scope!r}: * may only stand for the whole bucket")
        if scope.replace(PROJECT, "").count("{") or scope.replace(PROJECT, "").count("}"):
            raise ValueError(f"{scope!r}: {PROJECT} is the only placeholder")
        return scope


class JobSettings(SettingsModel):
    # Folders local import files may be read from (file:///... or a plain path); empty: <data_dir>/imports.
    # A project reads and writes only its own folder in each: <root>/<ApplicationId>/.
    import_roots: list[Path] = Field(default_factory=list)
    # Folders exports may be written under; empty: <data_dir>/exports.
    export_roots: list[Path] = Field(default_factory=list)
    # Rows committed together while importing: one transaction, and the progress a restarted job resumes from.
    import_batch_rows: int = 1000
    # Endpoints per exported part (one .gz file, one piece).
    export_part_rows: int = 10_000
    # Longest time one file may take to download (http(s), S3) or one part to upload; a file that takes longer
    # fails its piece (after the queue's retries) instead of holding a worker.
    transfer_timeout_seconds: float = Field(default=1800.0, gt=0)
    # Largest import file read, in bytes (after gunzip for http(s) answers sent compressed).
    max_file_bytes: int = Field(default=5 << 30, gt=0)
    # Files uploaded through the console are kept in the project's first import folder (uploads/) for this many
    # days, and together may hold at most this many bytes per project: an upload past it is refused.
    upload_days: int = Field(default=7, gt=0)
    upload_bytes_per_project: int = Field(default=256 << 20, gt=0)
    s3: S3Settings = Field(default_factory=S3Settings)
