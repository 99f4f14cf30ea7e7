"""What each console role may call, as a set of API operation names the request pipeline checks like a key's scope.

Roles are described by intent rather than listed by hand, so an operation added later falls in the right place:
analysts read (Get*, List*, previews, exports); marketers do everything with audiences, templates, campaigns,
journeys and sends; only admins touch what holds credentials or decides who may do what.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    ANALYST = "analyst"


# Reads that are POSTs: previews change nothing, and exporting is part of an analyst's work.
_READS = frozenset({"ClarionPreviewSegment", "ClarionPreviewTemplate", "CreateExportJob", "PhoneNumberValidate"})
# A signed-in person may always see and end their own session.
_SELF = frozenset({"ClarionGetSession", "ClarionSignOut"})
# Credentials, keys, people, whole projects and where their data flows: admins only.
_ADMIN_ONLY = frozenset(
    {
        "CreateApp",
        "DeleteApp",
        "UpdateApplicationSettings",
        "PutEventStream",
        "DeleteEventStream",
        "ClarionGetBuriedWork",
        "ClarionListAccessKeys",
        "ClarionCreateAccessKey",
        "ClarionRevokeAccessKey",
        "ClarionListUsers",
        "ClarionCreateUser",
        "ClarionUpdateUser",
        "ClarionDeleteUser",
        "ClarionListAuditEvents",
    }
)


def _is_read(operation: str) -> bool:
    return operation.startswith(("Get", "List", "ClarionGet", "ClarionList")) or operation in _READS


def _is_channel_write(operation: str) -> bool:
    return operation.endswith("Channel") and operation.startswith(("Update", "Delete"))


def allowed_operations(role: Role, operations: Iterable[str]) -> frozenset[str] | None:
    """The operations `role` may call out of `operations` (None: every one)."""
    if role is Role.ADMIN:
        return None
    if role is Role.ANALYST:
        return frozenset(op for op in operations if _is_read(op) and op not in _ADMIN_ONLY) | _SELF
    return frozenset(op for op in operations if op not in _ADMIN_ONLY and not _is_channel_write(op)) | _SELF
