"""Campaigns built in the console's wizard: one runs to COMPLETED through a local SMTP relay (aiosmtpd), its progress
shown live; an A/B campaign sends each treatment its own email through the relay; in-app and custom-channel messages
with a hook are written as the API holds them. One server (with its relay) for the module."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from console_browser import PASSWORD, ConsolePage, chromium, console_server, english_strings, keep_for_docs
from pinpoint_calls import project_with_email
from smtp_relay import Relay, start_relay

from clarion.channels.config import DeliverySettings, SmtpSettings


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    handler = Relay()
    controller, port = start_relay(handler)
    handler.port = port  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, relay: Relay) -> Iterator[RunningServer]:
    smtp = SmtpSettings(host="127.0.0.1", port=relay.port, security="none")  # type: ignore[attr-defined]
    with console_server(Path(tmp_path_factory.mktemp("campaigns")), delivery=DeliverySettings(smtp=smtp)) as running:
        yield running


def delivered(relay: Relay, addresses: list[str]) -> list[Any]:
    """The relay's messages to these addresses (the module's tests share it), once each has one or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        ours = [item for item in relay.received if item.message()["To"] in addresses]
        if len(ours) >= len(addresses) or time.monotonic() > deadline:
            return ours
        time.sleep(0.1)


def audience(page: Any, name: str, segment: str) -> None:
    """The wizard's first step: the campaign's name and segment, then on to the message."""
    page.get_by_label("Campaign name").fill(name)
    page.get_by_role("combobox", name="Segment").click()
    page.get_by_role("option", name=segment).click()
    page.get_by_role("button", name="Next").click()


def test_a_campaign_made_in_the_wizard_runs_to_completed_through_the_relay(server: RunningServer, relay: Relay) -> None:
    client = server.client()
    app_id, _ = project_with_email(client, "newsletter", 3, prefix="reader-")
    readers = [f"reader-{n}@example.org" for n in range(3)]
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("mark", f"apps/{app_id}/campaigns")
        page.get_by_text("No campaigns yet.").wait_for()
        audience(page, "December news", "all")
        page.get_by_label("Subject").fill("News for {{Address}}")
        page.get_by_label("HTML or MJML body").fill("<p>Hello</p>")
        page.get_by_role("button", name="Next").click()
        page.get_by_role("button", name="Next").click()  # now, in the server's time
        page.get_by_role("button", name="Create campaign").click()
        progress = page.get_by_test_id("campaign-progress")
        progress.get_by_test_id("campaign-state").filter(has_text="Completed").wait_for(timeout=30_000)
        progress.get_by_text("3 of 3 sent").wait_for()
        console.screenshot("campaigns")
        keep_for_docs("campaigns", "console-campaigns.png")
        console.close()
        assert console.errors == []
    received = delivered(relay, readers)
    assert sorted(item.message()["To"] for item in received) == readers
    subjects: list[Any] = sorted(item.message()["Subject"] for item in received)
    assert subjects == [f"News for {address}" for address in readers]


def test_an_ab_campaign_sends_each_treatment_its_own_email(server: RunningServer, relay: Relay) -> None:
    """Treatment B gets half the audience and its own subject and body; every reader gets exactly one of the two."""
    client = server.client()
    app_id, _ = project_with_email(client, "ab", 10, prefix="ab-")
    readers = sorted(f"ab-{n}@example.org" for n in range(10))
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("mark", f"apps/{app_id}/campaigns")
        audience(page, "Subject test", "all")
        page.get_by_label("Subject").fill("Version A")
        page.get_by_label("HTML or MJML body").fill("<p>Offer A</p>")
        page.get_by_role("button", name="+ Add treatment").click()
        page.get_by_label("Share of the audience (percent)").fill("50")
        page.get_by_label("Subject").fill("Version B")
        page.get_by_label("HTML or MJML body").fill("<p>Offer B</p>")
        page.get_by_role("button", name="Next").click()
        page.get_by_role("button", name="Next").click()
        page.get_by_test_id("default-share").filter(has_text="Treatment A gets 50% of the audience.").wait_for()
        page.get_by_role("button", name="Create campaign").click()
        progress = page.get_by_test_id("campaign-progress")
        progress.get_by_test_id("campaign-state").filter(has_text="Completed").wait_for(timeout=30_000)
        console.screenshot("campaigns-ab")
        console.close()
        assert console.errors == []
    by_subject: dict[str, set[str]] = {}
    for item in delivered(relay, readers):
        by_subject.setdefault(item.message()["Subject"], set()).add(item.message()["To"])
    assert set(by_subject) == {"Version A", "Version B"}, by_subject
    assert sorted(by_subject["Version A"] | by_subject["Version B"]) == readers
    assert not by_subject["Version A"] & by_subject["Version B"]
    [campaign] = client.get_campaigns(ApplicationId=app_id)["CampaignsResponse"]["Item"]
    [treatment] = campaign["AdditionalTreatments"]
    assert treatment["MessageConfiguration"]["EmailMessage"]["HtmlBody"] == "<p>Offer B</p>"
    assert campaign["MessageConfiguration"]["EmailMessage"]["HtmlBody"] == "<p>Offer A</p>"


def test_in_app_and_custom_channel_messages_with_a_hook(server: RunningServer) -> None:
    """The wizard's in-app message (shown on an app event), a custom channel limited to push endpoint types, and a
    filtering hook, as the campaign the API holds."""
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "in-app"})["ApplicationResponse"]["Id"]
    client.create_segment(
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": "players", "Dimensions": {"Demographic": {"Channel": {"Values": ["GCM"]}}}},
    )
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("mark", f"apps/{app_id}/campaigns")
        audience(page, "Level up", "players")
        page.locator(".mantine-MultiSelect-input").first.click()
        page.get_by_role("option", name="In-app").click()
        page.get_by_role("option", name="Custom channel").click()
        page.keyboard.press("Escape")
        page.locator(".mantine-Pill-root").filter(has_text="Email").locator("button").click()
        page.get_by_label("Custom delivery URL", exact=True).fill("https://hooks.example.com/deliver")
        types = page.get_by_role("combobox", name="Endpoint types")
        page.locator(".mantine-MultiSelect-input").filter(has=types).click()  # the field around its pills
        page.get_by_role("option", name="FCM (Android)").click()
        page.get_by_role("option", name="APNs (iOS)", exact=True).click()
        page.keyboard.press("Escape")
        page.get_by_label("Heading").fill("Level 10!")
        page.get_by_label("Message", exact=True).fill("You unlocked a badge")
        page.get_by_label("Data sent to the custom delivery URL").fill('{"badge": 10}')
        page.get_by_role("button", name="Next").click()
        page.get_by_label("Show when the app reports the event").fill("level_up")
        page.get_by_role("button", name="Next").click()
        page.get_by_role("combobox", name="Campaign hook").click()
        page.get_by_role("option", name="Filter the endpoints").click()
        page.get_by_label("Hook URL").fill("https://hooks.example.com/filter")
        console.screenshot("campaigns-in-app")
        page.get_by_role("button", name="Create campaign").click()
        page.get_by_test_id("campaigns").get_by_role("cell", name="Level up").wait_for()
        console.close()
        assert console.errors == []
    [campaign] = client.get_campaigns(ApplicationId=app_id)["CampaignsResponse"]["Item"]
    assert campaign["Schedule"]["Frequency"] == "IN_APP_EVENT"
    assert campaign["Schedule"]["EventFilter"]["Dimensions"]["EventType"]["Values"] == ["level_up"]
    in_app = campaign["MessageConfiguration"]["InAppMessage"]
    assert in_app["Content"][0]["HeaderConfig"]["Header"] == "Level 10!"
    assert in_app["Content"][0]["BodyConfig"]["Body"] == "You unlocked a badge"
    assert campaign["MessageConfiguration"]["CustomMessage"]["Data"] == '{"badge": 10}'
    assert campaign["CustomDeliveryConfiguration"] == {
        "DeliveryUri": "https://hooks.example.com/deliver",
        "EndpointTypes": ["GCM", "APNS"],
    }
    assert campaign["Hook"] == {"Mode": "FILTER", "WebUrl": "https://hooks.example.com/filter"}


def test_the_new_message_and_hook_forms_in_korean(server: RunningServer) -> None:
    client = server.client()
    app_id, _ = project_with_email(client, "인앱", 0)
    english = english_strings("campaigns", "templates", "journeys", "channel")
    with chromium() as browser:
        console = ConsolePage(browser, server, locale="ko-KR")
        page = console.page

        def no_english(name: str) -> None:
            shown = page.locator("body").inner_text()
            assert [text for text in english if text in shown] == [], name
            console.screenshot(f"ko-{name}")

        console.open(f"apps/{app_id}/campaigns")
        page.get_by_label("사용자 이름").fill("mark")
        page.get_by_role("textbox", name="비밀번호").fill(PASSWORD)
        page.get_by_role("button", name="로그인").click()
        page.get_by_label("캠페인 이름").fill("레벨")
        page.get_by_role("combobox", name="세그먼트").click()
        page.get_by_role("option", name="all").click()
        page.get_by_role("button", name="다음").click()
        page.locator(".mantine-MultiSelect-input").first.click()
        page.get_by_role("option", name="인앱").click()
        page.get_by_role("option", name="사용자 지정 채널").click()
        page.keyboard.press("Escape")
        page.locator(".mantine-Pill-root").filter(has_text="이메일").locator("button").click()
        page.get_by_role("group", name="인앱").get_by_label("제목").fill("레벨 10")
        page.get_by_label("사용자 지정 전달 URL", exact=True).fill("https://hooks.example.com/deliver")
        no_english("campaign-in-app")
        page.get_by_role("button", name="다음").click()
        page.get_by_label("앱이 이벤트를 보고하면 표시").wait_for()
        page.get_by_role("button", name="다음").click()
        page.get_by_role("combobox", name="캠페인 훅").click()
        page.get_by_role("option", name="엔드포인트 거르기").click()
        page.get_by_label("훅 URL").wait_for()
        no_english("campaign-hook")
        assert page.evaluate("window.clarionMissingTranslations ?? []") == []
        console.close()
        assert console.errors == []
