"""How many parts (segments) an SMS body travels as: what carriers, Pinpoint and most providers bill by.

A body written only in the GSM 03.38 alphabet goes as 7-bit text: 160 characters in one part, 153 per part once it
is split (the rest of each part holds the concatenation header); the extension characters (`€`, `[`, `{`, ...) take
two places each. Any other character sends the whole body as UCS-2: 70 UTF-16 code units in one part, 67 per part
when split.
"""

from __future__ import annotations

import math

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


def message_parts(body: str) -> int:
    """The parts an SMS with this body is sent as (at least one)."""
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in body):
        septets = len(body) + sum(1 for char in body if char in GSM_EXTENSION)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
