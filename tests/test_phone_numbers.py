"""PhoneNumberValidate: the lookup itself, and through boto3 and the real server."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import ADMIN, RunningServer

from clarion.channels.phone_numbers import validate_phone_number
from clarion.config import AccessKey, Settings
from clarion.errors import BadRequest

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated


def test_us_number_counts_as_mobile() -> None:
    # North American ranges do not tell fixed lines from mobiles (FIXED_LINE_OR_MOBILE): Clarion says MOBILE.
    assert validate_phone_number("+1 (206) 555-0100", None) == {
        "OriginalPhoneNumber": "+1 (206) 555-0100",
        "CleansedPhoneNumberE164": "+12065550100",
        "CleansedPhoneNumberNational": "(206) 555-0100",
        "CountryCodeNumeric": "1",
        "CountryCodeIso2": "US",
        "Country": "United States",
        "City": "Washington State",
        "Timezone": "America/Los_Angeles",
        "PhoneType": "MOBILE",
        "PhoneTypeCode": 0,
    }


def test_korean_mobile() -> None:
    response = validate_phone_number("+82 10-1234-5678", "KR")
    assert response["PhoneType"] == "MOBILE"
    assert response["PhoneTypeCode"] == 0
    assert response["CleansedPhoneNumberE164"] == "+821012345678"
    assert response["CleansedPhoneNumberNational"] == "010-1234-5678"
    assert response["CountryCodeIso2"] == "KR"
    assert response["CountryCodeNumeric"] == "82"
    assert response["Country"] == "South Korea"
    assert response["Timezone"] == "Asia/Seoul"
    assert response["OriginalCountryCodeIso2"] == "KR"
    assert "City" not in response  # the geocoder knows only the country for this range


def test_national_numbers_read_in_the_given_country() -> None:
    landline = validate_phone_number("020 7946 0000", "GB")
    assert landline["CleansedPhoneNumberE164"] == "+442079460000"
    assert landline["PhoneType"] == "LANDLINE"
    assert landline["PhoneTypeCode"] == 1
    assert landline["City"] == "London"
    assert landline["CountryCodeIso2"] == "GB"
    assert landline["CountryCodeNumeric"] == "44"
    assert landline["Country"] == "United Kingdom"
    assert landline["OriginalCountryCodeIso2"] == "GB"

    mobile = validate_phone_number("07400 123456", "gb")
    assert mobile["CleansedPhoneNumberE164"] == "+447400123456"
    assert mobile["PhoneType"] == "MOBILE"
    assert mobile["Carrier"] == "Three"
    # The range is listed for London, Guernsey, Jersey and the Isle of Man: the country's own zone is kept.
    assert mobile["Timezone"] == "Europe/London"
    assert mobile["OriginalCountryCodeIso2"] == "gb"


def test_cleansing_to_e164() -> None:
    for written in ("+1 206 555 0100", "+1-206-555-0100", "+1.206.555.0100", " +1 (206) 555-0100 "):
        assert validate_phone_number(written, None)["CleansedPhoneNumberE164"] == "+12065550100", written
    # The country given does not override an international number.
    assert validate_phone_number("+12065550100", "GB")["CountryCodeIso2"] == "US"
    # Without a country, digits without '+' are read as international.
    assert validate_phone_number("12065550100", None)["CleansedPhoneNumberE164"] == "+12065550100"
    assert validate_phone_number("(206) 555-0100", "US")["CleansedPhoneNumberE164"] == "+12065550100"


def test_other_valid_types() -> None:
    toll_free = validate_phone_number("+1 800 555 0199", None)
    assert (toll_free["PhoneType"], toll_free["PhoneTypeCode"]) == ("OTHER", 4)
    assert toll_free["CleansedPhoneNumberE164"] == "+18005550199"
    # Valid in every country of the North American plan: no one country to name.
    assert "Country" not in toll_free
    assert "CountryCodeIso2" not in toll_free


@pytest.mark.parametrize(
    ("number", "country"),
    [("12345", "US"), ("not a number", None), ("+999 123", None), ("020 7946 0000", None), ("0207946", "ZZ")],
)
def test_invalid_numbers(number: str, country: str | None) -> None:
    response = validate_phone_number(number, country)
    assert response["PhoneType"] == "INVALID"
    assert response["PhoneTypeCode"] == 3
    assert response["OriginalPhoneNumber"] == number
    assert "CleansedPhoneNumberE164" not in response
    assert "Country" not in response


@pytest.mark.parametrize("number", [None, "", "   "])
def test_missing_number(number: str | None) -> None:
    with pytest.raises(BadRequest, match="PhoneNumber"):
        validate_phone_number(number, "US")


def test_through_boto3(client: Any) -> None:
    response = client.phone_number_validate(
        NumberValidateRequest={"PhoneNumber": "07400 123456", "IsoCountryCode": "GB"}
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    result = response["NumberValidateResponse"]
    assert result["CleansedPhoneNumberE164"] == "+447400123456"
    assert result["PhoneType"] == "MOBILE"
    assert result["PhoneTypeCode"] == 0
    assert result["Country"] == "United Kingdom"
    assert result["OriginalPhoneNumber"] == "07400 123456"
    assert result["OriginalCountryCodeIso2"] == "GB"

    invalid = client.phone_number_validate(NumberValidateRequest={"PhoneNumber": "12345"})["NumberValidateResponse"]
    assert invalid == {"OriginalPhoneNumber": "12345", "PhoneType": "INVALID", "PhoneTypeCode": 3}

    with pytest.raises(ClientError) as excinfo:
        client.phone_number_validate(NumberValidateRequest={"IsoCountryCode": "US"})
    assert excinfo.value.response["Error"]["Code"] == "BadRequestException"
    assert "PhoneNumber" in excinfo.value.response["Error"]["Message"]


def test_project_limited_key_may_validate(settings: Settings) -> None:
    scoped = AccessKey(access_key_id="AKIDPHONESCOPED00001", secret_access_key="scoped", projects=["0" * 32])
    server = RunningServer(settings.model_copy(update={"access_keys": [ADMIN, scoped]})).start()
    try:
        response = server.client(scoped).phone_number_validate(NumberValidateRequest={"PhoneNumber": "+821012345678"})
        assert response["NumberValidateResponse"]["PhoneType"] == "MOBILE"
    finally:
        server.stop()
