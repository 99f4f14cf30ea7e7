"""Clarion's extension operations for the web console: sessions, console users, access keys and the audit log.

Pinpoint has no operation for these, so they are Clarion's own, under `/v1/clarion/` (the template preview, the
import file upload and the export file download, which belong to a project, under
`/v1/apps/{application-id}/clarion/` like the segment preview; docs/console.md), and go through the same pipeline as
every Pinpoint operation: authentication (a SigV4 key or a console session), the caller's scope, decoding, and
Pinpoint's error shape. Only ClarionSignIn, and ClarionGetSession (which then answers SignedIn false), are taken
without credentials.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

from clarion.api.extension_ops import extension_operation
from clarion.api.operations import Operation, QueryParam

SESSION_PATH = "/v1/clarion/session"


class SignInRequest(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    username: str = field(name="Username")
    password: str = field(name="Password")


class SessionResponse(Struct, kw_only=True, omit_defaults=True):
    """Who is signed in, the token to send back in X-Clarion-CSRF on changes, and what the role may call; only
    SignedIn (false) when the request carries no live session."""

    signed_in: bool = field(name="SignedIn")
    username: str | None = field(default=None, name="Username")
    role: str | None = field(default=None, name="Role")
    csrf_token: str | None = field(default=None, name="CsrfToken")
    expiration_date: str | None = field(default=None, name="ExpirationDate")
    operations: list[str] | None = field(default=None, name="Operations")


class ConsoleUser(Struct, kw_only=True, omit_defaults=True):
    username: str = field(name="Username")
    role: str = field(name="Role")
    creation_date: str = field(name="CreationDate")
    password: str | None = field(default=None, name="Password")  # only in CreateUser's answer, when generated


class ConsoleUsersResponse(Struct, kw_only=True, omit_defaults=True):
    item: list[ConsoleUser] = field(name="Item")


class CreateConsoleUserRequest(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Without Password, the server makes one and answers it once."""

    username: str = field(name="Username")
    role: str = field(name="Role")
    password: str | None = field(default=None, name="Password")


class UpdateConsoleUserRequest(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A new Role, and/or ResetPassword true: the server makes a new password, answers it once and ends the user's
    sessions."""

    role: str | None = field(default=None, name="Role")
    reset_password: bool | None = field(default=None, name="ResetPassword")


class AccessKeyItem(Struct, kw_only=True, omit_defaults=True):
    access_key_id: str = field(name="AccessKeyId")
    description: str = field(name="Description")
    projects: list[str] = field(name="Projects")
    operations: list[str] = field(name="Operations")
    allow_networks: list[str] = field(name="AllowNetworks")
    creation_date: str | None = field(default=None, name="CreationDate")
    source: str = field(name="Source")  # "store" (revocable here) or "settings"
    secret_access_key: str | None = field(default=None, name="SecretAccessKey")  # only when just created


class AccessKeysResponse(Struct, kw_only=True, omit_defaults=True):
    item: list[AccessKeyItem] = field(name="Item")


class CreateAccessKeyRequest(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Empty or absent lists mean every project / operation / network, as `clarion keys create` does."""

    description: str | None = field(default=None, name="Description")
    projects: list[str] | None = field(default=None, name="Projects")
    operations: list[str] | None = field(default=None, name="Operations")
    allow_networks: list[str] | None = field(default=None, name="AllowNetworks")


class TemplatePreviewRequest(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A stored template (TemplateName, Version: the active one when absent) or a draft's parts (Template: the
    members of an EmailTemplateRequest, SMSTemplateRequest, VoiceTemplateRequest or PushNotificationTemplateRequest),
    rendered for EndpointId (or for no one) with Substitutions on top."""

    template_type: str = field(name="TemplateType")
    template_name: str | None = field(default=None, name="TemplateName")
    version: str | None = field(default=None, name="Version")
    template: dict[str, Any] | None = field(default=None, name="Template")
    endpoint_id: str | None = field(default=None, name="EndpointId")
    substitutions: dict[str, list[str]] | None = field(default=None, name="Substitutions")


class TemplatePreviewResponse(Struct, kw_only=True, omit_defaults=True):
    subject: str | None = field(default=None, name="Subject")
    html_part: str | None = field(default=None, name="HtmlPart")
    text_part: str | None = field(default=None, name="TextPart")
    title: str | None = field(default=None, name="Title")
    body: str | None = field(default=None, name="Body")
    problem: str | None = field(default=None, name="Problem")  # why the template does not render (nothing else)


class ImportFileRequest(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A CSV or JSON-lines file's text (a request holds at most 7 MB; larger files go through S3 or https)."""

    file_name: str = field(name="FileName")
    content: str = field(name="Content")


class ImportFileResponse(Struct, kw_only=True, omit_defaults=True):
    s3_url: str = field(name="S3Url")  # what CreateImportJob's S3Url takes
    size: int = field(name="Size")


class ExportFileResponse(Struct, kw_only=True, omit_defaults=True):
    """One file an export job wrote: its name, its size, and its bytes in base64 (gzip JSON lines, as written)."""

    job_id: str = field(name="JobId")
    part: int = field(name="Part")
    file_name: str = field(name="FileName")
    size: int = field(name="Size")
    content: str = field(name="Content")


class AuditEvent(Struct, kw_only=True, omit_defaults=True):
    date: str = field(name="Date")
    username: str = field(name="Username")
    action: str = field(name="Action")
    application_id: str | None = field(default=None, name="ApplicationId")
    target: str = field(name="Target")
    status: int = field(name="Status")
    request_id: str = field(name="RequestId")


class AuditEventsResponse(Struct, kw_only=True, omit_defaults=True):
    item: list[AuditEvent] = field(name="Item")
    next_token: str | None = field(default=None, name="NextToken")


_ERRORS = ("BadRequestException", "ForbiddenException", "InternalServerErrorException", "TooManyRequestsException")


def _op(name: str, method: str, uri: str, *, errors: tuple[str, ...] = (), **declared: Any) -> Operation:
    return extension_operation(name, method, uri, errors=_ERRORS + errors, **declared)


CONSOLE_OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        _op(
            "ClarionSignIn",
            "POST",
            SESSION_PATH,
            body=("SignInRequest", SignInRequest),
            output=("SessionResponse", SessionResponse),
        ),
        _op("ClarionGetSession", "GET", SESSION_PATH, output=("SessionResponse", SessionResponse)),
        _op("ClarionSignOut", "DELETE", SESSION_PATH, status=204),
        _op("ClarionListUsers", "GET", "/v1/clarion/users", output=("ConsoleUsersResponse", ConsoleUsersResponse)),
        _op(
            "ClarionCreateUser",
            "POST",
            "/v1/clarion/users",
            status=201,
            body=("CreateConsoleUserRequest", CreateConsoleUserRequest),
            output=("ConsoleUser", ConsoleUser),
            errors=("ConflictException",),
        ),
        _op(
            "ClarionDeleteUser",
            "DELETE",
            "/v1/clarion/users/{username}",
            status=204,
            path=(("Username", "username"),),
            errors=("NotFoundException",),
        ),
        _op(
            "ClarionUpdateUser",
            "PUT",
            "/v1/clarion/users/{username}",
            path=(("Username", "username"),),
            body=("UpdateConsoleUserRequest", UpdateConsoleUserRequest),
            output=("ConsoleUser", ConsoleUser),
            errors=("NotFoundException",),
        ),
        _op(
            "ClarionListAccessKeys",
            "GET",
            "/v1/clarion/access-keys",
            output=("AccessKeysResponse", AccessKeysResponse),
        ),
        _op(
            "ClarionCreateAccessKey",
            "POST",
            "/v1/clarion/access-keys",
            status=201,
            body=("CreateAccessKeyRequest", CreateAccessKeyRequest),
            output=("AccessKeyItem", AccessKeyItem),
        ),
        _op(
            "ClarionRevokeAccessKey",
            "DELETE",
            "/v1/clarion/access-keys/{access-key-id}",
            status=204,
            path=(("AccessKeyId", "access-key-id"),),
            errors=("NotFoundException",),
        ),
        _op(
            "ClarionListAuditEvents",
            "GET",
            "/v1/clarion/audit-events",
            query=(QueryParam("PageSize", "page-size", "str"), QueryParam("Token", "token", "str")),
            output=("AuditEventsResponse", AuditEventsResponse),
        ),
    )
}

CONSOLE_OPERATIONS["ClarionPreviewTemplate"] = _op(
    "ClarionPreviewTemplate",
    "POST",
    "/v1/apps/{application-id}/clarion/template-preview",
    path=(("ApplicationId", "application-id"),),
    body=("TemplatePreviewRequest", TemplatePreviewRequest),
    output=("TemplatePreviewResponse", TemplatePreviewResponse),
    errors=("NotFoundException",),
)

CONSOLE_OPERATIONS["ClarionUploadImportFile"] = _op(
    "ClarionUploadImportFile",
    "POST",
    "/v1/apps/{application-id}/clarion/import-files",
    status=201,
    path=(("ApplicationId", "application-id"),),
    body=("ImportFileRequest", ImportFileRequest),
    output=("ImportFileResponse", ImportFileResponse),
    errors=("NotFoundException", "PayloadTooLargeException"),
)
CONSOLE_OPERATIONS["ClarionGetExportFile"] = _op(
    "ClarionGetExportFile",
    "GET",
    "/v1/apps/{application-id}/clarion/export-files",
    path=(("ApplicationId", "application-id"),),
    query=(QueryParam("JobId", "job-id", "str"), QueryParam("Part", "part", "str")),
    output=("ExportFileResponse", ExportFileResponse),
    errors=("NotFoundException", "PayloadTooLargeException"),
)

CONSOLE_SUMMARIES = {
    "ClarionUploadImportFile": "Clarion extension: keep an uploaded CSV or JSON file where the project's imports read",
    "ClarionGetExportFile": "Clarion extension: one file an export job wrote to the project's folders or S3",
    "ClarionPreviewTemplate": "Clarion extension: a stored template or a draft rendered for an endpoint, not sent",
    "ClarionSignIn": "Clarion extension: sign a console user in (sets the session cookie)",
    "ClarionGetSession": "Clarion extension: the signed-in console user, their CSRF token and allowed operations",
    "ClarionSignOut": "Clarion extension: end the console session",
    "ClarionListUsers": "Clarion extension: the console users and their roles",
    "ClarionCreateUser": "Clarion extension: add a console user (a password is generated when none is given)",
    "ClarionDeleteUser": "Clarion extension: remove a console user and end their sessions",
    "ClarionUpdateUser": "Clarion extension: change a console user's role, or reset their password (shown once)",
    "ClarionListAccessKeys": "Clarion extension: the access keys and their scopes (never their secrets)",
    "ClarionCreateAccessKey": "Clarion extension: make an access key limited to projects, operations and networks",
    "ClarionRevokeAccessKey": "Clarion extension: revoke a stored access key, in every server process at once",
    "ClarionListAuditEvents": "Clarion extension: the audit log of changes made through the console, newest first",
}
