"""One decoded Pinpoint call, as handlers see it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from clarion.api.auth import Principal
from clarion.api.operations import Operation
from clarion.context import CallContext
from clarion.services import Services


@dataclass(slots=True)
class Call:
    operation: Operation
    ctx: CallContext
    principal: Principal
    params: dict[str, Any]  # path and query members, by model member name (ApplicationId, PageSize, ...)
    payload: msgspec.Struct | None  # the validated body, typed
    services: Services  # the process's parts (clarion/services.py); a project is `params["ApplicationId"]`
    https: bool = False  # the request came over TLS (console cookies are then marked Secure)
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # sent with a successful answer
    _body: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def body(self) -> dict[str, Any]:
        """The body as plain JSON values with wire names; members sent as null or left out are absent."""
        if self._body is None:
            self._body = msgspec.to_builtins(self.payload) if self.payload is not None else {}
        return self._body


Handler = Callable[[Call], Awaitable[Any]]
