"""The inbound SMTP listener for bounces and complaints sent back by mail (`delivery.bounces`).

Point the MX (or a transport rule) of the VERP return-path domain, or the address mailbox providers send feedback
reports to, at it. Each message it accepts is read as a DSN or ARF report (clarion/channels/email/feedback.py) and
recorded like a provider's webhook: the event on the message's endpoint, the address opted out for hard bounces
and complaints. It answers 250 once the report is recorded (or when the message holds none, so the sender does not
retry it), and 451 when recording failed, so the sending server tries again later.

It runs on the process's event loop (aiosmtpd's protocol on an asyncio server). Several processes on one machine
share the port (SO_REUSEPORT), as `clarion serve --workers N` shares the API's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from clarion.channels.config import BounceSettings
from clarion.channels.delivery import ProviderReport
from clarion.channels.email import feedback
from clarion.logs import get_logger

Record = Callable[[Sequence[ProviderReport]], Awaitable[int]]  # how many reports found their message

log = get_logger("clarion.bounces")


class BounceListener:
    def __init__(self, settings: BounceSettings, record: Record) -> None:
        self.settings = settings
        self.record = record
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; raises, and so stops the start, when the address cannot be bound. aiosmtpd is an optional
        dependency (the settings refuse a port without it), imported only here."""
        from aiosmtpd.smtp import SMTP

        s = self.settings

        def protocol() -> Any:
            return SMTP(self, data_size_limit=s.max_message_bytes, hostname=s.hostname or None, ident="Clarion")

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol, s.host, s.port, reuse_port=True)
        log.info("bounce_listener_started", host=s.host, port=self.port)

    @property
    def port(self) -> int:
        """The port it listens on (the one given, or the one the system chose for port 0 in tests)."""
        if self._server is None or not self._server.sockets:
            return self.settings.port
        return int(self._server.sockets[0].getsockname()[1])

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook for a message received: record the report it holds."""
        data = envelope.original_content or envelope.content
        recipients = list(envelope.rcpt_tos)
        try:
            reports = feedback.parse(data if isinstance(data, bytes) else str(data).encode(), recipients)
        except Exception as error:  # a message the email package cannot read is still not worth a retry
            log.warning("bounce_unreadable", mail_from=envelope.mail_from, error=str(error))
            return "250 2.0.0 Unreadable; nothing recorded"
        if not reports:
            log.info("bounce_ignored", mail_from=envelope.mail_from, recipients=recipients)
            return "250 2.0.0 No bounce or complaint found; nothing recorded"
        try:
            matched = await self.record(reports)
        except Exception:
            log.exception("bounce_not_recorded", recipients=recipients)
            return "451 4.3.0 The report could not be recorded; try again later"
        if not matched:  # a message id no message of this store has: another system's, or pruned
            log.info("bounce_unmatched", message_ids=[report.message_id for report in reports])
            return "250 2.0.0 No message sent by Clarion matches; nothing recorded"
        for report in reports:
            log.info("bounce_recorded", event_type=report.event_type, message_id=report.message_id)
        return "250 2.0.0 Recorded"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
