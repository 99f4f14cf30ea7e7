"""An endpoint's time zone for a journey: Demographic.Timezone, the phone number, then the postal code (by country
from tzdata's zone tables, else from the operator's postal-code file). Pure functions: no store, no server."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from clarion.journeys.zones import PostalZoneError, PostalZones, ZoneEstimator, country_zone
from clarion.store.endpoints import EndpointRow

POSTAL_CSV = """# country,postal code or prefix,zone
US,9,America/Los_Angeles
US,100,America/New_York
US,97,America/Los_Angeles
US,979,America/Boise
CA,m5v,America/Toronto
"""


def endpoint(channel: str = "EMAIL", address: str = "a@example.org", **doc: Any) -> EndpointRow:
    return EndpointRow(
        "app", "e", "e", channel, address, "ACTIVE", "NONE", None, 0, "2026-01-01", "2026-01-01", json.dumps(doc)
    )


@pytest.fixture
def postal(tmp_path: Path) -> PostalZones:
    path = tmp_path / "postal.csv"
    path.write_text(POSTAL_CSV)
    return PostalZones.load(path)


def test_a_country_resolves_alone_when_its_zones_keep_one_clock() -> None:
    assert country_zone("DE") == "Europe/Berlin"  # Berlin and Busingen: one clock
    assert country_zone("JP") == "Asia/Tokyo"
    assert country_zone("US") is None and country_zone("AU") is None  # several clocks: the postal file decides
    assert country_zone("ZZ") is None


def test_the_longest_prefix_of_the_postal_code_wins(postal: PostalZones) -> None:
    assert postal.zone("US", "10001") == "America/New_York"
    assert postal.zone("US", "97201") == "America/Los_Angeles"
    assert postal.zone("US", "97902") == "America/Boise"
    assert postal.zone("US", "90210-1234") == "America/Los_Angeles"
    assert postal.zone("CA", "M5V 3L9") == "America/Toronto"  # spaces and case do not matter
    assert postal.zone("US", "30301") is None and postal.zone("FR", "75001") is None


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("US,100", "expected country,postal code or prefix,zone"),
        ("USA,100,America/New_York", "expected country,postal code or prefix,zone"),
        ("US, ,America/New_York", "expected country,postal code or prefix,zone"),
        ("US,100,America/Gotham", "'America/Gotham' is not an IANA time zone"),
    ],
)
def test_a_bad_row_of_the_postal_file_is_refused_naming_its_line(tmp_path: Path, line: str, error: str) -> None:
    path = tmp_path / "postal.csv"
    path.write_text(f"US,9,America/Los_Angeles\n{line}\n")
    with pytest.raises(PostalZoneError, match=f"postal.csv:2: {error}"):
        PostalZones.load(path)


def test_the_demographic_zone_then_the_phone_number_then_the_postal_code(postal: PostalZones) -> None:
    zones = ZoneEstimator(postal)
    both = ["POSTAL_CODE", "PHONE_NUMBER"]  # the order written does not matter: the number is asked first
    in_new_york = {"Location": {"Country": "US", "PostalCode": "10001"}}
    german_mobile = endpoint("SMS", "+4915112345678", **in_new_york)
    assert zones.zone(german_mobile, both) == "Europe/Berlin"
    assert zones.zone(german_mobile, ["POSTAL_CODE"]) == "America/New_York"
    assert zones.zone(german_mobile, []) is None  # no estimation asked for
    own = endpoint("SMS", "+4915112345678", Demographic={"Timezone": "Asia/Tokyo"}, **in_new_york)
    assert zones.zone(own, both) == "Asia/Tokyo"
    # A number without '+' is read in the plan of Location.Country, as Pinpoint reads Address with it.
    assert zones.zone(endpoint("SMS", "0312345678", Location={"Country": "JP"}), ["PHONE_NUMBER"]) == "Asia/Tokyo"
    # An email endpoint has no number: its postal code, or its country alone where that has one clock.
    assert zones.zone(endpoint(Location={"Country": "US", "PostalCode": "97902"}), both) == "America/Boise"
    assert zones.zone(endpoint(Location={"Country": "de"}), ["POSTAL_CODE"]) == "Europe/Berlin"
    assert zones.zone(endpoint(Location={"Country": "US", "PostalCode": "30301"}), both) is None
    assert zones.zone(endpoint(Location={"Country": "US"}), both) is None


def test_local_time_bounds_follow_each_endpoints_clock_across_a_dst_change(postal: PostalZones) -> None:
    """With LocalTime, Schedule.StartTime and EndTime are wall-clock times on the endpoint's clock: 09:00 in New York
    is 14:00Z the day before summer time begins (2026-03-08) and 13:00Z that day; a +1 212 number without a zone is
    estimated to New York; with no zone at all the schedule's own Timezone is kept."""
    from clarion.journeys.engine import schedule_bound

    zones = ZoneEstimator(postal)
    new_york = endpoint(Demographic={"Timezone": "America/New_York"})
    by_number = endpoint("SMS", "+12125550123")
    nowhere = endpoint()

    def start(day: str, row: EndpointRow, zone: str = "UTC", offset: str = "Z") -> str:
        """The StartTime 09:00 as written in `zone` (`offset`), on `row`'s clock."""
        definition = {
            "LocalTime": True,
            "Schedule": {"StartTime": f"{day}T09:00:00{offset}", "Timezone": zone},
            "TimezoneEstimationMethods": ["PHONE_NUMBER"],
        }
        bound = schedule_bound(definition, "StartTime", row, zones)
        assert bound is not None
        return bound.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")

    assert start("2026-03-07", new_york) == "2026-03-07T14:00Z"  # EST, UTC-5
    assert start("2026-03-08", new_york) == "2026-03-08T13:00Z"  # EDT from 02:00 that day, UTC-4
    assert start("2026-11-01", by_number) == "2026-11-01T14:00Z"  # EST again from 02:00 that day
    # The wall-clock time is read in Schedule.Timezone; an endpoint without a zone of its own keeps that one.
    assert start("2026-03-08", new_york, "UTC+09", "+09:00") == "2026-03-08T13:00Z"
    assert start("2026-03-08", nowhere, "UTC+09", "+09:00") == "2026-03-08T00:00Z"
