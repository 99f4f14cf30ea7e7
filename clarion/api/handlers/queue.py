from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.queue.work_queue import buried_work


async def get_buried_work(call: Call) -> Any:
    """Clarion extension (clarion/api/extended.py): queue items given up on, and why."""
    return await buried_work(call.services.queue, call.params.get("ApplicationId"))


HANDLERS: dict[str, Handler] = {"ClarionGetBuriedWork": get_buried_work}
