"""Operator settings for one-time passwords (docs/messages.md#one-time-passwords, docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field, field_validator

from clarion.otp.texts import LANGUAGES
from clarion.settings_model import SettingsModel


class OtpSettings(SettingsModel):
    # Codes sent to one destination (phone number) of a project within `window_seconds`; SendOTPMessage answers
    # TooManyRequestsException past it, so a form cannot be used to flood a number or run up SMS costs.
    max_sends_per_destination: int = Field(default=5, ge=1)
    window_seconds: int = Field(default=900, ge=1)
    # Message text by Language, replacing Clarion's (clarion/otp/texts.py); `{code}` and `{brand}` are filled in.
    texts: dict[str, str] = Field(default_factory=dict)

    @field_validator("texts")
    @classmethod
    def _known_and_complete(cls, texts: dict[str, str]) -> dict[str, str]:
        for language, text in texts.items():
            if language not in LANGUAGES:
                raise ValueError(
                    f"otp.texts: {language!r} is not a Language SendOTPMessage takes ({', '.join(LANGUAGES)})"
                )
            if "{code}" not in text:
                raise ValueError(f"otp.texts[{language!r}] must contain {{code}}, where the code goes")
            if "{{" in text or "}}" in text:
                raise ValueError(f"otp.texts[{language!r}] is plain text: only {{code}} and {{brand}} are filled in")
        return texts
