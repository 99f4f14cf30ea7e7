"""Campaign hooks (CampaignHook, API Reference "Campaign"): the operator's code decides who gets a batch, or delivers
it.

Pinpoint called a Lambda function; Clarion POSTs the same event as JSON to a web URL — `WebUrl`, or the URL the
operator mapped the `LambdaFunctionName` to (`campaigns.lambda_urls`). The event is `{MessageConfiguration,
ApplicationId, CampaignId, TreatmentId, ActivityId, ScheduledTime, Endpoints: {id: endpoint}}`, signed like
custom-channel webhooks (`X-Clarion-Signature`). FILTER: the answer is the endpoints map to send to (entries may
carry changed attributes for personalisation); DELIVERY: the hook delivers, any 2xx is success. Each call gets
`hook_timeout_seconds` and up to `hook_attempts` tries, as Pinpoint's 15 s and 3 attempts. Calls go through the
guarded client (clarion/outbound/): a hook URL cannot reach the server's own network unless the operator allows it,
including URLs from `campaigns.lambda_urls`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from clarion.campaigns.config import CampaignSettings
from clarion.channels.custom import SIGNATURE_HEADER, sign
from clarion.outbound.client import OutboundClient, OutboundError

# A FILTER hook answers with the batch's endpoints (up to 15 KB each); more than this is not such an answer.
ANSWER_BYTES = 16 << 20


class HookFailed(Exception):
    """The hook could not be reached, or answered what is not an endpoints map."""


class CampaignHooks:
    def __init__(self, settings: CampaignSettings, signing_secret: str | None, outbound: OutboundClient) -> None:
        self.settings = settings
        self.signing_secret = signing_secret
        self.outbound = outbound

    def url_of(self, hook: Mapping[str, Any]) -> str:
        if hook.get("WebUrl"):
            return str(hook["WebUrl"])
        name = hook.get("LambdaFunctionName", "")
        url = self.settings.lambda_urls.get(name) or self.settings.lambda_urls.get(name.rsplit(":", 1)[-1])
        if not url:
            raise HookFailed(f"Lambda function {name!r} has no URL in campaigns.lambda_urls")
        return url

    async def call(self, hook: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
        """POST the event; the decoded JSON answer (None for an empty body)."""
        url = self.url_of(hook)
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.signing_secret:
            headers[SIGNATURE_HEADER] = sign(self.signing_secret, int(time.time()), body)
        problem = "not attempted"
        for attempt in range(self.settings.hook_attempts):
            try:
                async with self.outbound.open(
                    "POST",
                    url,
                    body=body,
                    headers=headers,
                    timeout=self.settings.hook_timeout_seconds,
                    max_bytes=ANSWER_BYTES,
                ) as response:
                    if 200 <= response.status < 300:
                        text = await response.read()
                        return json.loads(text) if text.strip() else None
                    problem = f"hook answered {response.status}"  # what it said is not repeated
            except OutboundError as error:
                if error.permanent:
                    raise HookFailed(f"hook refused: {error}") from None
                problem = f"hook unreachable: {error}"
            except ValueError:
                raise HookFailed("hook answered something that is not JSON") from None
            if attempt + 1 < self.settings.hook_attempts:
                await asyncio.sleep(0.5 * 2**attempt)
        raise HookFailed(problem)

    async def filter(self, hook: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        answer = await self.call(hook, event)
        endpoints = answer.get("Endpoints", answer) if isinstance(answer, dict) else None
        if not isinstance(endpoints, dict) or not all(isinstance(v, dict) for v in endpoints.values()):
            raise HookFailed("a FILTER hook must answer a map of endpoint id to endpoint")
        return endpoints
