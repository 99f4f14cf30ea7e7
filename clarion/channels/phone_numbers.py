"""PhoneNumberValidate: what can be told about a phone number without sending anything to it.

Pinpoint bought this from a carrier-data vendor; Clarion answers from libphonenumber's metadata (the `phonenumbers`
package), which knows numbering plans, number types, the original carrier of mobile ranges, a place name and time
zones. It cannot tell prepaid numbers (`PREPAID`) apart, nor give a county or ZIP code.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from clarion.errors import BadRequest

# Pinpoint's PhoneType names and their PhoneTypeCode.
PHONE_TYPE_CODES = {"MOBILE": 0, "LANDLINE": 1, "VOIP": 2, "INVALID": 3, "OTHER": 4, "PREPAID": 5}

# libphonenumber's types in Pinpoint's terms; every other valid type (toll-free, premium rate, shared cost,
# personal, pager, UAN, voicemail, unknown) is OTHER. FIXED_LINE_OR_MOBILE is what libphonenumber says for every
# number of the North American plan (and a few others), where ranges do not tell the two apart: it counts as MOBILE,
# so those numbers stay eligible for SMS, which is what callers of this operation mostly want to know.
_TYPES = {
    PhoneNumberType.MOBILE: "MOBILE",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "MOBILE",
    PhoneNumberType.FIXED_LINE: "LANDLINE",
    PhoneNumberType.VOIP: "VOIP",
}


def validate_phone_number(phone_number: str | None, iso_country_code: str | None) -> dict[str, Any]:
    """The NumberValidateResponse for a number, as wire members; members with nothing to say are left out.

    A number with a leading '+' is read as international. One without is read in the numbering plan of
    `iso_country_code` or, when no country is given, as international digits without the '+'. A number that cannot
    be read, or is not a valid number of its plan, answers PhoneType INVALID rather than an error, as Pinpoint did.
    """
    if phone_number is None or not phone_number.strip():
        raise BadRequest("NumberValidateRequest.PhoneNumber is required")
    region = iso_country_code.strip().upper() if iso_country_code and iso_country_code.strip() else None
    response: dict[str, Any] = {"OriginalPhoneNumber": phone_number}
    if iso_country_code is not None:
        response["OriginalCountryCodeIso2"] = iso_country_code
    number = _parse(phone_number, region)
    if number is None or not phonenumbers.is_valid_number(number):
        return response | _phone_type("INVALID")
    # Imported here, not with the module: the place names and carriers cost about 100 MB of memory and 0.6 s to load,
    # which a process that never validates a number (every send path imports this module) should not pay.
    from phonenumbers import carrier, geocoder

    country_code = phonenumbers.region_code_for_number(number)
    country = geocoder.country_name_for_number(number, "en")
    place = geocoder.description_for_number(number, "en")
    response |= {
        "CleansedPhoneNumberE164": phonenumbers.format_number(number, PhoneNumberFormat.E164),
        "CleansedPhoneNumberNational": phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        "CountryCodeNumeric": str(number.country_code),
        "Carrier": carrier.name_for_number(number, "en"),
        "Country": country,
        # The geocoder falls back to the country's name when it knows no place; that is no city.
        "City": place if place != country else "",
        "Timezone": _time_zone(number, country_code),
        **_phone_type(_TYPES.get(phonenumbers.number_type(number), "OTHER")),
    }
    if country:
        # No country name means the number is valid in several countries sharing the calling code (a North American
        # toll-free number, say) or in none (global services): then there is no one country to name.
        response["CountryCodeIso2"] = country_code
    return {name: value for name, value in response.items() if value not in ("", None)}


def strict_e164(address: str) -> str | None:
    """`address` when it is a valid number written in E.164 (+, country code, digits only), else None.

    Sends take addresses as Pinpoint did: already in E.164, no national forms or spaces to guess about.
    """
    number = _parse(address, None) if address.startswith("+") else None
    if number is None or not phonenumbers.is_valid_number(number):
        return None
    return address if phonenumbers.format_number(number, PhoneNumberFormat.E164) == address else None


def country_of(number: str) -> str | None:
    """The ISO country of a number written in E.164, or None: what SMS records and prices go by."""
    parsed = _parse(number, None) if number.startswith("+") else None
    return (phonenumbers.region_code_for_number(parsed) or None) if parsed is not None else None


def _parse(phone_number: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    text = phone_number.strip()
    if region is None and not text.startswith("+"):
        text = "+" + text
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _phone_type(name: str) -> dict[str, Any]:
    return {"PhoneType": name, "PhoneTypeCode": PHONE_TYPE_CODES[name]}


def _time_zone(number: phonenumbers.PhoneNumber, country_code: str | None) -> str | None:
    """One IANA zone for the number, or None when its range spans several zones of its country."""
    from phonenumbers import timezone  # loaded with the place names, on the first validation (above)

    zones = [zone for zone in timezone.time_zones_for_number(number) if zone != timezone.UNKNOWN_TIMEZONE]
    if len(zones) > 1:
        # A UK mobile range lists London with Guernsey, Jersey and the Isle of Man: keep the country's own zones.
        zones = [zone for zone in zones if country_code in _zone_countries().get(zone, ())]
    return zones[0] if len(zones) == 1 else None


@cache
def _zone_countries() -> dict[str, frozenset[str]]:
    """IANA zone → the ISO country codes it is listed under in tzdata's zone.tab."""
    countries: dict[str, set[str]] = {}
    for country, zones in zones_by_country().items():
        for zone in zones:
            countries.setdefault(zone, set()).add(country)
    return {zone: frozenset(codes) for zone, codes in countries.items()}


@cache
def zones_by_country() -> dict[str, tuple[str, ...]]:
    """ISO country code → its IANA zones, in the order of tzdata's zone.tab (the most populous region first)."""
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    zones: dict[str, list[str]] = {}
    for line in table.splitlines():
        if line and not line.startswith("#"):
            fields = line.split("\t")
            zones.setdefault(fields[0], []).append(fields[2])
    return {country: tuple(names) for country, names in zones.items()}
