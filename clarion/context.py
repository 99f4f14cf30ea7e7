"""What domain code needs to know about the call it serves, without knowing it came over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CallContext:
    request_id: str
    region: str  # from the SigV4 credential scope; ARNs carry it
    account_id: str
    now: datetime

    def arn(self, resource: str) -> str:
        return f"arn:aws:mobiletargeting:{self.region}:{self.account_id}:{resource}"
