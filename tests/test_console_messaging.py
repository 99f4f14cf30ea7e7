"""The console's messaging forms in a real browser: SMS, voice and APNs channels (the token key written, never read
back), and a campaign wizard on SMS and push with a second treatment, holdout and channel fallback, checked against
the campaign the API stored. One server and one browser for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer
from console_browser import ConsolePage, console_server, english_strings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(Path(tmp_path_factory.mktemp("messaging"))) as running:
        yield running


def test_an_admin_sets_up_sms_voice_and_apns(console: ConsolePage, server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "channels"})["ApplicationResponse"]["Id"]
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    console.sign_in("ada", f"apps/{app_id}/channels")
    page = console.page
    sms = page.get_by_test_id("channel-sms")
    sms.get_by_label("Sender ID").fill("CLARION")
    sms.get_by_role("button", name="Save channel").click()
    sms.get_by_text("Saved").wait_for()
    voice = page.get_by_test_id("channel-voice")
    voice.get_by_role("button", name="Save channel").click()
    voice.get_by_text("Saved").wait_for()
    apns = page.get_by_test_id("channel-apns")
    apns.get_by_label("Bundle ID").fill("com.example.shop")
    apns.get_by_label("Team ID").fill("TEAM123456")
    apns.get_by_label("Key ID").fill("KEY1234567")
    apns.get_by_label("Token key (.p8 file contents)").fill(key.decode())
    apns.get_by_role("button", name="Save channel").click()
    apns.get_by_text("Credentials are stored and never shown").wait_for()
    assert apns.get_by_label("Token key (.p8 file contents)").input_value() == ""
    console.screenshot("channels-more")

    assert client.get_sms_channel(ApplicationId=app_id)["SMSChannelResponse"]["SenderId"] == "CLARION"
    assert client.get_voice_channel(ApplicationId=app_id)["VoiceChannelResponse"]["Enabled"] is True
    stored = client.get_apns_channel(ApplicationId=app_id)["APNSChannelResponse"]
    assert stored["HasTokenKey"] is True and stored["DefaultAuthenticationMethod"] == "TOKEN"


def test_a_marketer_makes_an_sms_and_push_campaign_with_two_treatments_and_fallback(
    console: ConsolePage, server: RunningServer
) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "sale"})["ApplicationResponse"]["Id"]
    client.create_segment(
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": "everyone", "Dimensions": {"Demographic": {"Channel": {"Values": ["SMS"]}}}},
    )
    console.sign_in("mark", f"apps/{app_id}/campaigns")
    page = console.page
    page.get_by_label("Campaign name").fill("Spring sale")
    page.get_by_role("combobox", name="Segment").click()
    page.get_by_role("option", name="everyone").click()
    page.get_by_role("button", name="Next").click()

    page.locator(".mantine-MultiSelect-input").click()  # the field, around the chosen channels' pills
    page.get_by_role("option", name="SMS").click()
    page.get_by_role("option", name="Push").click()
    page.keyboard.press("Escape")
    page.locator(".mantine-Pill-root").filter(has_text="Email").locator("button").click()
    page.get_by_role("checkbox", name="Reach each person once").check()
    page.get_by_label("Text message").fill("Sale starts {{Attributes.day}}")
    page.get_by_label("Notification text").fill("Sale!")
    page.get_by_role("button", name="+ Add treatment").click()
    page.get_by_label("Share of the audience (percent)").fill("30")
    page.get_by_label("Text message").fill("Last chance")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("combobox", name="When").click()
    page.get_by_role("option", name="At a set time").click()
    page.get_by_label("Start time (ISO 8601)").fill("2030-01-01T09:00:00Z")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Holdout (percent)").fill("10")
    page.get_by_test_id("default-share").filter(has_text="Treatment A gets 60% of the audience.").wait_for()
    console.screenshot("campaigns-treatments")
    page.get_by_role("button", name="Create campaign").click()
    page.get_by_test_id("campaigns").get_by_role("cell", name="Spring sale").wait_for()

    [listed] = client.get_campaigns(ApplicationId=app_id)["CampaignsResponse"]["Item"]
    status, campaign = server.signed_request("GET", f"/v1/apps/{app_id}/campaigns/{listed['Id']}", {})
    assert status == 200
    push = {"Body": "Sale!", "Action": "OPEN_APP"}
    assert campaign["MessageConfiguration"] == {
        "SMSMessage": {"Body": "Sale starts {{Attributes.day}}", "MessageType": "PROMOTIONAL"},
        "GCMMessage": push,
        "APNSMessage": push,
    }
    [treatment] = campaign["AdditionalTreatments"]
    assert treatment["SizePercent"] == 30 and treatment["TreatmentName"] == "B"
    assert treatment["MessageConfiguration"]["SMSMessage"]["Body"] == "Last chance"
    assert campaign["HoldoutPercent"] == 10 and campaign["TreatmentName"] == "A"
    assert campaign["ClarionChannelOrder"] == ["SMS", "GCM", "APNS"]
    assert campaign["Schedule"]["StartTime"].startswith("2030-01-01T09:00:00")


def test_a_marketer_writes_an_in_app_template_and_sees_its_sketch(console: ConsolePage, server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "in-app"})["ApplicationResponse"]["Id"]
    console.sign_in("mark", f"apps/{app_id}/templates")
    page = console.page
    page.get_by_label("Template name").fill("spring-banner")
    page.get_by_role("combobox", name="Channel").click()
    page.get_by_role("option", name="In-app").click()
    page.get_by_role("button", name="New template").click()
    page.get_by_role("combobox", name="Layout").click()
    page.get_by_role("option", name="Top banner").click()
    page.get_by_label("Heading").fill("Spring sale")
    page.get_by_label("Message", exact=True).fill("Half price today")
    page.get_by_label("Button text").fill("Shop")
    page.get_by_label("Button link").fill("https://shop.example/spring")
    sketch = page.get_by_test_id("inapp-sketch")
    sketch.get_by_text("Half price today").wait_for()
    page.get_by_test_id("template-preview").get_by_text("as a Top banner").wait_for()
    page.get_by_role("button", name="Create template").click()
    page.get_by_text("Saved.").wait_for()
    console.screenshot("templates-inapp")
    stored = client.get_in_app_template(TemplateName="spring-banner")["InAppTemplateResponse"]
    assert stored["Layout"] == "TOP_BANNER"
    [content] = stored["Content"]
    assert content["HeaderConfig"]["Header"] == "Spring sale" and content["BodyConfig"]["Body"] == "Half price today"
    assert content["PrimaryBtn"]["DefaultConfig"] == {
        "Text": "Shop",
        "ButtonAction": "LINK",
        "Link": "https://shop.example/spring",
    }


def test_the_new_editors_in_korean(korean_console: ConsolePage, server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "편집기"})["ApplicationResponse"]["Id"]
    segment = client.create_segment(
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": "모두", "Dimensions": {"Demographic": {"Channel": {"Values": ["SMS"]}}}},
    )["SegmentResponse"]["Id"]
    journey = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "welcome",
            "StartCondition": {"SegmentStartCondition": {"SegmentId": segment}},
            "Activities": {"wait": {"Wait": {"WaitTime": {"WaitFor": "PT1H"}}}},
            "StartActivity": "wait",
        },
    )["JourneyResponse"]["Id"]
    english = english_strings("campaigns", "journeys", "templates", "channels", "users", "projects")
    page = korean_console.page

    def no_english(name: str) -> None:
        shown = page.locator("body").inner_text()
        assert [text for text in english if text in shown] == [], name
        korean_console.screenshot(f"ko-{name}")

    korean_console.sign_in("ada", f"apps/{app_id}/campaigns")
    page.get_by_label("캠페인 이름").fill("봄")
    page.get_by_role("combobox", name="세그먼트").click()
    page.get_by_role("option", name="모두").click()
    page.get_by_role("button", name="다음").click()
    page.locator(".mantine-MultiSelect-input").click()
    page.get_by_role("option", name="푸시").click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="+ 처리군 추가").click()
    page.get_by_label("알림 내용").wait_for()
    no_english("campaign-message")

    korean_console.open(f"apps/{app_id}/journeys/{journey}")
    page.get_by_test_id("add-activity").wait_for()
    page.get_by_test_id("activity-wait").wait_for()
    no_english("journey-editor")

    korean_console.open(f"apps/{app_id}/templates")
    page.get_by_label("템플릿 이름").fill("banner")
    page.get_by_role("combobox", name="채널").click()
    page.get_by_role("option", name="인앱").click()
    page.get_by_role("button", name="새 템플릿").click()
    page.get_by_test_id("inapp-sketch").wait_for()
    no_english("templates-inapp")
    assert page.evaluate("window.clarionMissingTranslations ?? []") == []
