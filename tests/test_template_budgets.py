"""Templates as untrusted programs: render budgets, what is refused at save and send time, and the MJML compiler
kept out of the server's process. End to end through boto3 on both stores; the engine directly for fuzzing.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import RunningServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pinpoint_calls import everyone
from test_campaign_engine import activities, add_endpoints, drive, state

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings
from clarion.config import Settings
from clarion.messages.rendering import SLICE_SECONDS, _loop_share
from clarion.queue.config import QueueSettings
from clarion.store import messages as message_store
from clarion.templates.budget import CLOCK_EVERY
from clarion.templates.config import TemplateSettings
from clarion.templates.email_html import MAX_NESTING
from clarion.templates.handlebars import BudgetExceeded, Environment, Limits, TemplateSyntaxError
from clarion.templates.html_worker import HtmlWorker, WorkerFailed

# Calls itself twice under a condition the compiler cannot see through: today's Handlebars.js overflows its
# stack; without a budget this walks a binary tree hundreds of levels deep and never finishes.
RUNAWAY = '{{#*inline "a"}}x{{#if true}}{{> a}}{{> a}}{{/if}}{{/inline}}{{> a}}'


def deep_mjml(levels: int) -> str:
    return "<mjml><mj-body>" + "<mj-wrapper>" * levels + "</mj-wrapper>" * levels + "</mj-body></mjml>"


@pytest.fixture
def sender(migrated_settings: Settings) -> Iterator[RunningServer]:
    server = RunningServer(migrated_settings.model_copy(update={"delivery": DeliverySettings(dry_run=True)})).start()
    try:
        yield server
    finally:
        server.stop()


def email(html: str, **extra: Any) -> dict[str, Any]:
    return {
        "EmailMessage": {
            "FromAddress": "shop@example.com",
            "SimpleEmail": {"Subject": {"Data": "Hello"}, "HtmlPart": {"Data": html}},
            **extra,
        }
    }


def send(client: Any, app_id: str, config: dict[str, Any], addresses: dict[str, Any]) -> dict[str, Any]:
    request = {"Addresses": addresses, "MessageConfiguration": config}
    return client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]["Result"]


def bad_request(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["Error"]["Code"] == "BadRequestException"
    return info.value.response["Error"]["Message"]


# -- direct sends ------------------------------------------------------------------------------------------------


def test_a_runaway_template_fails_its_recipient_promptly_and_the_server_serves_on(sender: RunningServer) -> None:
    # A read timeout makes a frozen server fail the test instead of hanging it.
    client = sender.client(read_timeout=60)
    victim = client.create_app(CreateApplicationRequest={"Name": "attacked"})["ApplicationResponse"]["Id"]
    other = client.create_app(CreateApplicationRequest={"Name": "other"})["ApplicationResponse"]["Id"]
    config = {**email(RUNAWAY), "SMSMessage": {"Body": "Code {{Code}}"}}
    results = send(
        client,
        victim,
        config,
        {
            "ana@example.com": {"ChannelType": "EMAIL"},
            "+14255550100": {"ChannelType": "SMS", "Substitutions": {"Code": ["4711"]}},
        },
    )
    failed = results["ana@example.com"]
    assert failed["DeliveryStatus"] == "PERMANENT_FAILURE"
    assert "partials nested more than 32 deep" in failed["StatusMessage"]
    assert "templates.max_partial_depth" in failed["StatusMessage"]
    assert results["+14255550100"]["DeliveryStatus"] == "SUCCESSFUL"  # the message fails alone
    # The same process answers the next request, for another project, at once.
    again = send(client, other, email("<p>Hi {{Name}}</p>"), {"bo@example.com": {"ChannelType": "EMAIL"}})
    assert again["bo@example.com"]["DeliveryStatus"] == "SUCCESSFUL"


@pytest.fixture
def patient_sender(migrated_settings: Settings) -> Iterator[RunningServer]:
    """A sender whose time budget a loaded machine cannot reach first, so the step and output budgets are tested."""
    patient = migrated_settings.model_copy(
        update={"delivery": DeliverySettings(dry_run=True), "templates": TemplateSettings(max_render_ms=30_000)}
    )
    with RunningServer(patient) as server:
        yield server


def test_blow_ups_are_cut_off_by_the_step_and_output_budgets(patient_sender: RunningServer) -> None:
    client = patient_sender.client(read_timeout=60)
    app_id = client.create_app(CreateApplicationRequest={"Name": "blow-ups"})["ApplicationResponse"]["Id"]
    items = {"Substitutions": {"L": [str(n) for n in range(100)]}}
    nested = (
        "{{#each L}}{{#each ../L}}{{#each ../../L}}{{#each ../../../L}}<b>x</b>{{/each}}{{/each}}{{/each}}{{/each}}"
    )
    cases = {
        "nested@example.com": (nested, ("more than 50,000 steps (templates.max_steps)",)),
        "pad@example.com": ('{{ljust "x" 100000000}}', ("longer than 2,000,000 characters",)),
        "replace@example.com": (
            '{{replace (replace (replace (replace (rjust "a" 100 pad="a") "a" "aaaaaaaaaaaa") "a" "aaaaaaaaaaaa") "a" '
            '"aaaaaaaaaaaa") "a" "aaaaaaaaaaaa"}}',
            ("templates.max_output",),
        ),
        "wide@example.com": ("{{#each L}}" + "{{ljust . 2000}}" * 20 + "{{/each}}", ("templates.max_output",)),
    }
    for address, (html, expected) in cases.items():
        result = send(client, app_id, email(html, **items), {address: {"ChannelType": "EMAIL"}})[address]
        assert result["DeliveryStatus"] == "PERMANENT_FAILURE", address
        assert any(reason in result["StatusMessage"] for reason in expected), (address, result["StatusMessage"])


def test_what_cannot_render_is_refused_at_save_and_at_send(sender: RunningServer) -> None:
    client = sender.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "refusals"})["ApplicationResponse"]["Id"]
    literal = "1" * 400

    def save(html: str) -> str:
        request = {"Subject": "s", "HtmlPart": html}
        return bad_request(lambda: client.create_email_template(TemplateName="t", EmailTemplateRequest=request))

    message = save(f"<p>\n  {{{{add {literal} 1}}}}</p>")
    assert message.startswith("HtmlPart is not a valid template: line 2, column 9: the number 1111")
    assert "cannot be represented exactly (Handlebars.js would use Infinity)" in message
    message = save("<p>Hi {{shout User.UserId}}</p>")
    assert message == (
        "HtmlPart is not a valid template: line 1, column 9: shout is not a helper (Handlebars.js fails with "
        "'Missing helper'); the helpers are Pinpoint's (docs/templates.md)"
    )
    assert "line 1, column 1: partial 'a' calls itself on every path" in save(
        '{{#*inline "a"}}{{> a}}{{/inline}}{{> a}}'
    )
    assert "partial 'footer' is not declared" in save("<p>x</p>{{> footer}}")
    for bad in (
        "{{9007199254740993}}",
        "{{#shout a}}x{{/shout}}",
        "{{upper (shout a)}}",
        "{{Attributes.name 1}}",
    ):
        assert "is not a valid template" in bad_request(
            lambda bad=bad: client.create_sms_template(TemplateName="t", SMSTemplateRequest={"Body": bad})
        )
    message = bad_request(
        lambda: send(client, app_id, email(f"{{{{add {literal} 1}}}}"), {"a@b.c": {"ChannelType": "EMAIL"}})
    )
    assert message.startswith(
        "MessageConfiguration.EmailMessage.SimpleEmail.HtmlPart.Data: line 1, column 7: the number"
    )
    # Numbers JavaScript reads as written still compile.
    client.create_sms_template(TemplateName="t", SMSTemplateRequest={"Body": "{{add 9007199254740992 0.5}} {{-1.50}}"})


def test_renders_take_turns_with_other_work_on_the_event_loop() -> None:
    """Renders that together pass `SLICE_SECONDS` in one turn of the loop let the rest of the turn run first."""
    order: list[object] = []

    async def main() -> None:
        share = _loop_share()

        async def render(n: int) -> None:
            await share.turn()
            order.append(n)
            share.add(SLICE_SECONDS * 0.6)  # as if the render had taken that long

        tasks = [asyncio.create_task(render(n)) for n in range(4)]
        asyncio.get_running_loop().call_soon(order.append, "other work")  # queued behind the four renders
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == [0, 1, "other work", 2, 3]


# -- campaigns -----------------------------------------------------------------------------------------------------


@pytest.fixture
def engine(migrated_settings: Settings) -> Iterator[RunningServer]:
    tuned = migrated_settings.model_copy(
        update={
            "queue": QueueSettings(workers=0),
            "campaigns": CampaignSettings(scheduler=False, batch_size=10),
            "delivery": DeliverySettings(dry_run=True),
        }
    )
    server = RunningServer(tuned).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_stored_campaign_with_a_runaway_template_completes_with_failures(engine: RunningServer) -> None:
    pinpoint = engine.client()
    app_id = pinpoint.create_app(CreateApplicationRequest={"Name": "c"})["ApplicationResponse"]["Id"]
    pinpoint.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    ids = add_endpoints(pinpoint, app_id, 25)
    body = {
        "Name": "runaway",
        "SegmentId": everyone(pinpoint, app_id),
        "Schedule": {"StartTime": "IMMEDIATE"},
        "MessageConfiguration": {"EmailMessage": {"Title": "Hi", "HtmlBody": RUNAWAY}},
    }
    created = pinpoint.create_campaign(ApplicationId=app_id, WriteCampaignRequest=body)["CampaignResponse"]
    drive(engine)  # returns: every batch completes, nothing waits to be retried
    assert drive(engine) == 0
    assert state(pinpoint, app_id, created["Id"]) == "COMPLETED"
    [activity] = activities(pinpoint, app_id, created["Id"])
    assert activity["TotalEndpointCount"] == len(ids) and activity["SuccessfulEndpointCount"] == 0
    rows = engine.run(lambda services: services.db.read(lambda tx: message_store.recent(tx, app_id, 100)))
    assert len(rows) == len(ids)
    for row in rows:
        assert row.status == "PERMANENT_FAILURE"
        assert "could not be rendered: partials nested more than 32 deep" in (row.status_message or "")


# -- MJML and the native compiler ------------------------------------------------------------------------------------


def test_deep_mjml_is_refused_and_the_server_lives_on(sender: RunningServer) -> None:
    client = sender.client()
    request = {"Subject": "s", "HtmlPart": deep_mjml(MAX_NESTING + 50)}
    message = bad_request(lambda: client.create_email_template(TemplateName="deep", EmailTemplateRequest=request))
    assert message == (
        f"HtmlPart nests elements {MAX_NESTING + 52} deep; MJML and CSS inlining accept at most {MAX_NESTING} "
        "open elements"
    )
    deep_html = "<style>b{color:red}</style>" + "<div>" * 5000 + "x" + "</div>" * 5000
    request = {"Subject": "s", "HtmlPart": deep_html}
    assert "nests elements 5000 deep" in bad_request(
        lambda: client.create_email_template(TemplateName="deep", EmailTemplateRequest=request)
    )
    request = {"Subject": "s", "HtmlPart": deep_mjml(20)}
    client.create_email_template(TemplateName="fine", EmailTemplateRequest=request)
    assert client.get_email_template(TemplateName="fine")["EmailTemplateResponse"]["HtmlPart"] == deep_mjml(20)
    assert sender.client().get_apps()["ApplicationsResponse"]["Item"] == []


def test_a_crash_in_the_html_compiler_is_contained_in_its_child_process() -> None:
    worker = HtmlWorker()
    try:
        assert "<!doctype html>" in worker.compile(deep_mjml(3))["html"].lower()
        first = worker.pid
        # What the nesting check keeps from the libraries: here it reaches them, in the child, which dies.
        with pytest.raises(WorkerFailed, match="killed by SIGSEGV"):
            worker.compile(deep_mjml(20_000))
        assert worker.pid is None
        assert worker.compile("<mjml><mj-body></mj-body></mjml>")["html"]  # a new child took over
        assert worker.pid not in (None, first)
        assert "does not compile" in worker.compile("<mjml><mj-body><mj-text>")["error"]  # errors are answers
        worker.timeout_seconds = 1e-6
        with pytest.raises(WorkerFailed, match="took longer than"):
            worker.compile(deep_mjml(500))
        worker.timeout_seconds = 10
        assert worker.compile(deep_mjml(3))["html"]
    finally:
        worker.close()


# -- the engine under budgets ----------------------------------------------------------------------------------------


def test_each_budget_is_named_and_one_state_spans_the_parts_of_a_message() -> None:
    env = Environment(limits=Limits(steps=1_000, depth=3, output=100, seconds=10))
    loop = env.compile("{{#each L}}{{#each ../L}}{{/each}}{{/each}}")
    with pytest.raises(BudgetExceeded, match="more than 1,000 steps") as info:
        loop.render({"L": list(range(40))})
    assert info.value.budget == "steps"
    with pytest.raises(BudgetExceeded) as info:
        env.compile(RUNAWAY).render({})
    assert info.value.budget == "depth"
    with pytest.raises(BudgetExceeded) as info:
        env.compile("{{#each L}}{{.}}{{/each}}").render({"L": ["0123456789"] * 11})
    assert info.value.budget == "output"
    slow = Environment(limits=Limits(steps=10**9, seconds=0.001))
    with pytest.raises(BudgetExceeded) as info:
        slow.compile("{{#each L}}{{#each ../L}}{{sha512 .}}{{/each}}{{/each}}").render({"L": ["x" * 1000] * 300})
    assert info.value.budget == "time"
    # One message: its parts draw on one budget, so two parts of 600 steps exceed 1,000 together.
    part = env.compile("{{#each L}}{{/each}}")
    shared = env.new_state()
    part.render({"L": [0] * 600}, shared)
    with pytest.raises(BudgetExceeded, match="steps"):
        part.render({"L": [0] * 600}, shared)


_PIECES = st.sampled_from(
    [
        *"{{}}#/>.~ abx\n",
        "{{#each L}}",
        "{{/each}}",
        "{{#if a}}",
        "{{/if}}",
        "{{else}}",
        '{{#*inline "p"}}',
        '{{#*inline "q"}}',
        "{{/inline}}",
        "{{> p}}",
        "{{> q}}",
        "{{../L}}",
        "{{@index}}",
        '{{ljust a 40 pad="*"}}',
        "{{rjust . 2000}}",
        '{{join L "--"}}',
        '{{replace a "b" "bbbb"}}',
        "{{upper (lower a)}}",
        "{{add 1 2.5}}",
        "{{" + "9" * 30 + "}}",
        "{{nohelper a}}",
        "{{#with L}}",
        "{{/with}}",
    ]
)
_FUZZ_LIMITS = Limits(steps=300, depth=4, output=3_000, seconds=5)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.lists(_PIECES, max_size=40).map("".join),
    width=st.integers(0, 30),
    a=st.text(max_size=20),
)
def test_fuzz_compile_and_render_stay_within_budget(source: str, width: int, a: str) -> None:
    env = Environment(limits=_FUZZ_LIMITS)
    try:
        template = env.compile(source)
    except TemplateSyntaxError:
        return
    state = env.new_state()
    try:
        out = template.render({"a": a, "L": [a] * width}, state)
    except BudgetExceeded as exceeded:
        assert exceeded.budget in ("steps", "depth", "output", "time")
        return
    assert len(out) <= _FUZZ_LIMITS.output
    assert state.spent + CLOCK_EVERY - state.fuel <= _FUZZ_LIMITS.steps + CLOCK_EVERY
    assert state.depth == 0


def test_budget_stops_are_counted_in_the_metrics(sender: RunningServer) -> None:
    client = sender.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "metrics"})["ApplicationResponse"]["Id"]
    send(client, app_id, email(RUNAWAY), {"a@example.com": {"ChannelType": "EMAIL"}})
    text = urllib.request.urlopen(f"{sender.url}/metrics").read().decode()
    prefix = 'clarion_template_budget_exceeded_total{budget="depth"} '
    [line] = [line for line in text.splitlines() if line.startswith(prefix)]
    assert float(line.removeprefix(prefix)) >= 1
