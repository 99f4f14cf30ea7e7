"""The webhook sink: each batch is one POST in Firehose's HTTP endpoint delivery format, so a receiver built for a
Firehose HTTP endpoint destination reads it unchanged: `{"requestId", "timestamp", "records": [{"data": base64}]}`
with the X-Amz-Firehose-Request-Id (and, when configured, X-Amz-Firehose-Access-Key) headers.

Batches are signed like custom-channel webhooks (`X-Clarion-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of
`<t>.<body>`, clarion/channels/custom.py). The request id depends only on the batch's records, so a batch sent
again after a failure carries the same id and the receiver can drop it. The URL is the operator's, but requests
still go through the guarded client (clarion/outbound/): it bounds time and answers, and reaches private networks
only where `outbound.allow_networks` says.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence

import msgspec

from clarion.channels.custom import SIGNATURE_HEADER, sign
from clarion.clock import epoch_millis
from clarion.outbound.client import OutboundError
from clarion.streams.config import WebhookSink as WebhookSettings
from clarion.streams.records import StreamRecord
from clarion.streams.sink import SinkContext, SinkError

REQUEST_ID_HEADER = "X-Amz-Firehose-Request-Id"
ACCESS_KEY_HEADER = "X-Amz-Firehose-Access-Key"
ANSWER_BYTES = 1 << 16
_BATCHES = uuid.UUID("0f9e8a57-4c1b-4d0e-9a3f-6b2c7d1e5a40")


class WebhookSink:
    def __init__(self, settings: WebhookSettings, url: str, context: SinkContext) -> None:
        self.settings = settings
        self.url = url
        self.context = context

    async def write(self, records: Sequence[StreamRecord]) -> None:
        request_id = str(uuid.uuid5(_BATCHES, f"{records[0].id}..{records[-1].id}"))
        body = msgspec.json.encode(
            {
                "requestId": request_id,
                "timestamp": epoch_millis(self.context.clock.now()),
                "records": [{"data": base64.b64encode(record.data).decode()} for record in records],
            }
        )
        now = int(self.context.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            REQUEST_ID_HEADER: request_id,
            SIGNATURE_HEADER: sign(self.settings.signing_secret.get_secret_value(), now, body),
        }
        if self.settings.access_key is not None:
            headers[ACCESS_KEY_HEADER] = self.settings.access_key.get_secret_value()
        try:
            async with self.context.outbound.open(
                "POST",
                self.url,
                body=body,
                headers=headers,
                timeout=self.settings.timeout_seconds,
                max_bytes=ANSWER_BYTES,
            ) as response:
                status = response.status
        except OutboundError as error:
            raise SinkError(f"webhook: {error}") from None
        if not 200 <= status < 300:
            raise SinkError(f"webhook: {self.url.split('?')[0]} answered {status}")

    async def close(self) -> None:
        """The guarded client belongs to the process."""
