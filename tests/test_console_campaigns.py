"""A campaign built in the console's wizard runs to COMPLETED through a local SMTP relay (aiosmtpd), its progress
shown live; one server (with its relay) and one browser for the module."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from console_browser import ConsolePage, chromium, console_server
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


def test_a_campaign_made_in_the_wizard_runs_to_completed_through_the_relay(server: RunningServer, relay: Relay) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "newsletter"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    readers = [f"reader-{n}@example.org" for n in range(3)]
    client.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [{"Id": f"r{n}", "ChannelType": "EMAIL", "Address": a} for n, a in enumerate(readers)]
        },
    )
    client.create_segment(
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": "readers", "Dimensions": {"Demographic": {"Channel": {"Values": ["EMAIL"]}}}},
    )
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("mark", f"apps/{app_id}/campaigns")
        page.get_by_text("No campaigns yet.").wait_for()
        page.get_by_label("Campaign name").fill("December news")
        page.get_by_role("combobox", name="Segment").click()
        page.get_by_role("option", name="readers").click()
        page.get_by_role("button", name="Next").click()
        page.get_by_label("Subject").fill("News for {{Address}}")
        page.get_by_label("HTML or MJML body").fill("<p>Hello</p>")
        page.get_by_role("button", name="Next").click()
        page.get_by_role("button", name="Next").click()  # now, in the server's time
        page.get_by_role("button", name="Create campaign").click()
        progress = page.get_by_test_id("campaign-progress")
        progress.get_by_test_id("campaign-state").filter(has_text="Completed").wait_for(timeout=30_000)
        progress.get_by_text("3 of 3 sent").wait_for()
        console.screenshot("campaigns")
        console.close()
        assert console.errors == []
    deadline = time.monotonic() + 10
    while sorted(relay.recipients()) != readers and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(relay.recipients()) == readers
    subjects: list[Any] = sorted(item.message()["Subject"] for item in relay.received)
    assert subjects == [f"News for {address}" for address in readers]
