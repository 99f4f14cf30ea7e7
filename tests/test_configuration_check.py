"""SendMessages checks a request's message configuration beside the event loop only when there is work for a thread
(clarion/messages/rendering.py, `check_configuration_off_loop`): a text to compile or a raw email to read. A plain
or already compiled message is checked in place; either way a bad text is refused naming where it is."""

from __future__ import annotations

import asyncio
import base64
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from clarion.errors import BadRequest
from clarion.messages.rendering import check_configuration_off_loop
from clarion.templates.handlebars import is_compiled


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(*args, **kwargs)


def hops(config: dict[str, Any]) -> int:
    """How many times checking `config` went to a thread."""

    async def check() -> int:
        executor = CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        await check_configuration_off_loop(config)
        return executor.submitted

    return asyncio.run(check())


def gcm(body: str) -> dict[str, Any]:
    return {"GCMMessage": {"Title": "Your code", "Body": body}}


def test_plain_and_compiled_texts_are_checked_in_place_new_ones_beside_the_loop() -> None:
    assert hops(gcm("Your one-time code is 123456")) == 0
    templated = f"Hello {{{{Attributes.Name}}}} ({uuid.uuid4()})"  # never compiled before in this process
    assert not is_compiled(templated)
    assert hops(gcm(templated)) == 1
    assert is_compiled(templated)
    assert hops(gcm(templated)) == 0
    raw = {"EmailMessage": {"RawEmail": {"Data": base64.b64encode(b"Subject: s\r\n\r\nbody\r\n").decode()}}}
    assert hops(raw) == 1


def test_a_bad_text_is_refused_either_way() -> None:
    with pytest.raises(BadRequest, match=r"MessageConfiguration\.GCMMessage\.Body"):
        hops(gcm(f"Hello {{{{#if}}}} {uuid.uuid4()}"))
