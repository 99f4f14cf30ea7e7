"""What the public routes (provider webhooks, recipients' tracking links) do with what they were told: record it
as message outcomes (clarion/channels/outcomes.py), in the context of the request that brought it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from clarion.channels.delivery import ProviderReport
from clarion.channels.outcomes import report
from clarion.context import CallContext
from clarion.services import Services


async def record_outcomes(services: Services, reports: Sequence[ProviderReport]) -> None:
    settings = services.settings
    ctx = CallContext(str(uuid.uuid4()), settings.region, settings.account_id, services.clock.now())
    await report(services.db, services.endpoint_writer, ctx, reports)
