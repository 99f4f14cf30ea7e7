"""The console in Firefox and at a tablet's width, against a real server with something on every page.

Firefox: Debian's firefox-esr, driven over WebDriver BiDi by puppeteer-core (tests/firefox/visit.mjs; Playwright
cannot drive a stock Firefox), signs in in Korean at 1280 px and opens every page: no console error, no English
catalog message on screen, no key missing from the catalog, nothing wider than the window. Tablet: Chromium at
768 x 1024 goes from page to page through the menu and the pages' own links, and no page is wider than the window.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from console_browser import (
    ARTIFACTS,
    OVERFLOWING,
    PASSWORD,
    VISIBLE_TEXT,
    ConsolePage,
    checked_page,
    console_server,
    english_messages,
    keep_for_docs,
    untranslated,
)
from test_costs import send

from clarion.channels.config import DeliverySettings

FIREFOX = Path("/usr/bin/firefox-esr")
DRIVER = Path(__file__).resolve().parent / "firefox"
TABLET = {"width": 768, "height": 1024}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(tmp_path_factory.mktemp("browsers"), delivery=DeliverySettings(dry_run=True)) as running:
        yield running


@pytest.fixture(scope="module")
def project(server: RunningServer) -> dict[str, str]:
    """A project with a person, a segment, a template, a scheduled campaign, a journey and a few sends (a dry run)."""
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "매장"})["ApplicationResponse"]["Id"]
    client.update_endpoint(
        ApplicationId=app_id,
        EndpointId="ana-mail",
        EndpointRequest={"ChannelType": "EMAIL", "Address": "ana@example.com", "User": {"UserId": "ana"}},
    )
    segment = client.create_segment(
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": "모두", "Dimensions": {"Demographic": {"Channel": {"Values": ["EMAIL"]}}}},
    )["SegmentResponse"]["Id"]
    client.create_email_template(
        TemplateName="welcome", EmailTemplateRequest={"Subject": "Hi", "TextPart": "Hello {{Address}}"}
    )
    client.create_campaign(
        ApplicationId=app_id,
        WriteCampaignRequest={
            "Name": "봄 세일",
            "SegmentId": segment,
            "Schedule": {"StartTime": "2099-01-01T00:00:00Z", "Frequency": "ONCE"},
            "MessageConfiguration": {"EmailMessage": {"Title": "Hi", "Body": "Hello", "FromAddress": "s@example.com"}},
        },
    )
    journey = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "welcome",
            "StartCondition": {"SegmentStartCondition": {"SegmentId": segment}},
            "Activities": {"wait": {"Wait": {"WaitTime": {"WaitFor": "PT1H"}}}},
            "StartActivity": "wait",
        },
    )["JourneyResponse"]["Id"]
    send(client, app_id, {"ana@example.com": "EMAIL", "+14255550100": "SMS"})
    return {"app": app_id, "journey": journey}


def every_page(project: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Each page an admin can open: its path and a selector that is there once it shows its data."""
    app = f"apps/{project['app']}"
    return {
        "projects": ("apps", "[data-testid=projects]"),
        "audience": (f"{app}/audience", "[data-testid=endpoints]"),
        "person": (f"{app}/audience/users/ana", "[data-testid=engagement]"),
        "segments": (f"{app}/segments", "[data-testid=segments]"),
        "templates": (f"{app}/templates", "[data-testid=templates]"),
        "dashboard": (f"{app}/dashboard", "[data-testid=emails-sent]"),
        "campaigns": (f"{app}/campaigns", "[data-testid=campaigns]"),
        "journeys": (f"{app}/journeys", "[data-testid=journeys]"),
        "journey": (f"{app}/journeys/{project['journey']}", ".react-flow__node"),
        "channels": (f"{app}/channels", "[data-testid=channel-email]"),
        "settings": (f"{app}/settings", "main form"),
        "send": (f"{app}/send", "main form"),
        "costs": (f"{app}/costs", "[data-testid=cost-lines]"),
        "users": ("users", "[data-testid=users]"),
        "keys": ("keys", "main form"),
        "audit": ("audit", "[data-testid=audit]"),
    }


def firefox_visit(server: RunningServer, pages: dict[str, tuple[str, str]], language: str) -> dict[str, Any]:
    """Run tests/firefox/visit.mjs over the pages as ada and answer what it saw, or skip saying what is missing."""
    if not FIREFOX.exists():
        pytest.skip("Debian's firefox-esr is not installed (apt-get install firefox-esr; scripts/test.sh does it)")
    node = shutil.which("node")
    if node is None or not (DRIVER / "node_modules" / "puppeteer-core").is_dir():
        pytest.skip("puppeteer-core is not installed: npm ci --prefix tests/firefox (scripts/test.sh does it)")
    job = {
        "firefox": str(FIREFOX),
        "url": server.url,
        "username": "ada",
        "password": PASSWORD,
        "language": language,
        "width": 1280,
        "height": 860,
        "textScript": f"({VISIBLE_TEXT})()",
        "overflowScript": f"({OVERFLOWING})()",
        "screenshots": str(ARTIFACTS / "console"),
        "pages": [{"name": name, "path": path, "ready": ready} for name, (path, ready) in pages.items()],
    }
    # Firefox writes its profile under HOME; a throw-away one keeps the machine's own out of the test.
    env = {**os.environ, "HOME": str(server.settings.data_dir), "MOZ_CRASHREPORTER_DISABLE": "1"}
    done = subprocess.run(
        [node, str(DRIVER / "visit.mjs")], input=json.dumps(job), capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_every_page_in_korean_in_firefox(server: RunningServer, project: dict[str, str]) -> None:
    seen = firefox_visit(server, every_page(project), "ko-KR")
    assert seen["version"].startswith("firefox/"), seen["version"]
    english = english_messages()
    for name, page in seen["pages"].items():
        assert "failed" not in page, f"{name}: {page.get('failed')}"
        assert page["language"] == "ko", name
        assert untranslated(page["text"], english) == [], f"{name}: English text in the Korean console"
        assert page["missing"] == [], f"{name}: keys missing from the catalog"
        assert page["overflow"] == {"scroll": 0, "elements": []}, f"{name}: wider than 1280 px"
    assert sorted(seen["pages"]) == sorted(every_page(project))
    assert seen["errors"] == []
    keep_for_docs("firefox-dashboard", "console-firefox-dashboard.png")


def test_every_page_at_a_tablets_width_through_the_menu(
    browser: Any, server: RunningServer, project: dict[str, str]
) -> None:
    with checked_page(browser, server, viewport=TABLET) as console:
        tablet_pass(console, every_page(project))


def tablet_pass(console: ConsolePage, pages: dict[str, tuple[str, str]]) -> None:
    page = console.page
    console.sign_in("ada")
    menu = page.get_by_role("navigation", name="Menu")
    by_menu = {
        "Audience": "audience",
        "Segments": "segments",
        "Templates": "templates",
        "Dashboard": "dashboard",
        "Campaigns": "campaigns",
        "Journeys": "journeys",
        "Channels": "channels",
        "Settings": "settings",
        "Test send": "send",
        "Costs": "costs",
        "Users": "users",
        "API keys": "keys",
        "Audit log": "audit",
        "Projects": "projects",
    }
    page.get_by_role("link", name="매장").click()

    def check(name: str) -> None:
        page.locator(pages[name][1]).first.wait_for()
        page.wait_for_load_state("networkidle")
        assert page.url.endswith(pages[name][0]), (name, page.url)
        assert page.evaluate(OVERFLOWING) == {"scroll": 0, "elements": []}, f"{name}: wider than the tablet"
        console.screenshot(f"tablet-{name}")

    for label, name in by_menu.items():
        menu.get_by_role("link", name=label, exact=True).click()
        check(name)
        if name == "audience":
            page.get_by_test_id("endpoints").get_by_role("link", name="ana", exact=True).click()
            check("person")
        if name == "journeys":
            page.get_by_test_id("journeys").get_by_role("link", name="welcome").click()
            check("journey")
