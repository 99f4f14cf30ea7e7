"""Building a journey on the console's canvas in a real browser: a new DRAFT, activities added and connected by
dragging, the server's refusal of a bad draft shown as it is, then activated (its counts on the canvas) and
cancelled — each step checked against the journey the API holds. One server and one browser for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from console_browser import ConsolePage, chromium, console_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(Path(tmp_path_factory.mktemp("journeys"))) as running:
        yield running


def add(page: Any, activity_id: str, kind: str, value_label: str, value: str) -> None:
    form = page.get_by_test_id("add-activity")
    form.get_by_label("Activity ID").fill(activity_id)
    form.get_by_role("combobox", name="Activity", exact=True).click()
    page.get_by_role("option", name=kind).click()
    form.get_by_label(value_label).fill(value)
    form.get_by_role("button", name="Add activity").click()
    page.get_by_test_id(f"activity-{activity_id}").wait_for()


def connect(page: Any, source: str, target: str) -> None:
    page.locator(f'.react-flow__node[data-id="{source}"] .react-flow__handle.source').drag_to(
        page.locator(f'.react-flow__node[data-id="{target}"] .react-flow__handle.target')
    )


def test_a_marketer_builds_validates_activates_and_cancels_a_journey(server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "journeys"})["ApplicationResponse"]["Id"]
    client.update_endpoint(
        ApplicationId=app_id, EndpointId="e1", EndpointRequest={"ChannelType": "EMAIL", "Address": "e1@example.com"}
    )
    client.create_segment(
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": "new people", "Dimensions": {"Demographic": {"Channel": {"Values": ["EMAIL"]}}}},
    )
    client.create_email_template(
        TemplateName="welcome", EmailTemplateRequest={"Subject": "Welcome", "HtmlPart": "<p>Hello</p>"}
    )
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("mark", f"apps/{app_id}/journeys")
        page.get_by_label("Name").fill("Onboarding")
        page.get_by_role("combobox", name="Segment").click()
        page.get_by_role("option", name="new people").click()
        page.get_by_role("button", name="Create journey").click()
        page.get_by_text("This journey has no activities.").wait_for()
        journey_id = page.url.rsplit("/", 1)[1]

        add(page, "welcome", "Send an email", "Template name", "welcome")
        add(page, "pause", "Wait", "Wait for (ISO 8601)", "soon")
        connect(page, "welcome", "pause")
        page.locator(".react-flow__edge").first.wait_for()
        page.get_by_role("button", name="Save draft").click()
        refused = page.get_by_role("alert").filter(has_text="pause")
        refused.wait_for()
        console.errors.clear()  # the browser logs the refused call itself

        page.get_by_test_id("activity-pause").click()
        page.get_by_role("button", name="Remove activity").click()
        add(page, "pause", "Wait", "Wait for (ISO 8601)", "PT1H")
        connect(page, "welcome", "pause")
        page.locator(".react-flow__edge").first.wait_for()
        page.get_by_role("button", name="Save draft").click()
        page.get_by_test_id("journey-state").filter(has_text="Draft").wait_for()
        refused.wait_for(state="detached")
        console.screenshot("journey-builder")
        stored = client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]
        assert stored["StartActivity"] == "welcome"
        assert stored["Activities"]["welcome"]["EMAIL"] == {"TemplateName": "welcome", "NextActivity": "pause"}
        assert stored["Activities"]["pause"]["Wait"] == {"WaitTime": {"WaitFor": "PT1H"}}

        page.get_by_role("button", name="Activate").click()
        # It reads its segment once (no RefreshFrequency), so it closes to newcomers at once; its one participant
        # waits an hour at `pause`.
        page.get_by_test_id("metric-pause-ENTERED").wait_for()
        page.get_by_test_id("journey-state").filter(has_text="Closed").wait_for()
        console.screenshot("journey-running")
        page.get_by_role("button", name="Cancel journey").click()
        page.get_by_test_id("journey-state").filter(has_text="Cancelled").wait_for()
        assert client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]["State"] == (
            "CANCELLED"
        )
        console.close()
        assert console.errors == []


def test_the_journeys_list_pages_and_searches(server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "many journeys"})["ApplicationResponse"]["Id"]
    for n in range(51):
        client.create_journey(ApplicationId=app_id, WriteJourneyRequest={"Name": f"journey-{n:02}"})
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("ann", f"apps/{app_id}/journeys")
        rows = page.get_by_test_id("journeys").locator("tbody tr")
        rows.nth(49).wait_for()
        assert rows.count() == 50
        page.get_by_role("button", name="Load more").click()
        rows.nth(50).wait_for()
        assert page.get_by_role("button", name="Load more").count() == 0
        page.get_by_role("textbox", name="Search").fill("journey-5")
        page.get_by_role("link", name="journey-50").wait_for()
        assert rows.count() == 1
        console.close()
        assert console.errors == []
