"""The console's Dashboard, Costs and Journeys pages in a real browser (Debian's Chromium through Playwright) against
a real Clarion server that has sent known traffic: the figures the pages show are the KPI, cost and journey metric
operations' own, formatted for the reader, and the Korean pages show no English left untranslated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import RunningServer
from console_browser import PASSWORD, ConsolePage, console_server, english_strings, keep_for_docs
from test_costs import send

from clarion.analytics.config import CostSettings, ProviderPrices
from clarion.channels.config import DeliverySettings
from clarion.queue.config import QueueSettings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    costs = CostSettings(
        provider=ProviderPrices(currency="EUR", email=Decimal("0.0002"), sms={"default": Decimal("0.0075")}),
        pinpoint_sms={"US": Decimal("0.00581")},
    )
    settings = {"delivery": DeliverySettings(dry_run=True), "queue": QueueSettings(workers=0), "costs": costs}
    with console_server(Path(tmp_path_factory.mktemp("dashboards")), **settings) as running:
        yield running


@pytest.fixture(scope="module")
def app_id(server: RunningServer) -> str:
    """A project that sent three emails and two SMS to the US directly (a dry run: every one handed over)."""
    client = server.client()
    app = client.create_app(CreateApplicationRequest={"Name": "Spring sale"})["ApplicationResponse"]["Id"]
    send(client, app, {"ana@example.com": "EMAIL", "bo@example.com": "EMAIL", "+14255550100": "SMS"})
    send(client, app, {"cy@example.com": "EMAIL", "+14255550101": "SMS"})
    return app


def kpi(server: RunningServer, app_id: str, name: str) -> float:
    """A single-value application KPI over the last 31 days, as boto3 reads it."""
    rows = server.client().get_application_date_range_kpi(ApplicationId=app_id, KpiName=name)[
        "ApplicationDateRangeKpiResponse"
    ]["KpiResult"]["Rows"]
    return float(rows[0]["Values"][0]["Value"]) if rows else 0.0


def percent(value: float) -> str:
    """Intl.NumberFormat('en-US', {style: 'percent', maximumFractionDigits: 1})."""
    return f"{round(value * 100, 1):g}%"


def money(amount: str, symbol: str) -> str:
    """Intl.NumberFormat('en-US', {style: 'currency', maximumFractionDigits: 6}): at least two decimals."""
    exact = Decimal(amount).quantize(Decimal("0.000001")).normalize()
    return f"{symbol}{max(exact, exact.quantize(Decimal('0.01')), key=lambda d: -d.as_tuple().exponent):f}"


def test_the_dashboard_shows_the_projects_kpis(console: ConsolePage, server: RunningServer, app_id: str) -> None:
    sent = kpi(server, app_id, "txn-emails-sent")
    delivered = kpi(server, app_id, "txn-emails-delivered")
    sms_sent = kpi(server, app_id, "txn-sms-sent")
    assert (sent, sms_sent) == (3, 2)  # the traffic the fixture sent, so the page has something to show
    console.sign_in("ann", f"apps/{app_id}/dashboard")  # an analyst reads dashboards
    page = console.page
    expected = {
        "emails-sent": f"{sent:g}",
        "email-delivery-rate": percent(delivered / sent),
        "email-open-rate": percent(kpi(server, app_id, "txn-emails-unique-opens") / delivered),
        "sms-sent": f"{sms_sent:g}",
        "sms-delivery-rate": percent(kpi(server, app_id, "txn-sms-delivered") / sms_sent),
        "campaign-deliveries": f"{kpi(server, app_id, 'unique-deliveries'):g}",
    }
    for test_id, text in expected.items():
        page.get_by_test_id(test_id).filter(has_text=re.compile(f"^{re.escape(text)}$")).wait_for()
    page.get_by_text("This project has no journeys.").wait_for()
    page.locator(".recharts-surface").first.wait_for()  # the charts drew
    console.screenshot("dashboard")
    keep_for_docs("dashboard", "console-dashboard.png")

    page.get_by_text("Last 7 days").click()  # today's traffic is in the last 7 days too
    assert page.get_by_role("radio", name="Last 7 days").is_checked()
    page.get_by_test_id("emails-sent").filter(has_text=re.compile("^3$")).wait_for()


def test_the_costs_page_shows_the_cost_view(console: ConsolePage, server: RunningServer, app_id: str) -> None:
    status, answer = server.signed_request("GET", f"/v1/clarion/costs?application-id={app_id}", {})
    assert status == 200
    project = answer["Projects"][0]
    console.sign_in("ada", f"apps/{app_id}/costs")
    page = console.page
    lines = page.get_by_test_id("cost-lines")
    lines.wait_for()
    assert page.get_by_test_id("pinpoint-total").inner_text() == money(project["Pinpoint"]["Total"], "$")
    assert page.get_by_test_id("provider-total").inner_text() == money(project["Provider"]["Total"], "€")
    email = next(line for line in project["Pinpoint"]["Lines"] if line["Meter"] == "Email")
    row = page.get_by_test_id("cost-Email").get_by_role("cell")
    assert row.all_inner_texts()[2:4] == [str(email["Quantity"]), money(email["Amount"], "$")]
    assert page.get_by_test_id("cost-SMS-US").get_by_role("cell").nth(2).inner_text() == "2"  # parts
    page.locator(".recharts-bar-rectangle").last.wait_for()  # this month's bars
    console.screenshot("costs")
    keep_for_docs("costs", "console-costs.png")


@pytest.fixture(scope="module")
def journey_id(server: RunningServer, app_id: str) -> str:
    """A draft journey: an email, a day's wait, then a yes/no split on whether it was opened."""
    request = {
        "Name": "Welcome",
        "StartActivity": "welcome",
        "Activities": {
            "welcome": {"EMAIL": {"NextActivity": "wait"}, "Description": "Welcome mail"},
            "wait": {"Wait": {"WaitTime": {"WaitFor": "P1D"}, "NextActivity": "opened"}},
            "opened": {
                "ConditionalSplit": {
                    "Condition": {
                        "Conditions": [
                            {
                                "EventCondition": {
                                    "MessageActivity": "welcome",
                                    "Dimensions": {
                                        "EventType": {"DimensionType": "INCLUSIVE", "Values": ["_email.open"]}
                                    },
                                }
                            }
                        ],
                        "Operator": "ALL",
                    },
                    "EvaluationWaitTime": {"WaitFor": "PT1H"},
                    "TrueActivity": "thanks",
                    "FalseActivity": "reminder",
                }
            },
            "thanks": {"EMAIL": {}},
            "reminder": {"EMAIL": {}},
        },
    }
    answer = server.client().create_journey(ApplicationId=app_id, WriteJourneyRequest=request)
    return str(answer["JourneyResponse"]["Id"])


def test_a_journey_is_drawn_with_its_activities_and_their_counts(
    console: ConsolePage, server: RunningServer, app_id: str, journey_id: str
) -> None:
    client = server.client()
    console.sign_in("mark", f"apps/{app_id}/journeys")
    page = console.page
    page.get_by_role("link", name="Welcome").click()
    page.get_by_test_id("journey-canvas").wait_for()
    for activity in ("welcome", "wait", "opened", "thanks", "reminder"):
        node = page.get_by_test_id(f"activity-{activity}")
        node.wait_for()
        metrics = client.get_journey_execution_activity_metrics(
            ApplicationId=app_id, JourneyId=journey_id, JourneyActivityId=activity
        )["JourneyExecutionActivityMetricsResponse"]["Metrics"]
        for name, value in metrics.items():
            assert page.get_by_test_id(f"metric-{activity}-{name}").inner_text().endswith(f": {int(value):,}")
        assert node.get_by_test_id(re.compile(f"^metric-{activity}-")).count() == len(metrics)
    assert page.get_by_test_id("activity-welcome").inner_text().split() == ["Send", "an", "email", "Welcome", "mail"]
    assert page.locator(".react-flow__edge").count() == 4
    assert page.get_by_text("Yes", exact=True).count() == 1 and page.get_by_text("No", exact=True).count() == 1
    console.screenshot("journey")


def test_the_korean_pages_are_translated(korean_console: ConsolePage, app_id: str, journey_id: str) -> None:
    english = english_strings("dashboard", "costs", "journeys", "nav")
    korean_console.open()
    signed_in = korean_console.page.evaluate(
        """async (password) => (await fetch('/v1/clarion/session', {method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({Username: 'ada', Password: password})})).status""",
        PASSWORD,
    )
    assert signed_in == 200
    pages = {
        "dashboard": ("emails-sent", ".recharts-surface"),
        "costs": ("cost-lines", ".recharts-surface"),
        "journeys": ("journeys", "a"),
        f"journeys/{journey_id}": ("activity-welcome", ".react-flow__node"),
    }
    for path, (ready, drawn) in pages.items():
        korean_console.open(f"apps/{app_id}/{path}")
        korean_console.page.get_by_test_id(ready).wait_for()
        korean_console.page.locator(drawn).first.wait_for()
        shown = korean_console.page.locator("body").inner_text()
        assert [text for text in english if text in shown] == []
        assert "대시보드" in shown
        korean_console.screenshot(f"{path.split('/')[0]}-ko")
