"""Unsubscribe links and tracking choices in email: the {{UnsubscribeUrl}} variable, ClarionTracking on a send or a
template (transactional mail without pixel, click redirects or List-Unsubscribe), and the project's branded,
translated unsubscribe page. Messages go through a real SMTP relay (aiosmtpd); every test runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from conftest import RunningServer
from smtp_relay import Relay

from clarion.channels.config import DeliverySettings, SmtpSettings, TrackingSettings
from clarion.config import Settings
from clarion.projects.unsubscribe_page import PageStyle, choose_language

HTML = (
    '<html><body><p>Your receipt</p><a href="https://shop.example.com/order/1">Order</a> '
    '<a href="{{UnsubscribeUrl}}">Unsubscribe</a></body></html>'
)


@pytest.fixture
def tracked(migrated_settings: Settings, relay: tuple[Relay, int]) -> Iterator[RunningServer]:
    _, port = relay
    tracking = TrackingSettings(base_url=f"http://127.0.0.1:{migrated_settings.port}", key="test-tracking-key")
    delivery = DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=port, security="none"), tracking=tracking)
    with RunningServer(migrated_settings.model_copy(update={"delivery": delivery})) as running:
        yield running


@pytest.fixture
def project(tracked: RunningServer) -> str:
    client = tracked.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "shop@example.com", "Identity": "example.com"}
    )
    return app_id


def send(server: RunningServer, app_id: str, address: str, email_message: dict[str, Any]) -> None:
    """SendMessages over signed HTTP (boto3 cannot send Clarion's extension members)."""
    body = {"Addresses": {address: {"ChannelType": "EMAIL"}}, "MessageConfiguration": {"EmailMessage": email_message}}
    status, answer = server.signed_request("POST", f"/v1/apps/{app_id}/messages", body)
    assert status == 200, answer
    assert answer["Result"][address]["DeliveryStatus"] == "SUCCESSFUL", answer


def received(relay: tuple[Relay, int], address: str) -> EmailMessage:
    [message] = [r.message() for r in relay[0].received if r.rcpt_tos == [address]]
    return message


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def simple(html: str = HTML, text: str = "Unsubscribe: {{UnsubscribeUrl}}") -> dict[str, Any]:
    return {"SimpleEmail": {"Subject": {"Data": "Receipt"}, "HtmlPart": {"Data": html}, "TextPart": {"Data": text}}}


def fetch(url: str, data: bytes | None = None, language: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers={"Accept-Language": language} if language else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def test_the_unsubscribe_url_variable_is_the_one_click_link(
    tracked: RunningServer, project: str, relay: tuple[Relay, int]
) -> None:
    send(tracked, project, "ana@example.org", simple())
    message = received(relay, "ana@example.org")
    header = str(message["List-Unsubscribe"]).strip("<>")
    assert header.startswith(f"{tracked.url}/t/u/")
    assert message.get_body(("plain",)).get_content().strip() == f"Unsubscribe: {header}"  # type: ignore[union-attr]
    links = re.findall(r'href="([^"]+)"', html_of(message))
    assert links[0].startswith(f"{tracked.url}/t/c/")  # the order link is tracked...
    assert links[1].replace("&amp;", "&") == header  # ...Clarion's own unsubscribe link is not wrapped
    status, confirm = fetch(header)
    assert status == 200 and 'method="post"' in confirm and "Stop receiving these emails?" in confirm
    status, done = fetch(header, data=b"List-Unsubscribe=One-Click")
    assert status == 200 and "You will not receive these emails any more." in done


def test_a_send_can_turn_tracking_and_list_unsubscribe_off(
    tracked: RunningServer, project: str, relay: tuple[Relay, int]
) -> None:
    off = {"OpenTracking": False, "ClickTracking": False, "ListUnsubscribe": False}
    send(tracked, project, "receipt@example.org", {**simple(), "ClarionTracking": off})
    message = received(relay, "receipt@example.org")
    html = html_of(message)
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert 'href="https://shop.example.com/order/1"' in html and "<img" not in html
    assert f'href="{tracked.url}/t/u/' in html  # the variable still gives the recipient a way out

    status, answer = tracked.signed_request(
        "POST",
        f"/v1/apps/{project}/messages",
        {
            "Addresses": {"x@example.org": {"ChannelType": "EMAIL"}},
            "MessageConfiguration": {"EmailMessage": {**simple(), "ClarionTracking": {"Pixel": False}}},
        },
    )
    assert status == 400 and "Pixel" in answer["Message"]


def test_a_template_sets_tracking_and_a_send_overrides_it(
    tracked: RunningServer, project: str, relay: tuple[Relay, int]
) -> None:
    template = {
        "Subject": "Receipt",
        "HtmlPart": HTML,
        "ClarionTracking": {"OpenTracking": False, "ListUnsubscribe": False},
    }
    status, answer = tracked.signed_request("POST", "/v1/templates/receipt/email", template)
    assert status == 201, answer
    status, stored = tracked.signed_request("GET", "/v1/templates/receipt/email", {})
    assert stored["ClarionTracking"] == {"OpenTracking": False, "ListUnsubscribe": False}

    def send_template(address: str, **email: Any) -> EmailMessage:
        body = {
            "Addresses": {address: {"ChannelType": "EMAIL"}},
            "MessageConfiguration": {"EmailMessage": email},
            "TemplateConfiguration": {"EmailTemplate": {"Name": "receipt"}},
        }
        status, answer = tracked.signed_request("POST", f"/v1/apps/{project}/messages", body)
        assert status == 200 and answer["Result"][address]["DeliveryStatus"] == "SUCCESSFUL", answer
        return received(relay, address)

    plain = send_template("t1@example.org")
    assert plain["List-Unsubscribe"] is None and "<img" not in html_of(plain)
    assert f'href="{tracked.url}/t/c/' in html_of(plain)  # clicks were left on
    overridden = send_template("t2@example.org", ClarionTracking={"OpenTracking": True})
    assert "<img" in html_of(overridden) and overridden["List-Unsubscribe"] is None


def test_the_unsubscribe_page_carries_the_projects_brand_and_language(
    tracked: RunningServer, project: str, relay: tuple[Relay, int]
) -> None:
    path = f"/v1/apps/{project}/settings"
    page = {"BrandName": "Shop & Co", "LogoUrl": "https://cdn.example.com/logo.png", "Language": "ko"}
    status, answer = tracked.signed_request("PUT", path, {"ClarionUnsubscribePage": page})
    assert status == 200 and answer["ClarionUnsubscribePage"] == page
    send(tracked, project, "min@example.org", simple())
    link = str(received(relay, "min@example.org")["List-Unsubscribe"]).strip("<>")
    _, confirm = fetch(link, language="en-US")
    assert "Shop &amp; Co의 이메일 수신을 중단하시겠습니까?" in confirm and ">수신 거부</button>" in confirm
    assert '<img src="https://cdn.example.com/logo.png" alt="Shop &amp; Co"' in confirm and 'lang="ko"' in confirm
    _, done = fetch(link, data=b"List-Unsubscribe=One-Click")
    assert "이제 Shop &amp; Co의 이메일을 받지 않습니다." in done

    # Without a Language, the recipient's browser chooses among the languages the page knows.
    status, _ = tracked.signed_request("PUT", path, {"ClarionUnsubscribePage": {"BrandName": "Shop & Co"}})
    assert status == 200
    _, french = fetch(link, language="pt-BR, fr-CA;q=0.8, ko;q=0.5")
    assert "Ne plus recevoir les e-mails de Shop &amp; Co ?" in french

    for bad, named in (
        ({"Language": "xx"}, "ClarionUnsubscribePage.Language"),
        ({"LogoUrl": "javascript:alert(1)"}, "ClarionUnsubscribePage.LogoUrl"),
        ({"BrandName": "x" * 101}, "ClarionUnsubscribePage.BrandName"),
    ):
        status, answer = tracked.signed_request("PUT", path, {"ClarionUnsubscribePage": bad})
        assert status == 400 and named in answer["Message"]


def test_the_page_language_follows_the_project_then_the_browser_then_english() -> None:
    assert choose_language(PageStyle(language="ja"), "ko") == "ja"
    assert choose_language(PageStyle(), "ko-KR,ko;q=0.9,en-US;q=0.8") == "ko"
    assert choose_language(PageStyle(), "de;q=0.2, es;q=0.9") == "es"
    assert choose_language(PageStyle(), "zh-TW, nl") == "en"
    assert choose_language(PageStyle(), "") == "en"
