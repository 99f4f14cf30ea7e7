"""Admin pages in a real browser: the projects list pages, a user's role changed and password
reset (the new one signs in, the old one no longer does), and the sign-in and a form used with the keyboard alone.
One server and one browser for the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from conftest import RunningServer
from console_browser import PASSWORD, ConsolePage, console_server

from clarion.console.roles import Role


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(Path(tmp_path_factory.mktemp("admin"))) as running:
        yield running


def sign_in_status(server: RunningServer, username: str, password: str) -> int:
    body = json.dumps({"Username": username, "Password": password}).encode()
    headers = {"content-type": "application/json"}
    return urllib3.request("POST", server.url + "/v1/clarion/session", body=body, headers=headers).status


def test_the_keyboard_alone_signs_in_and_creates_a_project(console: ConsolePage) -> None:
    page = console.page
    console.open("apps")
    page.get_by_label("Username").wait_for()  # focused when the page opens
    assert page.evaluate("document.activeElement.labels?.[0]?.innerText").startswith("Username")
    page.keyboard.type("ada")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_test_id("who").wait_for()
    for _ in range(40):  # past the header and the menu to the form
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.labels?.[0]?.innerText ?? ''").startswith("Name"):
            break
    else:
        pytest.fail("Tab never reached the project name field")
    page.keyboard.type("Typed project")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Typed project").wait_for()


def test_the_projects_list_pages(console: ConsolePage, server: RunningServer) -> None:
    """50 to a page (a Clarion holds at most 100 projects, Pinpoint's quota)."""
    client = server.client()
    existing = len(client.get_apps(PageSize="100")["ApplicationsResponse"]["Item"])
    for n in range(51 - existing):
        client.create_app(CreateApplicationRequest={"Name": f"project {n:03}"})
    console.sign_in("ada", "apps")
    rows = console.page.get_by_test_id("projects").locator("tbody tr")
    rows.nth(49).wait_for()
    assert rows.count() == 50
    console.page.get_by_role("button", name="Load more").click()
    rows.nth(50).wait_for()
    assert rows.count() == 51 and console.page.get_by_role("button", name="Load more").count() == 0


def test_an_admin_changes_a_role_and_resets_a_password(console: ConsolePage, server: RunningServer) -> None:
    server.run(lambda services: services.console.create_user("maria", Role.MARKETER, PASSWORD))
    console.sign_in("ada", "users")
    page = console.page
    page.get_by_role("combobox", name="Role of maria").click()
    page.get_by_role("option", name="Analyst").click()
    page.get_by_role("combobox", name="Role of maria").and_(page.locator("[value='Analyst']")).wait_for()
    row = page.get_by_test_id("users").locator("tr").filter(has_text="maria")
    row.get_by_role("button", name="Reset password").click()
    shown = page.get_by_test_id("reset-password").locator("code").inner_text()
    users = server.run(lambda services: services.console.users())
    assert {user.username: user.role for user in users}["maria"] is Role.ANALYST
    assert sign_in_status(server, "maria", PASSWORD) == 403
    assert sign_in_status(server, "maria", shown) == 200
    console.screenshot("users")
