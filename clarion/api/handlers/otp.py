from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.otp import service


async def send_otp_message(call: Call) -> Any:
    s = call.services
    return await service.send_otp(
        s.db,
        s.delivery,
        s.channel_secrets,
        s.settings.otp,
        s.metrics,
        call.ctx,
        call.params["ApplicationId"],
        call.body,
    )


async def verify_otp_message(call: Call) -> Any:
    s = call.services
    return await service.verify_otp(
        s.db, s.channel_secrets, s.metrics, call.ctx, call.params["ApplicationId"], call.body
    )


HANDLERS: dict[str, Handler] = {
    "SendOTPMessage": send_otp_message,
    "VerifyOTPMessage": verify_otp_message,
}
