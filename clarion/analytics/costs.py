"""The cost view (ClarionGetCosts, `clarion costs`): what each project used in a calendar month (UTC), priced twice,
with Amazon Pinpoint's published prices and with the operator's own provider prices.

Pinpoint's prices ("Amazon Pinpoint pricing", pay as you go) are per account and month, with free tiers: the
monthly targeted audience (MTA, each distinct endpoint a campaign or journey sent to), application events, email
and mobile push. Its free tiers belong to the account, so a project's own figures are before them and the total of
the projects listed is after them. SMS and voice were billed by AWS End User Messaging per destination country; the
operator gives those rates (`costs.pinpoint_sms`), else their lines are marked unpriced.

Money is Decimal from setting to answer, written as strings, so figures are exact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clarion.analytics.config import CostSettings, ProviderPrices
from clarion.clock import iso_millis
from clarion.errors import BadRequest
from clarion.projects.service import require_app
from clarion.store import apps as app_store
from clarion.store import costs as cost_store
from clarion.store.costs import SmsUsage, Usage
from clarion.store.database import Database, Transaction


@dataclass(frozen=True, slots=True)
class Meter:
    name: str
    free: int  # units free per account and month
    unit_price: Decimal  # USD per unit after the free tier


# Amazon Pinpoint pricing, as AWS published it until Pinpoint closed to new customers.
PINPOINT_MTA = Meter("MonthlyTargetedAudience", 5_000, Decimal("0.0012"))
PINPOINT_EVENTS = Meter("Events", 100_000_000, Decimal("0.000001"))
PINPOINT_EMAIL = Meter("Email", 0, Decimal("0.0001"))
PINPOINT_PUSH = Meter("Push", 1_000_000, Decimal("0.000001"))
PINPOINT_CURRENCY = "USD"

PUSH_CHANNELS = frozenset({"GCM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "ADM", "BAIDU"})
UNKNOWN_COUNTRY = "ZZ"  # SMS whose send event named no country (sent before Clarion recorded it)
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, slots=True)
class Line:
    meter: str  # MonthlyTargetedAudience, Events, Email, Push, SMS, Voice, Custom
    quantity: int  # endpoints, events, messages or SMS parts
    country: str | None = None
    free: int = 0
    unit_price: Decimal | None = None  # None: no price known for this line

    @property
    def billable(self) -> int:
        return max(self.quantity - self.free, 0)

    @property
    def amount(self) -> Decimal | None:
        return None if self.unit_price is None else self.unit_price * self.billable

    def shaped(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"Meter": self.meter, "Quantity": self.quantity}
        if self.country is not None:
            shape["Country"] = self.country
        if self.free:
            shape["Free"] = self.free
            shape["Billable"] = self.billable
        if self.unit_price is None or self.amount is None:
            shape["Unpriced"] = True
        else:
            shape["UnitPrice"] = money(self.unit_price)
            shape["Amount"] = money(self.amount)
        return shape


def money(value: Decimal) -> str:
    """Exact, without an exponent or trailing zeros: "0.0012", "6", "0.000001"."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def bill(lines: list[Line], currency: str) -> dict[str, Any]:
    priced = [line.amount for line in lines if line.amount is not None]
    return {
        "Currency": currency,
        "Lines": [line.shaped() for line in lines],
        "Total": money(sum(priced, Decimal(0))),
        "Complete": len(priced) == len(lines),
    }


def month_bounds(month: str | None, now: datetime) -> tuple[str, datetime, datetime]:
    """The month (YYYY-MM, default the current one in UTC) and its first instant and the next month's."""
    if month is None:
        month = f"{now.astimezone(UTC):%Y-%m}"
    matched = _MONTH.fullmatch(month)
    if matched is None:
        raise BadRequest(f"month must be a calendar month written YYYY-MM; got {month!r}")
    year, number = int(matched[1]), int(matched[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return month, start, end


def _sms_price(prices: Mapping[str, Decimal], country: str) -> Decimal | None:
    return prices.get(country, prices.get("default"))


def _sms_parts(sms: Iterable[SmsUsage]) -> dict[str, int]:
    parts: dict[str, int] = {}
    for item in sms:
        country = item.country or UNKNOWN_COUNTRY
        parts[country] = parts.get(country, 0) + item.parts_per_message * item.messages
    return parts


def _channel_total(messages: Mapping[str, int], channels: Iterable[str]) -> int:
    return sum(messages.get(channel, 0) for channel in channels)


def pinpoint_lines(usage: Usage, sms_prices: Mapping[str, Decimal], free_tiers: bool) -> list[Line]:
    """Usage at Pinpoint's prices; `free_tiers` applies the account's free units."""

    def metered(meter: Meter, quantity: int) -> Line:
        return Line(
            meter.name, quantity, free=min(meter.free, quantity) if free_tiers else 0, unit_price=meter.unit_price
        )

    lines = [
        metered(PINPOINT_MTA, usage.targeted_audience),
        metered(PINPOINT_EVENTS, usage.events_collected),
        metered(PINPOINT_EMAIL, usage.messages.get("EMAIL", 0)),
        metered(PINPOINT_PUSH, _channel_total(usage.messages, PUSH_CHANNELS)),
    ]
    lines += [
        Line("SMS", parts, country, unit_price=_sms_price(sms_prices, country))
        for country, parts in sorted(_sms_parts(usage.sms).items())
    ]
    for meter, channel in (("Voice", "VOICE"), ("Custom", "CUSTOM")):
        if usage.messages.get(channel):
            lines.append(Line(meter, usage.messages[channel]))
    return lines


def provider_lines(usage: Usage, prices: ProviderPrices) -> list[Line]:
    """Usage at the operator's own provider prices: messages only (events and audiences cost nothing here)."""
    lines = [
        Line("Email", usage.messages.get("EMAIL", 0), unit_price=prices.email),
        Line("Push", _channel_total(usage.messages, PUSH_CHANNELS), unit_price=prices.push),
        Line("Voice", usage.messages.get("VOICE", 0), unit_price=prices.voice),
        Line("Custom", usage.messages.get("CUSTOM", 0), unit_price=prices.custom),
    ]
    lines += [
        Line("SMS", parts, country, unit_price=_sms_price(prices.sms, country))
        for country, parts in sorted(_sms_parts(usage.sms).items())
    ]
    return lines


def usage_shape(usage: Usage) -> dict[str, Any]:
    return {
        "Messages": dict(sorted(usage.messages.items())),
        "Sms": [
            {
                "Country": item.country or UNKNOWN_COUNTRY,
                "PartsPerMessage": item.parts_per_message,
                "Messages": item.messages,
                "Parts": item.parts_per_message * item.messages,
            }
            for item in usage.sms
        ],
        "MonthlyTargetedAudience": usage.targeted_audience,
        "EndpointsMessaged": usage.endpoints_messaged,
        "EventsCollected": usage.events_collected,
    }


def combined(usages: Iterable[Usage]) -> Usage:
    """Several projects' usage as one account's (their endpoints are distinct, so audiences add up)."""
    messages: dict[str, int] = {}
    sms: dict[tuple[str | None, int], int] = {}
    targeted = messaged = collected = 0
    for usage in usages:
        for channel, count in usage.messages.items():
            messages[channel] = messages.get(channel, 0) + count
        for item in usage.sms:
            key = (item.country, item.parts_per_message)
            sms[key] = sms.get(key, 0) + item.messages
        targeted += usage.targeted_audience
        messaged += usage.endpoints_messaged
        collected += usage.events_collected
    items = [SmsUsage(country, parts, count) for (country, parts), count in sms.items()]
    items.sort(key=lambda item: (item.country or "", item.parts_per_message))
    return Usage(messages, items, targeted, messaged, collected)


def priced(usage: Usage, settings: CostSettings, free_tiers: bool) -> dict[str, Any]:
    return {
        "Usage": usage_shape(usage),
        "Pinpoint": bill(pinpoint_lines(usage, settings.pinpoint_sms, free_tiers), PINPOINT_CURRENCY),
        "Provider": bill(provider_lines(usage, settings.provider), settings.provider.currency),
    }


async def costs(
    db: Database, settings: CostSettings, now: datetime, month: str | None, app_id: str | None
) -> dict[str, Any]:
    """ClarionGetCosts: one project's month (`app_id`), or every project's and the account's."""
    month, start, end = month_bounds(month, now)
    bounds = (iso_millis(start), iso_millis(end), int(start.timestamp() * 1000), int(end.timestamp() * 1000))

    def read(tx: Transaction) -> list[tuple[str, str, Usage]]:
        apps = [require_app(tx, app_id)] if app_id is not None else app_store.page(tx, 0, 1_000_000, None)
        return [(app.id, app.name, cost_store.usage(tx, app.id, *bounds)) for app in apps]

    projects = await db.read(read)
    return {
        "Month": month,
        "Start": iso_millis(start),
        "End": iso_millis(end),
        "Projects": [
            {"ApplicationId": project_id, "Name": name, **priced(usage, settings, free_tiers=False)}
            for project_id, name, usage in projects
        ],
        "Total": priced(combined(usage for _, _, usage in projects), settings, free_tiers=True),
    }
