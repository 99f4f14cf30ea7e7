"""Recommender configurations through boto3 on both stores, and templates naming one: a local recommender (and
transformer) server feeds the recommendations a campaign and a direct send render, received by a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import RunningServer, running
from smtp_relay import Relay
from structlog.testing import capture_logs
from test_campaign_engine import drive
from web_recorder import WebRecorder

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings, SmtpSettings, WebhookSettings
from clarion.channels.custom import sign
from clarion.config import Settings
from clarion.outbound.config import OutboundSettings
from clarion.queue.config import QueueSettings
from clarion.recommenders.config import RecommenderSettings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

ROLE = "arn:aws:iam::000000000000:role/not-assumed"
SIGNING_SECRET = "recommender-signing-secret"
TITLES = {"1815": "Fleabag", "2009": "Late Night", "1527": "Catastrophe", "1210": "Hanna", "6542": "Hunters"}
CATALOG = {"ep-a": ["1815", "2009", "1527"], "ep-b": ["1210", "6542"], "u-1": ["6542"]}  # ep-c: unknown
TEMPLATE = {
    "Subject": "Picks for {{Attributes.name}}",
    "TextPart": "Top {{RecommendationItems.[0]}}; all {{RecommendationItems}}; titles {{Recommendations.Title}}",
    "DefaultSubstitutions": '{"RecommendationItems": ["bestseller"]}',
}


def recommend(body: dict[str, Any]) -> tuple[int, Any]:
    """The recommender's side of the contract (docs/recommenders.md): ids in, items with attributes out."""
    found = {
        key: [{"ItemId": item, "Attributes": {"Title": TITLES[item]}} for item in CATALOG[key][: body["NumberOfItems"]]]
        for key in body["Ids"]
        if key in CATALOG
    }
    return 200, {"Recommendations": found}


def transform(body: dict[str, Any]) -> tuple[int, Any]:
    """A transformer answering as Pinpoint's Lambda functions did: the endpoints map itself, each with its
    `Recommendations` added (and an attribute the configuration does not name, which is not used)."""
    out = {}
    for endpoint_id, endpoint in body["Endpoints"].items():
        items = endpoint["RecommendationItems"]
        genres = ["Comedy" if item in ("1815", "2009", "1527") else "Action" for item in items]
        out[endpoint_id] = {**endpoint, "Recommendations": {"Genre": genres, "Title": "x", "Secret": "no"}}
    return 200, out


@contextmanager
def recommending_server(
    settings: Settings, relay_port: int | None = None, **recommenders: Any
) -> Iterator[RunningServer]:
    """A server whose tenant URLs may reach 127.0.0.1 (the operator's allowance), sending email to the relay or,
    without one, to the log (a dry run)."""
    sending: dict[str, Any] = (
        {"smtp": SmtpSettings(host="127.0.0.1", port=relay_port, security="none")} if relay_port else {"dry_run": True}
    )
    tuned = settings.model_copy(
        update={
            "queue": QueueSettings(workers=0),
            "campaigns": CampaignSettings(scheduler=False, batch_size=10),
            "delivery": DeliverySettings(webhook=WebhookSettings(signing_secret=SIGNING_SECRET), **sending),
            "outbound": OutboundSettings(allow_networks=["127.0.0.0/8"]),
            "recommenders": RecommenderSettings(retry_backoff_seconds=0, **recommenders),
        }
    )
    with running(tuned) as server:
        yield server


@contextmanager
def web(reply: Any) -> Iterator[WebRecorder]:
    recorder = WebRecorder(reply)
    try:
        yield recorder
    finally:
        recorder.close()


def create(client: Any, **members: Any) -> dict[str, Any]:
    request = {"RecommendationProviderRoleArn": ROLE, **members}
    return client.create_recommender_configuration(CreateRecommenderConfiguration=request)[
        "RecommenderConfigurationResponse"
    ]


def project(client: Any, endpoints: dict[str, dict[str, Any]]) -> str:
    app_id = client.create_app(CreateApplicationRequest={"Name": "picks"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "shop@example.com", "Identity": "example.com"}
    )
    items = [
        {"Id": key, "ChannelType": "EMAIL", "Address": f"{key}@example.org", "Attributes": {"name": [key]}, **extra}
        for key, extra in endpoints.items()
    ]
    client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    return app_id


def picks_template(client: Any, **configuration: Any) -> str:
    """A recommender configuration and the email template `picks` that names it; the configuration's id."""
    recommender_id = create(client, **configuration)["Id"]
    client.create_email_template(
        TemplateName="picks", EmailTemplateRequest={**TEMPLATE, "RecommenderId": recommender_id}
    )
    return recommender_id


def send_picks(client: Any, app_id: str, endpoint_ids: list[str]) -> dict[str, Any]:
    """SendMessages of the `picks` template to endpoints: their EndpointResult."""
    response = client.send_messages(
        ApplicationId=app_id,
        MessageRequest={
            "Endpoints": {endpoint_id: {} for endpoint_id in endpoint_ids},
            "MessageConfiguration": {},
            "TemplateConfiguration": {"EmailTemplate": {"Name": "picks"}},
        },
    )
    return dict(response["MessageResponse"]["EndpointResult"])


def error_of(excinfo: pytest.ExceptionInfo[ClientError], code: str) -> str:
    error = excinfo.value.response["Error"]
    assert error["Code"] == code
    return str(error["Message"])


def test_configurations_are_created_read_listed_replaced_and_deleted(client: Any) -> None:
    first = create(client, RecommendationProviderUri="https://recs.example.com/a", RecommendationsDisplayName="Picks")
    assert len(first["Id"]) == 32 and first["CreationDate"] == first["LastModifiedDate"]
    assert first["RecommendationProviderIdType"] == "PINPOINT_ENDPOINT_ID"  # Pinpoint's defaults, answered
    assert first["RecommendationsPerMessage"] == 5
    assert first["RecommendationProviderRoleArn"] == ROLE and "RecommendationTransformerUri" not in first
    second = create(
        client,
        Name="Movies 2026",
        Description="Titles; genres (from the catalogue)",
        RecommendationProviderUri="http://recs.example.com/b",
        RecommendationTransformerUri="https://transform.example.com/",
        RecommendationProviderIdType="PINPOINT_USER_ID",
        RecommendationsPerMessage=3,
        Attributes={"Title": "Movie title", "Genre-1": "Genre"},
    )
    assert (
        client.get_recommender_configuration(RecommenderId=second["Id"])["RecommenderConfigurationResponse"] == second
    )

    page = client.get_recommender_configurations(PageSize="1")["ListRecommenderConfigurationsResponse"]
    assert [item["Id"] for item in page["Item"]] == [first["Id"]]
    rest = client.get_recommender_configurations(PageSize="1", Token=page["NextToken"])
    assert [item["Id"] for item in rest["ListRecommenderConfigurationsResponse"]["Item"]] == [second["Id"]]
    assert "NextToken" not in rest["ListRecommenderConfigurationsResponse"]

    replaced = client.update_recommender_configuration(
        RecommenderId=second["Id"],
        UpdateRecommenderConfiguration={
            "RecommendationProviderUri": "https://recs.example.com/c",
            "RecommendationProviderRoleArn": ROLE,
            "RecommendationsDisplayName": "Picks",
        },
    )["RecommenderConfigurationResponse"]
    assert replaced["RecommendationProviderUri"] == "https://recs.example.com/c"
    assert "Name" not in replaced and "Attributes" not in replaced  # a PUT: members left out are gone
    assert replaced["RecommendationProviderIdType"] == "PINPOINT_ENDPOINT_ID"
    assert replaced["CreationDate"] == second["CreationDate"]

    deleted = client.delete_recommender_configuration(RecommenderId=first["Id"])["RecommenderConfigurationResponse"]
    assert deleted == first
    for call in (client.get_recommender_configuration, client.delete_recommender_configuration):
        with pytest.raises(ClientError) as excinfo:
            call(RecommenderId=first["Id"])
        assert first["Id"] in error_of(excinfo, "NotFoundException")
    with pytest.raises(ClientError) as excinfo:
        client.update_recommender_configuration(
            RecommenderId="0" * 32,
            UpdateRecommenderConfiguration={
                "RecommendationProviderUri": "https://r.example.com",
                "RecommendationProviderRoleArn": ROLE,
                "RecommendationsDisplayName": "P",
            },
        )
    error_of(excinfo, "NotFoundException")


TRANSFORMED = {"RecommendationTransformerUri": "https://t.example.com", "Attributes": {"Title": "Title"}}


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"RecommendationProviderUri": "arn:aws:personalize:us-east-1:1:campaign/c"}, "RecommendationProviderUri"),
        ({"RecommendationProviderUri": "ftp://recs.example.com"}, "RecommendationProviderUri"),
        ({"RecommendationProviderRoleArn": " "}, "RecommendationProviderRoleArn"),
        ({"RecommendationProviderIdType": "EMAIL"}, "RecommendationProviderIdType"),
        ({"RecommendationsPerMessage": 6}, "RecommendationsPerMessage"),
        ({"RecommendationsPerMessage": 0}, "RecommendationsPerMessage"),
        ({"Attributes": {"Title": "Title"}}, "Attributes are given only with a RecommendationTransformerUri"),
        ({"RecommendationTransformerUri": "https://t.example.com"}, "Attributes must map 1 to 10"),
        ({**TRANSFORMED, "RecommendationTransformerUri": "lambda-name"}, "RecommendationTransformerUri"),
        ({**TRANSFORMED, "Attributes": {f"a{n}": "A" for n in range(11)}}, "Attributes must map 1 to 10"),
        ({**TRANSFORMED, "Attributes": {"_title": "Title"}}, "Attributes name '_title'"),
        ({**TRANSFORMED, "Attributes": {"t" * 51: "Title"}}, "Attributes name"),
        ({**TRANSFORMED, "Attributes": {"Title": "T" * 26}}, "Attributes['Title']"),
        ({"RecommendationsDisplayName": None}, "RecommendationsDisplayName is required"),
        ({"RecommendationsDisplayName": "D" * 26}, "RecommendationsDisplayName"),
        ({"Name": "-movies"}, "Name"),
        ({"Name": "N" * 129}, "Name"),
        ({"Description": "Great picks!"}, "Description"),
    ],
)
def test_a_configuration_breaking_a_rule_is_refused_naming_the_member(
    client: Any, members: dict[str, Any], named: str
) -> None:
    request = {
        "RecommendationProviderUri": "https://recs.example.com",
        "RecommendationProviderRoleArn": ROLE,
        "RecommendationsDisplayName": "Picks",
        **members,
    }
    with pytest.raises(ClientError) as excinfo:
        client.create_recommender_configuration(
            CreateRecommenderConfiguration={key: value for key, value in request.items() if value is not None}
        )
    assert named in error_of(excinfo, "BadRequestException")


def test_an_account_holds_at_most_a_hundred_configurations(client: Any) -> None:
    for _ in range(100):
        create(client, RecommendationProviderUri="https://recs.example.com", RecommendationsDisplayName="Picks")
    with pytest.raises(ClientError) as excinfo:
        create(client, RecommendationProviderUri="https://recs.example.com", RecommendationsDisplayName="Picks")
    assert "at most 100" in error_of(excinfo, "BadRequestException")


def test_a_campaign_renders_each_members_recommendations_asked_for_in_one_batch(
    settings: Settings, relay: tuple[Relay, int]
) -> None:
    sink, port = relay
    with web(recommend) as recommender, recommending_server(settings, port) as server:
        client = server.client()
        app_id = project(client, {"ep-a": {}, "ep-b": {}, "ep-c": {}})
        recommender_id = picks_template(
            client,
            RecommendationProviderUri=f"{recommender.url}/recommend",
            RecommendationsDisplayName="Picks",
            RecommendationsPerMessage=2,
        )
        segment = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})
        client.create_campaign(
            ApplicationId=app_id,
            WriteCampaignRequest={
                "Name": "picks",
                "SegmentId": segment["SegmentResponse"]["Id"],
                "Schedule": {"StartTime": "IMMEDIATE"},
                "TemplateConfiguration": {"EmailTemplate": {"Name": "picks"}},
            },
        )
        drive(server)

    texts = {item.rcpt_tos[0]: item.message() for item in sink.received}
    assert set(texts) == {"ep-a@example.org", "ep-b@example.org", "ep-c@example.org"}
    assert texts["ep-a@example.org"]["Subject"] == "Picks for ep-a"
    body = {address: message.get_content().strip() for address, message in texts.items()}
    assert body["ep-a@example.org"] == "Top 1815; all 1815,2009; titles Fleabag,Late Night"  # 2 per message
    assert body["ep-b@example.org"] == "Top 1210; all 1210,6542; titles Hanna,Hunters"
    assert body["ep-c@example.org"] == "Top bestseller; all bestseller; titles"  # unknown: the template's default
    [(path, headers, asked)] = recommender.requests  # one call for the whole batch
    assert path == "/recommend" and headers["Content-Type"] == "application/json"
    assert sorted(asked["Ids"]) == ["ep-a", "ep-b", "ep-c"]
    assert (asked["ApplicationId"], asked["RecommenderId"]) == (app_id, recommender_id)
    assert (asked["IdType"], asked["NumberOfItems"]) == ("PINPOINT_ENDPOINT_ID", 2)


@pytest.mark.parametrize("wrapped", [True, False])
def test_a_direct_send_uses_the_transformer_and_fails_only_who_it_cannot_recommend_for(
    settings: Settings, wrapped: bool
) -> None:
    def partial_transform(body: dict[str, Any]) -> tuple[int, Any]:
        status, out = transform({"Endpoints": {k: v for k, v in body["Endpoints"].items() if k != "ep-b"}})
        return status, {"Endpoints": out} if wrapped else out  # Clarion's form or the Lambda's bare map; no ep-b

    with (
        web(recommend) as recommender,
        web(partial_transform) as transformer,
        recommending_server(settings) as server,
    ):
        client = server.client()
        app_id = project(client, {"ep-a": {}, "ep-b": {}})
        recommender_id = create(
            client,
            RecommendationProviderUri=recommender.url,
            RecommendationTransformerUri=transformer.url,
            Attributes={"Genre": "Genre"},
        )["Id"]
        client.create_sms_template(
            TemplateName="picks",
            SMSTemplateRequest={
                "Body": "{{RecommendationItems.[0]}} is {{Recommendations.Genre.[0]}}{{Recommendations.Secret}}",
                "RecommenderId": recommender_id,
            },
        )
        client.update_sms_channel(ApplicationId=app_id, SMSChannelRequest={"Enabled": True})
        client.update_endpoints_batch(
            ApplicationId=app_id,
            EndpointBatchRequest={
                "Item": [
                    {"Id": k, "ChannelType": "SMS", "Address": a}
                    for k, a in (("ep-a", "+14255550100"), ("ep-b", "+14255550101"))
                ]
            },
        )
        with capture_logs() as logs:
            result = client.send_messages(
                ApplicationId=app_id,
                MessageRequest={
                    "Addresses": {"+14255550199": {"ChannelType": "SMS"}},
                    "Endpoints": {"ep-a": {}, "ep-b": {}},
                    "MessageConfiguration": {},
                    "TemplateConfiguration": {"SMSTemplate": {"Name": "picks"}},
                },
            )["MessageResponse"]
        metric = server.services.metrics.registry.get_sample_value(
            "clarion_recommender_failures_total", {"stage": "transformer", "reason": "missing"}
        )
    sent = {entry["address"]: entry["content"]["body"] for entry in logs if entry["event"] == "message_logged"}
    assert sent == {"+14255550100": "1815 is Comedy"}  # only the named attributes render
    ep_b = result["EndpointResult"]["ep-b"]
    assert ep_b["DeliveryStatus"] == "PERMANENT_FAILURE" and "returned no endpoint 'ep-b'" in ep_b["StatusMessage"]
    address = result["Result"]["+14255550199"]
    assert address["DeliveryStatus"] == "PERMANENT_FAILURE" and "keyed by endpoint id" in address["StatusMessage"]
    assert metric == 1
    assert any(entry["event"] == "recommendation failed" and entry["stage"] == "transformer" for entry in logs)
    [(_, headers, given)] = transformer.requests
    timestamp = int(headers["X-Clarion-Signature"].split(",")[0].removeprefix("t="))
    assert headers["X-Clarion-Signature"] == sign(SIGNING_SECRET, timestamp, transformer.bodies[0])  # as webhooks
    assert set(given["Endpoints"]) == {"ep-a", "ep-b"}
    assert given["Endpoints"]["ep-a"]["RecommendationItems"] == ["1815", "2009", "1527"]
    assert given["Endpoints"]["ep-a"]["Address"] == "+14255550100" and "RequestId" not in given["Endpoints"]["ep-a"]


def test_user_ids_are_asked_once_per_user_in_batches(settings: Settings) -> None:
    with web(recommend) as recommender, recommending_server(settings, batch_size=2) as server:
        client = server.client()
        users = {f"ep-{n}": {"User": {"UserId": f"u-{n % 3}"}} for n in range(6)}
        app_id = project(client, {**users, "no-user": {}})
        picks_template(
            client,
            RecommendationProviderUri=recommender.url,
            RecommendationsDisplayName="Picks",
            RecommendationProviderIdType="PINPOINT_USER_ID",
        )
        result = send_picks(client, app_id, [*users, "no-user"])
    asked = [request["Ids"] for _, _, request in recommender.requests]
    assert sorted(key for ids in asked for key in ids) == ["u-0", "u-1", "u-2"] and max(map(len, asked)) == 2
    assert all(result[key]["DeliveryStatus"] == "SUCCESSFUL" for key in users)
    assert "keyed by user id" in result["no-user"]["StatusMessage"]


@pytest.mark.parametrize(
    ("status", "delivery_status", "calls", "reason"),
    [
        (503, "TEMPORARY_FAILURE", 2, "status"),
        (400, "PERMANENT_FAILURE", 1, "status"),
        (200, "PERMANENT_FAILURE", 1, "malformed"),
    ],
)
def test_a_failing_recommender_means_no_message(
    settings: Settings, status: int, delivery_status: str, calls: int, reason: str
) -> None:
    with (
        web(lambda body: (status, {"Recommendations": "not a map"})) as recommender,
        recommending_server(settings, attempts=2) as server,
    ):
        client = server.client()
        app_id = project(client, {"ep-a": {}})
        picks_template(client, RecommendationProviderUri=recommender.url, RecommendationsDisplayName="Picks")
        result = send_picks(client, app_id, ["ep-a"])["ep-a"]
        failures = server.services.metrics.registry.get_sample_value(
            "clarion_recommender_failures_total", {"stage": "recommender", "reason": reason}
        )
    assert result["DeliveryStatus"] == delivery_status and "Recommendations could not be had" in result["StatusMessage"]
    assert len(recommender.requests) == calls and failures == 1


def test_a_recommender_inside_the_operators_network_is_refused(settings: Settings) -> None:
    """Without the operator's allowance for 127.0.0.1, the guarded client refuses the tenant's URL."""
    with (
        web(recommend) as recommender,
        running(settings.model_copy(update={"delivery": DeliverySettings(dry_run=True)})) as server,
    ):
        client = server.client()
        app_id = project(client, {"ep-a": {}})
        recommender_id = picks_template(
            client, RecommendationProviderUri=recommender.url, RecommendationsDisplayName="Picks"
        )
        client.delete_recommender_configuration(RecommenderId=recommender_id)
        gone = send_picks(client, app_id, ["ep-a"])["ep-a"]
        recreated = create(client, RecommendationProviderUri=recommender.url, RecommendationsDisplayName="Picks")["Id"]
        client.update_email_template(
            TemplateName="picks", EmailTemplateRequest={**TEMPLATE, "RecommenderId": recreated}
        )
        refused = send_picks(client, app_id, ["ep-a"])["ep-a"]
    assert gone["DeliveryStatus"] == "PERMANENT_FAILURE" and "does not exist" in gone["StatusMessage"]
    assert refused["DeliveryStatus"] == "PERMANENT_FAILURE" and "loopback" in refused["StatusMessage"]
    assert recommender.requests == []
