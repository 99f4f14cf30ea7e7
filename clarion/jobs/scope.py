"""Each project's own corner of external storage: the only places its import and export jobs read and write.

- Local folders: `<root>/<ApplicationId>/` under each folder the operator allows (`jobs.import_roots`,
  `jobs.export_roots`), after following links, so one project cannot read a file dropped for another, nor write
  beside another's exports.
- S3: under `jobs.s3.project_scope` (default `s3://*/{ApplicationId}/`: any bucket, keys under the project's id),
  for reading and for writing alike.
- http(s) URLs point at the tenant's own servers; they are not storage Clarion holds, and go through the guarded
  client (clarion/outbound/) instead.

A location is checked when the job is created and again whenever a file is opened, so a job stored before the
scope changed cannot reach outside it either.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from clarion.jobs.config import PROJECT, JobSettings
from clarion.jobs.s3 import parse_s3_url


class BadLocation(Exception):
    """Not a location Clarion can use at all (a relative path, another scheme, no bucket)."""


class OutsideScope(Exception):
    """A location Clarion can use, but not this project's."""


def local_path(url: str) -> Path | None:
    """The path a file:// URL or plain path names; None for other schemes."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if url.startswith("/") or "://" not in url:
        return Path(url)
    return None


class StorageScope:
    def __init__(self, settings: JobSettings, data_dir: Path) -> None:
        self.import_roots = [p.resolve() for p in settings.import_roots or [data_dir / "imports"]]
        self.export_roots = [p.resolve() for p in settings.export_roots or [data_dir / "exports"]]
        self.s3_scope = settings.s3.project_scope

    def folders(self, app_id: str, *, export: bool) -> list[Path]:
        return [(root / app_id).resolve() for root in (self.export_roots if export else self.import_roots)]

    def local(self, app_id: str, url: str, *, export: bool) -> Path | None:
        """The resolved path of a local location inside the project's folders; None if `url` is not local."""
        path = local_path(url)
        if path is None:
            return None
        if not path.is_absolute():
            raise BadLocation(f"{url!r} must be an absolute path or a file:// URL")
        resolved = path.resolve()
        folders = self.folders(app_id, export=export)
        if not any(resolved == folder or resolved.is_relative_to(folder) for folder in folders):
            allowed = ", ".join(f"{folder}/" for folder in folders)
            raise OutsideScope(f"{url!r} is outside this project's folders ({allowed})")
        return resolved

    def s3(self, app_id: str, url: str) -> tuple[str, str]:
        """(bucket, key) of an s3:// location inside the project's scope."""
        try:
            bucket, key = parse_s3_url(url)
        except ValueError as error:
            raise BadLocation(str(error)) from None
        if any(part in (".", "..") for part in key.split("/")):
            raise BadLocation(f"{url!r}: S3 keys here may not have . or .. segments")
        scope_bucket, _, scope_prefix = self.s3_scope.replace(PROJECT, app_id).removeprefix("s3://").partition("/")
        if (scope_bucket != "*" and bucket != scope_bucket) or not key.startswith(scope_prefix):
            shown = f"s3://{'<any bucket>' if scope_bucket == '*' else scope_bucket}/{scope_prefix}"
            raise OutsideScope(f"{url!r} is outside this project's storage; use a location under {shown}")
        return bucket, key

    def check(self, app_id: str, url: str, *, export: bool) -> None:
        if self.local(app_id, url, export=export) is not None:
            return
        if url.startswith("s3://"):
            self.s3(app_id, url)
        elif not url.startswith(("http://", "https://")):
            raise BadLocation(f"{url!r} must be an s3://, http(s)://, file:// URL or an absolute path")
