"""Building a journey on the console's canvas in a real browser: a new DRAFT, a split and a wait added, configured
and connected (by dragging a way out's handle, and from the keyboard), the server's refusals shown on the fields they
name, a box moved and kept, then activated (its counts on the canvas), paused, refused a resume within five minutes,
resumed and cancelled — each step checked against the journey the API holds. One server for the module."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from console_browser import (
    PASSWORD,
    ConsolePage,
    chromium,
    console_server,
    english_strings,
    keep_for_docs,
    require_browser,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # The test moves the server's clock past the five minutes a paused journey waits before it may resume; boto3
    # signs with the real clock.
    tmp = Path(tmp_path_factory.mktemp("journeys"))
    with console_server(tmp, max_clock_skew_seconds=86_400) as running:
        yield running


def project_with_segment(client: Any, name: str, segment_name: str) -> tuple[str, str]:
    """A project and a segment of its email endpoints: (the project's id, the segment's)."""
    app_id = client.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
    segment = client.create_segment(
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": segment_name, "Dimensions": {"Demographic": {"Channel": {"Values": ["EMAIL"]}}}},
    )["SegmentResponse"]["Id"]
    return app_id, segment


def add(page: Any, activity_id: str, kind: str) -> Any:
    """Add an activity of `kind` (its label); its form opens, and is answered."""
    form = page.get_by_test_id("add-activity")
    form.get_by_label("Activity ID").fill(activity_id)
    form.get_by_role("combobox", name="Activity", exact=True).click()
    page.get_by_role("option", name=kind, exact=True).click()
    form.get_by_role("button", name="Add activity").click()
    page.get_by_test_id(f"activity-{activity_id}").wait_for()
    return page.get_by_test_id(f"activity-form-{activity_id}")


def drag(page: Any, source: str, target: str, slot: str | None = None) -> None:
    """Connect a way out by dragging from its handle (the only one, or the one of `slot`) to the next activity."""
    handle = f'[data-handleid="{slot}"]' if slot else ""
    page.locator(f'.react-flow__node[data-id="{source}"] .react-flow__handle.source{handle}').drag_to(
        page.locator(f'.react-flow__node[data-id="{target}"] .react-flow__handle.target')
    )


def pick(page: Any, option: str) -> None:
    """Highlight the one option the typed text left in an open Mantine select and choose it with the keyboard.

    Mantine re-aims the highlight on a zero-delay timer when its list opens; under load that timer can run after the
    arrow key and leave Enter choosing nothing. The page's pending timers run first, as they would between a person's
    keystrokes."""
    page.get_by_role("option", name=option, exact=True).wait_for()  # the list has caught up with the typing
    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")


def choose(page: Any, field: Any, option: str) -> None:
    """Pick an option of a Mantine select by typing and the keyboard alone."""
    field.fill(option)
    pick(page, option)


def test_a_marketer_builds_a_split_and_a_wait_runs_pauses_and_resumes_the_journey(server: RunningServer) -> None:
    client = server.client()
    app_id, _ = project_with_segment(client, "journeys", "new people")
    for n in (1, 2):
        client.update_endpoint(
            ApplicationId=app_id,
            EndpointId=f"e{n}",
            EndpointRequest={"ChannelType": "EMAIL", "Address": f"e{n}@example.com"},
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

        welcome = add(page, "welcome", "Send an email")
        welcome.get_by_label("Template name").fill("welcome")
        split = add(page, "split", "Yes/no split")
        split.get_by_role("combobox", name="Condition 1").click()
        page.get_by_role("option", name="The participant is in a segment").click()
        split.get_by_role("combobox", name="Segment").click()
        page.get_by_role("option", name="new people").click()
        pause = add(page, "pause", "Wait")
        pause.get_by_label("Duration (ISO 8601)").fill("soon")
        # welcome -> split from the keyboard, in welcome's form; split's "yes" -> pause by dragging its handle.
        page.get_by_test_id("activity-welcome").click()
        choose(page, welcome.get_by_role("combobox", name="Next activity"), "split")
        drag(page, "split", "pause", "yes")
        page.locator('.react-flow__edge[data-id="split-yes"]').wait_for(state="attached")

        # The server's refusal lands on the field it names, in the activity's form, which opens.
        page.get_by_test_id("activity-split").click()
        page.get_by_role("button", name="Save draft").click()
        refused = pause.get_by_label("Duration (ISO 8601)")
        pause.get_by_text("Activities.pause.Wait.WaitTime.WaitFor: 'soon' is not an ISO 8601 duration").wait_for()
        assert refused.get_attribute("aria-invalid") == "true"
        console.errors.clear()  # the browser logs the refused call itself
        refused.fill("PT1H")

        # Pausing needs a refresh frequency; a limit out of range is refused on its field.
        page.get_by_role("tab", name="Journey settings").click()
        settings = page.get_by_test_id("journey-settings")
        settings.get_by_label("Read the segment again every (ISO 8601)").fill("PT1H")
        settings.get_by_label("Messages per endpoint per day").fill("500")
        settings.get_by_role("combobox", name="Time zone").click()
        page.get_by_role("option", name="UTC+09", exact=True).click()
        page.get_by_role("button", name="Save draft").click()
        settings.get_by_text("Limits.DailyCap must be between 0 and 100, not 500").wait_for()
        console.errors.clear()
        settings.get_by_label("Messages per endpoint per day").fill("5")

        # Boxes move, and stay where they were put.
        box = page.locator('.react-flow__node[data-id="pause"]').bounding_box()
        page.mouse.move(box["x"] + 40, box["y"] + 10)
        page.mouse.down()
        page.mouse.move(box["x"] + 40, box["y"] + 130, steps=6)
        page.mouse.up()
        page.get_by_role("button", name="Save draft").click()
        page.get_by_text("Saved.").wait_for()
        console.screenshot("journey-builder")
        stored = client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]
        assert stored["StartActivity"] == "welcome"
        assert stored["Activities"]["welcome"]["EMAIL"] == {"TemplateName": "welcome", "NextActivity": "split"}
        assert stored["Activities"]["split"]["ConditionalSplit"]["TrueActivity"] == "pause"
        [condition] = stored["Activities"]["split"]["ConditionalSplit"]["Condition"]["Conditions"]
        assert list(condition) == ["SegmentCondition"]
        assert stored["Activities"]["pause"]["Wait"] == {"WaitTime": {"WaitFor": "PT1H"}}
        assert stored["Limits"] == {"DailyCap": 5} and stored["RefreshFrequency"] == "PT1H"
        assert stored["Schedule"] == {"Timezone": "UTC+09"}
        status, raw = server.signed_request("GET", f"/v1/apps/{app_id}/journeys/{journey_id}", {})
        moved = raw["ClarionCanvas"]["Positions"]["pause"]
        assert status == 200 and set(raw["ClarionCanvas"]["Positions"]) == {"pause"}
        assert moved["Y"] > 100  # dragged 120 px down at zoom 1
        page.reload()
        page.get_by_test_id("activity-pause").wait_for()
        drawn = page.locator('.react-flow__node[data-id="pause"]').get_attribute("style") or ""
        assert f"translate({moved['X']:g}px, {moved['Y']:g}px)" in drawn, drawn

        page.get_by_role("button", name="Activate").click()
        # Both endpoints are in the segment: the split sends them down its yes path to wait an hour.
        page.get_by_test_id("metric-pause-ENTERED").filter(has_text=": 2").wait_for(timeout=15_000)
        page.get_by_test_id("metric-split-Branch_1").filter(has_text=": 2").wait_for()
        page.get_by_test_id("journey-state").filter(has_text="Active").wait_for()
        console.screenshot("journey-running")
        keep_for_docs("journey-running", "console-journeys.png")

        page.get_by_role("button", name="Pause").click()
        page.get_by_test_id("journey-state").filter(has_text="Paused").wait_for()
        page.get_by_role("button", name="Resume").click()
        page.get_by_role("alert").filter(has_text="no sooner than 5 minutes after it was paused").wait_for()
        console.errors.clear()
        server.clock.offset = timedelta(minutes=6)
        page.get_by_role("button", name="Resume").click()
        page.get_by_test_id("journey-state").filter(has_text="Active").wait_for()
        assert client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]["State"] == "ACTIVE"

        # Running, its activities are fixed, but a limit can still change.
        page.get_by_role("tab", name="Journey settings").click()
        assert settings.get_by_role("combobox", name="People enter").is_disabled()
        settings.get_by_label("Messages per endpoint per day").fill("7")
        page.get_by_role("button", name="Save changes").click()
        page.get_by_text("Saved.").wait_for()
        running = client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]
        assert running["Limits"] == {"DailyCap": 7} and running["State"] == "ACTIVE"
        assert running["Activities"] == stored["Activities"]

        page.get_by_role("button", name="Cancel journey").click()
        page.get_by_test_id("journey-state").filter(has_text="Cancelled").wait_for()
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


def test_the_activity_forms_and_settings_in_korean(server: RunningServer) -> None:
    """Every form the canvas opens — a split's conditions and branches, a custom channel's, the settings — shows no
    English catalog message to a Korean reader, and no key is missing from the Korean catalog."""
    client = server.client()
    app_id, segment = project_with_segment(client, "여정", "모두")
    activities = {
        "mail": {"EMAIL": {"NextActivity": "split"}},
        "split": {
            "ConditionalSplit": {
                "Condition": {
                    "Conditions": [
                        {
                            "EventCondition": {
                                "MessageActivity": "mail",
                                "Dimensions": {"EventType": {"Values": ["_email.open"]}},
                            }
                        },
                        {"SegmentCondition": {"SegmentId": segment}},
                    ]
                },
                "EvaluationWaitTime": {"WaitFor": "P1D"},
                "TrueActivity": "dice",
                "FalseActivity": "hook",
            }
        },
        "dice": {"RandomSplit": {"Branches": [{"Percentage": 30}, {"Percentage": 70}]}},
        "hook": {"CUSTOM": {"DeliveryUri": "https://hooks.example.com/x", "EndpointTypes": ["GCM"]}},
        "many": {"MultiCondition": {"Branches": [{"Condition": {"SegmentCondition": {"SegmentId": segment}}}]}},
    }
    journey_id = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "welcome",
            "StartCondition": {"SegmentStartCondition": {"SegmentId": segment}},
            "Activities": activities,
            "StartActivity": "mail",
        },
    )["JourneyResponse"]["Id"]
    english = english_strings("journeys", "campaigns", "segments", "channel")
    with chromium() as browser:
        console = ConsolePage(browser, server, locale="ko-KR")
        page = console.page
        console.open(f"apps/{app_id}/journeys/{journey_id}")
        page.get_by_label("사용자 이름").fill("mark")
        page.get_by_role("textbox", name="비밀번호").fill(PASSWORD)
        page.get_by_role("button", name="로그인").click()
        for activity in activities:
            page.get_by_test_id(f"activity-{activity}").click()
            page.get_by_test_id(f"activity-form-{activity}").wait_for()
            shown = page.locator("body").inner_text()
            assert [text for text in english if text in shown] == [], activity
            console.screenshot(f"ko-journey-{activity}")
        page.get_by_role("tab", name="여정 설정").click()
        page.get_by_test_id("journey-settings").wait_for()
        shown = page.locator("body").inner_text()
        assert [text for text in english if text in shown] == [], "settings"
        assert page.evaluate("window.clarionMissingTranslations ?? []") == []
        console.close()
        assert console.errors == []


def test_a_journey_is_built_from_the_keyboard_alone(server: RunningServer) -> None:
    """Activities are added, configured and connected, and the draft saved, with keys only: typing, Tab, the arrow
    keys and Enter."""
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "keyboard"})["ApplicationResponse"]["Id"]
    journey_id = client.create_journey(ApplicationId=app_id, WriteJourneyRequest={"Name": "keys"})["JourneyResponse"][
        "Id"
    ]
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("mark", f"apps/{app_id}/journeys/{journey_id}")
        keys = page.keyboard

        def add_from_keyboard(activity_id: str, kind: str) -> None:
            page.get_by_test_id("add-activity").get_by_label("Activity ID").focus()
            keys.type(activity_id)
            keys.press("Tab")  # the kind: type to find it, then choose it
            keys.press("Control+A")
            keys.type(kind)
            pick(page, kind)
            keys.press("Tab")
            keys.press("Enter")  # submits the form
            page.get_by_test_id(f"activity-form-{activity_id}").wait_for()

        add_from_keyboard("first", "Holdout")
        add_from_keyboard("later", "Random split")
        page.get_by_role("combobox", name="Activity to edit").focus()
        keys.press("Control+A")
        keys.type("first")
        pick(page, "first")
        next_activity = page.get_by_test_id("activity-form-first").get_by_role("combobox", name="Next activity")
        next_activity.focus()
        keys.type("later")
        pick(page, "later")
        require_browser().expect(next_activity).to_have_value("later")
        page.get_by_role("button", name="Save draft").focus()
        keys.press("Enter")
        page.get_by_text("Saved.").wait_for()
        console.close()
        assert console.errors == []
    stored = client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]
    assert stored["StartActivity"] == "first"
    assert stored["Activities"]["first"] == {"Holdout": {"Percentage": 10, "NextActivity": "later"}}
    assert stored["Activities"]["later"]["RandomSplit"]["Branches"] == [{"Percentage": 50}, {"Percentage": 50}]


def test_a_stored_endpoint_condition_opens_as_its_rule_and_is_changed(server: RunningServer) -> None:
    """A multivariate split's endpoint-dimension condition, written through the API, opens in the rule's inputs;
    changing it there and saving writes the new dimensions."""
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "rules"})["ApplicationResponse"]["Id"]
    dimensions = {"Attributes": {"plan": {"AttributeType": "INCLUSIVE", "Values": ["gold"]}}}
    journey_id = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "tiers",
            "Activities": {
                "tier": {
                    "MultiCondition": {
                        "Branches": [{"Condition": {"SegmentDimensions": dimensions}, "NextActivity": "gold"}],
                        "EvaluationWaitTime": {"WaitUntil": "2030-01-01T09:00:00Z"},
                    }
                },
                "gold": {"Wait": {"WaitTime": {"WaitFor": "PT1H"}}},
            },
            "StartActivity": "tier",
        },
    )["JourneyResponse"]["Id"]
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("mark", f"apps/{app_id}/journeys/{journey_id}")
        page.get_by_test_id("activity-tier").click()
        form = page.get_by_test_id("activity-form-tier")
        assert form.get_by_role("combobox", name="Condition 1").input_value() == "The participant's endpoint matches"
        assert form.get_by_role("combobox", name="Endpoint field").input_value() == "Endpoint attribute"
        value = form.get_by_label("Compared with")
        assert value.input_value() == "plan: gold"
        assert form.get_by_label("Date and time (ISO 8601)").input_value() == "2030-01-01T09:00:00Z"
        value.fill("plan: gold, platinum")
        page.get_by_role("button", name="Save draft").click()
        page.get_by_text("Saved.").wait_for()
        console.close()
        assert console.errors == []
    stored = client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]
    [branch] = stored["Activities"]["tier"]["MultiCondition"]["Branches"]
    assert branch["Condition"]["SegmentDimensions"]["Attributes"] == {
        "plan": {"AttributeType": "INCLUSIVE", "Values": ["gold", "platinum"]}
    }
    assert branch["NextActivity"] == "gold"


CONNECT_CAMPAIGN = "arn:aws:connect:eu-west-1:123456789012:instance/i-1/campaign/c-1"


def test_a_journey_is_switched_to_start_on_an_app_event(server: RunningServer) -> None:
    """The settings' entry: from a segment's members to each endpoint reporting an event (of that segment); the
    refusal of an event start without an event type is shown on that field; the contact center's campaign."""
    client = server.client()
    app_id, segment = project_with_segment(client, "events", "buyers")
    journey_id = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={"Name": "thanks", "StartCondition": {"SegmentStartCondition": {"SegmentId": segment}}},
    )["JourneyResponse"]["Id"]
    with chromium() as browser:
        console = ConsolePage(browser, server)
        page = console.page
        console.sign_in("mark", f"apps/{app_id}/journeys/{journey_id}")
        page.get_by_role("tab", name="Journey settings").click()
        settings = page.get_by_test_id("journey-settings")
        assert settings.get_by_role("combobox", name="Segment").input_value() == "buyers"
        settings.get_by_role("combobox", name="People enter").click()
        page.get_by_role("option", name="when their app reports an event").click()
        page.get_by_role("button", name="Save draft").click()
        settings.get_by_text("EventType.Values must name exactly one event").wait_for()
        assert settings.get_by_label("Event type").get_attribute("aria-invalid") == "true"
        console.errors.clear()  # the browser logs the refused call itself
        settings.get_by_label("Event type").fill("purchase")
        settings.get_by_label("Contact center campaign ARN").fill(CONNECT_CAMPAIGN)
        page.get_by_role("button", name="Save draft").click()
        page.get_by_text("Saved.").wait_for()
        console.close()
        assert console.errors == []
    stored = client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]
    assert stored["JourneyChannelSettings"] == {"ConnectCampaignArn": CONNECT_CAMPAIGN}
    start = stored["StartCondition"]
    assert start == {
        "EventStartCondition": {
            "EventFilter": {
                "FilterType": "ENDPOINT",
                "Dimensions": {"EventType": {"DimensionType": "INCLUSIVE", "Values": ["purchase"]}},
            },
            "SegmentId": segment,
        }
    }
