"""A real SMTP server for tests (aiosmtpd) that records what arrives and can answer chosen replies."""

from __future__ import annotations

import email
import email.policy
import time
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from conftest import free_port


@dataclass
class Received:
    peer: tuple[str, int]
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived

    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


@dataclass
class Relay:
    """An aiosmtpd handler that records what arrives and can answer given replies to given recipients."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # recipient -> reply to RCPT TO
    data_replies: dict[str, str] = field(default_factory=dict)  # recipient -> reply to DATA

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        recipient = envelope.rcpt_tos[0]
        if recipient in self.data_replies:
            return self.data_replies[recipient]
        assert isinstance(envelope.content, bytes)
        self.received.append(
            Received(session.peer, envelope.mail_from or "", list(envelope.rcpt_tos), envelope.content)
        )
        return f"250 2.0.0 Ok: queued as Q{len(self.received)}"

    @property
    def connections(self) -> int:
        return len({item.peer for item in self.received})

    def recipients(self) -> list[str]:
        return [to for item in self.received for to in item.rcpt_tos]


def start_relay(relay: Relay, **smtp_options: Any) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    return controller, port
