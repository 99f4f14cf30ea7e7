"""The web console in a real browser (Debian's Chromium through Playwright) against a real Clarion server: signing
in, what each role sees and may do, and the audit log. One server and one browser per module keep it quick; the
console's API is tested on both stores in test_console_api.py."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import RunningServer
from console_browser import VISIBLE_TEXT, ConsolePage, console_server, english_messages, keep_for_docs, untranslated

from clarion.config import AccessKey

T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(Path(tmp_path_factory.mktemp("console"))) as running:
        yield running


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


def test_a_marketer_builds_a_segment_and_sees_its_size_as_the_rules_change(
    console: ConsolePage, server: RunningServer
) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "audience"})["ApplicationResponse"]["Id"]
    people = {"seoul-1": "KR", "seoul-2": "KR", "busan-1": "KR", "boston-1": "US"}
    client.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [
                {"Id": key, "ChannelType": "EMAIL", "Address": f"{key}@example.com", "Location": {"Country": country}}
                for key, country in people.items()
            ]
        },
    )
    console.sign_in("mark", f"apps/{app_id}/segments")
    page = console.page
    page.get_by_text("No segments yet.").wait_for()
    page.get_by_text("Add a rule to see how many endpoints match.").wait_for()
    page.get_by_role("button", name="Add rule").click()
    page.locator(".rule-fields input").click()
    page.get_by_role("option", name="Country").click()
    page.locator(".rule-value input").fill("KR")
    size = page.get_by_test_id("segment-size")
    size.filter(has_text="Estimated size: 3 endpoints").wait_for()
    page.locator(".rule-value input").fill("KR, US")
    size.filter(has_text="Estimated size: 4 endpoints").wait_for()
    page.get_by_label("Name").fill("Korea and US")
    console.screenshot("segments-builder")
    keep_for_docs("segments-builder", "console-segments.png")
    page.get_by_role("button", name="Save segment").click()
    page.get_by_test_id("segments").get_by_role("cell", name="Korea and US").wait_for()
    [segment] = client.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"]
    assert segment["SegmentGroups"]["Groups"][0]["Dimensions"] == [
        {"Location": {"Country": {"DimensionType": "INCLUSIVE", "Values": ["KR", "US"]}}}
    ]


def test_an_admin_makes_a_send_only_key_that_works_from_boto3_and_revokes_it(
    console: ConsolePage, server: RunningServer
) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "shop backend"})["ApplicationResponse"]["Id"]
    console.sign_in("ada", "keys")
    page = console.page
    page.get_by_label("Description").fill("order mails from the shop")
    page.get_by_role("combobox", name="Projects").click()
    page.get_by_role("option", name="shop backend").click()
    page.get_by_placeholder("203.0.113.0/24").fill("127.0.0.1/32")
    page.get_by_placeholder("203.0.113.0/24").press("Enter")
    page.get_by_role("button", name="Create key").click()
    key_id = page.get_by_test_id("new-key-id").inner_text()
    secret = page.get_by_test_id("new-key-secret").inner_text()
    console.screenshot("keys")

    sender = server.client(AccessKey(access_key_id=key_id, secret_access_key=secret))
    send = {
        "ApplicationId": app_id,
        "MessageRequest": {
            "Addresses": {"+15555550100": {"ChannelType": "SMS"}},
            "MessageConfiguration": {"SMSMessage": {"Body": "Your order shipped"}},
        },
    }
    # Every server process picks a new key up within about a second (it polls the store).
    result = eventually(lambda: sender.send_messages(**send))
    # Accepted and answered per address (no SMS channel is set up here, so the address's own result says so).
    assert set(result["MessageResponse"]["Result"]) == {"+15555550100"}
    with pytest.raises(sender.exceptions.ForbiddenException):
        sender.get_apps()  # send-only
    page.get_by_test_id("keys").get_by_role("row").filter(has_text=key_id).get_by_role("button", name="Revoke").click()
    page.get_by_test_id("keys").get_by_role("row").filter(has_text=key_id).wait_for(state="detached")
    eventually(lambda: _refused(sender, send))


def _refused(sender: Any, send: dict[str, Any]) -> None:
    with pytest.raises(sender.exceptions.ForbiddenException):
        sender.send_messages(**send)


def eventually(work: Callable[[], T], seconds: float = 5.0) -> T:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return work()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_marketer_writes_a_template_and_sees_the_server_render_it_for_an_endpoint(
    console: ConsolePage, server: RunningServer
) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "templates"})["ApplicationResponse"]["Id"]
    client.update_endpoint(
        ApplicationId=app_id,
        EndpointId="jane-mail",
        EndpointRequest={
            "ChannelType": "EMAIL",
            "Address": "jane@example.com",
            "Attributes": {"Plan": ["gold"]},
            "User": {"UserId": "jane", "UserAttributes": {"FirstName": ["Jane"]}},
        },
    )
    console.sign_in("mark", f"apps/{app_id}/templates")
    page = console.page
    page.get_by_text("No templates yet.").wait_for()
    page.get_by_label("Template name").fill("order-shipped")
    page.get_by_role("button", name="New template").click()
    page.get_by_label("Subject").fill("Hi {{User.UserAttributes.FirstName}}")
    page.get_by_label("HTML or MJML body").fill("<p>Your {{Attributes.Plan}} order is on its way</p>")
    preview = page.get_by_test_id("template-preview")
    preview.get_by_text("Hi ", exact=True).wait_for()  # rendered for no one in particular: no first name
    preview.get_by_label("Preview for endpoint ID").fill("jane-mail")
    preview.get_by_text("Hi Jane").wait_for()
    preview.frame_locator("iframe").get_by_text("Your gold order is on its way").wait_for()
    console.screenshot("templates")
    keep_for_docs("templates", "console-templates.png")
    page.get_by_role("button", name="Create template").click()
    page.get_by_text("Saved.").wait_for()
    page.get_by_test_id("templates").get_by_text("order-shipped").wait_for()
    stored = client.get_email_template(TemplateName="order-shipped")["EmailTemplateResponse"]
    assert stored["Subject"] == "Hi {{User.UserAttributes.FirstName}}"


def test_the_korean_console_shows_no_untranslated_string(korean_console: ConsolePage, server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "한국 매장"})["ApplicationResponse"]["Id"]
    english = english_messages()
    assert len(english) > 100
    page = korean_console.page
    korean_console.sign_in("ada", "apps")
    page.get_by_test_id("who").filter(has_text="ada · 관리자").wait_for()
    pages = {
        "projects": ("apps", "프로젝트 만들기"),
        "segments": (f"apps/{app_id}/segments", "세그먼트 저장"),
        "templates": (f"apps/{app_id}/templates", "새 템플릿"),
        "campaigns": (f"apps/{app_id}/campaigns", "캠페인 이름"),
        "channels": (f"apps/{app_id}/channels", "채널 저장"),
        "settings": (f"apps/{app_id}/settings", "설정 저장"),
        "send": (f"apps/{app_id}/send", "테스트 메시지 보내기"),
        "keys": ("keys", "키 만들기"),
        "users": ("users", "사용자 추가"),
        "audit": ("audit", "감사 로그"),
    }
    for name, (path, marker) in pages.items():
        korean_console.open(path)
        page.get_by_text(marker).first.wait_for()
        page.wait_for_load_state("networkidle")
        if name == "segments":
            page.get_by_role("button", name="규칙 추가").click()
        if name == "templates":
            page.get_by_label("템플릿 이름").fill("환영")
            page.get_by_role("button", name="새 템플릿").click()
            page.get_by_test_id("template-preview").wait_for()
        shown = untranslated(page.evaluate(VISIBLE_TEXT), english)
        assert shown == [], f"{name}: English text in the Korean console: {shown}"
        korean_console.screenshot(f"ko-{name}")
    assert page.evaluate("window.clarionMissingTranslations ?? []") == []


def test_an_admin_sets_up_channels_whose_credentials_are_write_only(
    console: ConsolePage, server: RunningServer
) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "channels"})["ApplicationResponse"]["Id"]
    console.sign_in("ada", f"apps/{app_id}/channels")
    page = console.page
    page.get_by_label("From address").fill("news@example.com")
    page.get_by_label("Identity (domain or address)").fill("example.com")
    page.get_by_test_id("channel-email").get_by_role("button", name="Save channel").click()
    page.get_by_text("Saved.").wait_for()
    email = client.get_email_channel(ApplicationId=app_id)["EmailChannelResponse"]
    assert (email["FromAddress"], email["Identity"], email["Enabled"]) == ("news@example.com", "example.com", True)
    # A refused credential shows the server's own reason; credentials are never read back into the page.
    fcm = page.get_by_test_id("channel-gcm")
    fcm.get_by_label("Service account JSON").fill("not a service account")
    fcm.get_by_role("button", name="Save channel").click()
    fcm.get_by_text("ServiceJson must be the JSON key file of a Firebase service account").wait_for()
    assert fcm.get_by_label("Service account JSON").get_attribute("aria-invalid") == "true"  # on the field itself
    console.forget_refused_calls()
    fcm.get_by_text("No credentials yet.").wait_for()
    console.screenshot("channels")
    page.reload()
    page.get_by_label("From address").and_(page.locator("[value='news@example.com']")).wait_for()


def test_an_admin_sets_the_projects_quiet_time_and_limits(console: ConsolePage, server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "settings"})["ApplicationResponse"]["Id"]
    console.sign_in("ada", f"apps/{app_id}/settings")
    page = console.page
    page.get_by_label("Quiet time from").fill("22:00")
    page.get_by_label("Quiet time until").fill("08:00")
    page.get_by_label("Messages per endpoint per day").fill("3")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Saved.").wait_for()
    stored = client.get_application_settings(ApplicationId=app_id)["ApplicationSettingsResource"]
    assert stored["QuietTime"] == {"Start": "22:00", "End": "08:00"} and stored["Limits"]["Daily"] == 3
    console.screenshot("settings")
