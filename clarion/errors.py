"""Pinpoint's error vocabulary, one class per modeled exception.

Domain code raises these; the wire layer turns them into the status code, `x-amzn-ErrorType` header and
`{"Message", "RequestID"}` body that botocore maps back to `client.exceptions.<Code>`.
"""

from __future__ import annotations

from typing import ClassVar


class PinpointError(Exception):
    code: ClassVar[str] = "InternalServerErrorException"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PinpointError):
    code = "BadRequestException"
    status = 400


class Forbidden(PinpointError):
    code = "ForbiddenException"
    status = 403


class NotFound(PinpointError):
    code = "NotFoundException"
    status = 404


class MethodNotAllowed(PinpointError):
    code = "MethodNotAllowedException"
    status = 405


class Conflict(PinpointError):
    code = "ConflictException"
    status = 409


class PayloadTooLarge(PinpointError):
    code = "PayloadTooLargeException"
    status = 413


class TooManyRequests(PinpointError):
    code = "TooManyRequestsException"
    status = 429


class InternalServerError(PinpointError):
    pass
