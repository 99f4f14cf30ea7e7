"""An endpoint's local time zone for a journey: its Demographic.Timezone, else one estimated by the journey's
TimezoneEstimationMethods, in the order Pinpoint's reference lists them (the phone number, then the postal code).

POSTAL_CODE has no postal-code database to ask here. A country whose time zones all keep the same clock from now
on (by tzdata's zone.tab and the zones' rules) resolves from `Location.Country` alone; the rest resolve from an
operator's mapping file (`journeys.postal_code_zones`: CSV rows of country, postal code or prefix, IANA zone; the
longest prefix of the endpoint's `Location.PostalCode` wins). docs/journeys.md says how to build one.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from clarion.channels.phone_numbers import validate_phone_number, zones_by_country
from clarion.messages.policy import zone_of
from clarion.store.endpoints import EndpointRow

PHONE_CHANNELS = ("SMS", "VOICE")
SAME_CLOCK_SAMPLES = 4 * 730  # every six hours for two years: a DST rule that differs shows within them


class PostalZoneError(ValueError):
    """The mapping file cannot be used (the message names the line)."""


def _postal_key(code: str) -> str:
    return "".join(code.split()).upper()


class PostalZones:
    """An operator's postal-code table: country → {postal code or prefix (spaces removed, upper case) → zone}."""

    def __init__(self, table: dict[str, dict[str, str]]) -> None:
        self.table = table
        self.longest = {country: max(map(len, codes), default=0) for country, codes in table.items()}

    @classmethod
    def load(cls, path: Path | None) -> PostalZones:
        """The CSV at `path` (none: an empty table); a row that is not `country,code,zone` with a two-letter
        country and a zone tzdata knows is refused, naming its line, so a bad file stops the process at start."""
        table: dict[str, dict[str, str]] = {}
        if path is None:
            return cls(table)
        with path.open(encoding="utf-8", newline="") as source:
            for number, row in enumerate(csv.reader(source), start=1):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) != 3 or len(row[0].strip()) != 2 or not _postal_key(row[1]):
                    raise PostalZoneError(f"{path}:{number}: expected country,postal code or prefix,zone")
                country, code, zone = row[0].strip().upper(), _postal_key(row[1]), row[2].strip()
                try:
                    ZoneInfo(zone)
                except (ZoneInfoNotFoundError, ValueError):
                    raise PostalZoneError(f"{path}:{number}: {zone!r} is not an IANA time zone") from None
                table.setdefault(country, {})[code] = zone
        return cls(table)

    def zone(self, country: str, postal_code: str) -> str | None:
        codes = self.table.get(country)
        if not codes:
            return None
        key = _postal_key(postal_code)
        for length in range(min(len(key), self.longest[country]), 0, -1):
            if zone := codes.get(key[:length]):
                return zone
        return None


@cache
def country_zone(country: str) -> str | None:
    """The zone of a country whose zones (tzdata's zone.tab) all keep the same clock from now on: Germany's Berlin
    and Busingen do, the United States' do not. None for a country with more than one clock, or unknown."""
    zones = zones_by_country().get(country)
    if not zones:
        return None
    first, others = ZoneInfo(zones[0]), [ZoneInfo(name) for name in zones[1:]]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for step in range(SAME_CLOCK_SAMPLES):
        moment = start + timedelta(hours=6 * step)
        offset = moment.astimezone(first).utcoffset()
        if any(moment.astimezone(other).utcoffset() != offset for other in others):
            return None
    return zones[0]


class ZoneEstimator:
    """An endpoint's zone name for a journey, or None (the journey then uses its Schedule.Timezone, or UTC)."""

    def __init__(self, postal: PostalZones) -> None:
        self.postal = postal

    def zone(self, row: EndpointRow, methods: list[str]) -> str | None:
        doc = msgspec.json.decode(row.doc)
        zone = (doc.get("Demographic") or {}).get("Timezone")
        if zone_of(zone) is not None or not methods:
            return zone
        location = doc.get("Location") or {}
        country = str(location.get("Country") or "").strip().upper() or None
        by_number = "PHONE_NUMBER" in methods and row.channel_type in PHONE_CHANNELS and row.address
        if by_number and (estimated := validate_phone_number(str(row.address), country).get("Timezone")):
            return str(estimated)
        if "POSTAL_CODE" in methods and country:
            postal_code = str(location.get("PostalCode") or "")
            return (self.postal.zone(country, postal_code) if postal_code else None) or country_zone(country)
        return zone
