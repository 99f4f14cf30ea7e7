from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.channels.phone_numbers import validate_phone_number


async def phone_number_validate(call: Call) -> Any:
    body = call.body
    return validate_phone_number(body.get("PhoneNumber"), body.get("IsoCountryCode"))


HANDLERS: dict[str, Handler] = {
    "PhoneNumberValidate": phone_number_validate,
}
