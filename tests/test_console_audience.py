"""The console's Audience pages in a real browser: endpoints paged and found by address or attribute, and a person's
page with their endpoints, attributes, engagement score and timeline (events and message outcomes), in English and
in Korean. One server and one browser for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from console_browser import ConsolePage, console_server, english_strings, keep_for_docs

from clarion.store import messages as message_store
from clarion.store.messages import MessageRow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(Path(tmp_path_factory.mktemp("audience"))) as running:
        yield running


@pytest.fixture(scope="module")
def app_id(server: RunningServer) -> str:
    """26 endpoints (one more than a page): ana's phone and mail, and 24 readers; ana has an event and a message."""
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "people"})["ApplicationResponse"]["Id"]
    ana = [
        {"Id": "ana-phone", "ChannelType": "SMS", "Address": "+821012345678", "Attributes": {"plan": ["gold"]}},
        {"Id": "ana-mail", "ChannelType": "EMAIL", "Address": "ana@example.com"},
    ]
    readers = [{"Id": f"reader-{n:02}", "ChannelType": "EMAIL", "Address": f"r{n}@example.org"} for n in range(24)]
    client.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [{**item, "User": {"UserId": "ana", "UserAttributes": {"city": ["Seoul"]}}} for item in ana]
            + readers
        },
    )
    client.put_events(
        ApplicationId=app_id,
        EventsRequest={
            "BatchItem": {
                "ana-phone": {
                    "Endpoint": {},
                    "Events": {"e1": {"EventType": "app.open", "Timestamp": "2026-03-01T10:00:00.000Z"}},
                }
            }
        },
    )
    refused = MessageRow(
        "m-1", app_id, None, "ana-mail", "ana", "EMAIL", "ana@example.com", None, "camp-1", None, None,
        "PERMANENT_FAILURE", 550, "mailbox unavailable", "2026-03-02T08:00:00.000Z", "{}",
    )  # fmt: skip
    server.run(lambda services: services.db.write(lambda tx: message_store.insert(tx, [refused])))
    return app_id


def cells(row: Any) -> list[str]:
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def test_an_analyst_finds_a_person_and_reads_their_timeline(console: ConsolePage, app_id: str) -> None:
    console.sign_in("ann", f"apps/{app_id}/audience")
    page = console.page
    rows = page.get_by_test_id("endpoints").locator("tbody tr")
    rows.nth(24).wait_for()
    assert rows.count() == 25
    page.get_by_role("button", name="Load more").click()
    rows.nth(25).wait_for()
    assert page.get_by_role("button", name="Load more").count() == 0

    search = page.get_by_role("textbox", name="Find endpoints")
    search.fill("nobody@example.com")
    search.press("Enter")
    page.get_by_text("No endpoint matches this search.").wait_for()
    search.fill("plan=gold")
    page.get_by_role("button", name="Search").click()
    page.get_by_test_id("endpoints").get_by_role("link", name="ana-phone").wait_for()
    assert rows.count() == 1
    console.screenshot("audience")

    page.get_by_test_id("endpoints").get_by_role("link", name="ana", exact=True).click()
    page.get_by_role("heading", name="User ana").wait_for()
    endpoints = page.get_by_test_id("person-endpoints")
    endpoints.get_by_text("plan: gold").wait_for()
    assert endpoints.get_by_text("city: Seoul").count() == 2
    page.get_by_test_id("engagement").get_by_text("Engagement score").wait_for()
    timeline = page.get_by_test_id("timeline").locator("tbody tr")
    timeline.nth(1).wait_for()
    assert cells(timeline.nth(0))[1:] == [
        "ana-mail",
        "Email message to ana@example.com",
        "PERMANENT FAILURE",  # a badge, in capitals
        "Campaign camp-1",
    ]
    assert cells(timeline.nth(1))[1:3] == ["ana-phone", "app.open"]
    console.screenshot("audience-person")
    keep_for_docs("audience-person", "console-audience.png")


def test_the_audience_pages_in_korean(korean_console: ConsolePage, app_id: str) -> None:
    english = english_strings("audience", "nav")
    korean_console.sign_in("ann", f"apps/{app_id}/audience/users/ana")
    korean_console.page.get_by_test_id("timeline").locator("tbody tr").nth(1).wait_for()
    korean_console.page.get_by_test_id("engagement").wait_for()
    shown = korean_console.page.locator("body").inner_text()
    assert "영구 실패" in shown and "타임라인" in shown
    assert [text for text in english if text in shown] == []
    korean_console.screenshot("audience-person-ko")


def test_people_are_found_by_the_start_of_an_id_or_address_and_a_timeline_is_filtered(
    console: ConsolePage, app_id: str
) -> None:
    console.sign_in("mark", f"apps/{app_id}/audience")
    page = console.page
    rows = page.get_by_test_id("endpoints").locator("tbody tr")
    search = page.get_by_role("textbox", name="Find endpoints")
    for text, expected in (("READER-1", 10), ("r2", 5), ("+8210", 1)):  # ids in any case; addresses
        search.fill(text)
        search.press("Enter")

        def found(text: str = text, expected: int = expected) -> bool:
            shown = rows.all_inner_texts()
            return len(shown) == expected and all(text.lower() in row.lower() for row in shown)

        console.until(found, f"{expected} endpoints for {text}")
    assert cells(rows.nth(0))[:3] == ["ana-phone", "SMS", "+821012345678"]

    page.get_by_test_id("endpoints").get_by_role("link", name="ana", exact=True).click()
    timeline = page.get_by_test_id("timeline").locator("tbody tr")
    timeline.nth(1).wait_for()
    filters = page.get_by_test_id("timeline-filters")

    def show(expected: list[str]) -> None:
        filters.get_by_role("button", name="Apply").click()
        console.until(
            lambda: [row.split("\t")[2].strip() for row in timeline.all_inner_texts()] == expected, str(expected)
        )

    filters.locator("label", has_text="Messages").click()
    assert filters.get_by_label("Event type").is_disabled()
    show(["Email message to ana@example.com"])
    filters.locator("label", has_text="Events").click()
    filters.get_by_label("Event type").fill("app.open")
    show(["app.open"])
    filters.get_by_label("Event type").fill("app.close")
    show([])
    page.get_by_text("Nothing in this person's timeline matches these filters.").wait_for()
    filters.get_by_label("Event type").fill("")
    filters.locator("label", has_text="Everything").click()
    filters.get_by_label("From").fill("2026-03-02")
    show(["Email message to ana@example.com"])
    filters.get_by_label("From").fill("")
    filters.get_by_label("Until").fill("2026-03-01")
    show(["app.open"])
    console.screenshot("audience-timeline-filters")


def test_the_users_list_pages_and_finds_users_by_the_start_of_their_id(
    console: ConsolePage, server: RunningServer, app_id: str
) -> None:
    client = server.client()
    other = client.create_app(CreateApplicationRequest={"Name": "members"})["ApplicationResponse"]["Id"]
    members = [
        {"Id": f"m{n:02}", "ChannelType": "EMAIL", "Address": f"m{n}@example.com", "User": {"UserId": f"user-{n:02}"}}
        for n in range(26)
    ]
    client.update_endpoints_batch(ApplicationId=other, EndpointBatchRequest={"Item": members})
    console.sign_in("ann", f"apps/{other}/audience")
    page = console.page
    page.locator("label", has_text="Users").first.click()
    rows = page.get_by_test_id("users-list").locator("tbody tr")
    rows.nth(24).wait_for()
    assert rows.count() == 25 and cells(rows.nth(0)) == ["user-00", "1"]
    page.get_by_role("button", name="Load more").click()
    rows.nth(25).wait_for()
    assert page.get_by_role("button", name="Load more").count() == 0
    search = page.get_by_role("textbox", name="Find users")
    search.fill("user-2")
    search.press("Enter")
    console.until(
        lambda: [row.split("\t")[0] for row in rows.all_inner_texts()] == [f"user-2{n}" for n in range(6)], "user-2*"
    )
    page.get_by_role("link", name="user-21").click()
    page.get_by_role("heading", name="User user-21").wait_for()
    console.screenshot("audience-users")
