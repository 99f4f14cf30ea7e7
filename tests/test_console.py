"""The web console in a real browser (Debian's Chromium through Playwright) against a real Clarion server: signing
in, what each role sees and may do, and the audit log. One server and one browser per module keep it quick; the
console's API is tested on both stores in test_console_api.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from console_browser import ConsolePage, chromium, console_server, keep_for_docs


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(Path(tmp_path_factory.mktemp("console"))) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Any, server: RunningServer) -> Iterator[ConsolePage]:
    page = ConsolePage(browser, server)
    yield page
    page.close()
    assert page.errors == []


def test_an_admin_signs_in_creates_a_project_and_sees_it_in_the_audit_log(console: ConsolePage) -> None:
    page = console.page
    console.open("apps")
    page.get_by_role("textbox", name="Password").fill("not the password")
    page.get_by_label("Username").fill("ada")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="The username or password is not right").wait_for()
    console.errors.clear()  # the browser logs the refused sign-in's 403 itself
    page.get_by_role("textbox", name="Password").fill("console test password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("who").filter(has_text="ada · Admin").wait_for()
    page.get_by_text("No projects yet.").wait_for()

    page.get_by_label("Name").fill("Spring sale")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("link", name="Spring sale").wait_for()
    console.screenshot("projects")
    keep_for_docs("projects", "console-projects.png")

    page.get_by_role("link", name="Audit log").click()
    audit = page.get_by_test_id("audit")
    audit.get_by_role("cell", name="CreateApp").wait_for()
    assert audit.get_by_role("cell", name="ClarionSignIn").count() == 2  # the refused sign-in and this one
    console.screenshot("audit")


def test_an_analyst_cannot_send(console: ConsolePage, server: RunningServer) -> None:
    app_id = server.client().create_app(CreateApplicationRequest={"Name": "analysed"})["ApplicationResponse"]["Id"]
    console.sign_in("ann", f"apps/{app_id}/send")
    page = console.page
    page.get_by_test_id("not-allowed").wait_for()
    assert page.get_by_role("button", name="Send").is_disabled()
    assert page.get_by_role("link", name="Users").count() == 0  # admin pages are not offered either
    console.screenshot("send-analyst")
    # The page only mirrors the role: the server refuses the call itself, session cookie, CSRF token and all.
    answer = page.evaluate(
        """async (appId) => {
            const session = await (await fetch('/v1/clarion/session')).json();
            const response = await fetch(`/v1/apps/${appId}/messages`, {
                method: 'POST',
                headers: {'content-type': 'application/json', 'x-clarion-csrf': session.CsrfToken},
                body: JSON.stringify({Addresses: {'a@example.com': {ChannelType: 'EMAIL'}}, MessageConfiguration: {}}),
            });
            return [response.status, (await response.json()).Message];
        }""",
        app_id,
    )
    assert answer[0] == 403 and re.search("may not call SendMessages", answer[1])
    console.errors.clear()  # the refused fetch is logged by the browser


def test_signing_out_ends_the_session(console: ConsolePage) -> None:
    console.sign_in("mark")
    page = console.page
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    cookies = console.context.cookies()
    assert [c for c in cookies if c["name"] == "clarion_session"] == []
