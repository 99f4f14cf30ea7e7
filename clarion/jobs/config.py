"""Operator settings for import and export jobs: where files may be read and written, and the S3 store used."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class S3Settings(BaseModel):
    """The S3-compatible object store `s3://bucket/key` URLs refer to (AWS S3, MinIO, Ceph, ...)."""

    # Empty: AWS S3 in `region` (https://s3.<region>.amazonaws.com). Requests use path-style addressing.
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""


class JobSettings(BaseModel):
    # Folders local import files may be read from (file:///... or a plain path); empty: <data_dir>/imports.
    import_roots: list[Path] = Field(default_factory=list)
    # Folders exports may be written under; empty: <data_dir>/exports.
    export_roots: list[Path] = Field(default_factory=list)
    # Rows committed together while importing: one transaction, and the progress a restarted job resumes from.
    import_batch_rows: int = 1000
    # Endpoints per exported part (one .gz file, one piece).
    export_part_rows: int = 10_000
    s3: S3Settings = Field(default_factory=S3Settings)
