"""Message templates through boto3 against a running Clarion: Pinpoint's API Reference, "Templates".

Create/Get/Update/Delete for the five types, ListTemplates, ListTemplateVersions and UpdateTemplateActiveVersion;
the version rules, the validation errors with what they name, tags on template ARNs. Every test runs on SQLite
and on PostgreSQL. Sending with templates is not built yet and not tested here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"
REGION = "eu-west-1"
ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

EMAIL = {"Subject": "Hi {{User.UserAttributes.FirstName.[0]}}", "HtmlPart": "<p>Hello</p>", "TextPart": "Hello"}
REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # type → (operation infix, request member, minimal valid request)
    "EMAIL": ("email", "EmailTemplateRequest", EMAIL),
    "SMS": ("sms", "SMSTemplateRequest", {"Body": "Code {{Attributes.code}}"}),
    "PUSH": ("push", "PushNotificationTemplateRequest", {"Default": {"Title": "T", "Body": "B {{Id}}"}}),
    "VOICE": ("voice", "VoiceTemplateRequest", {"Body": "Hello {{Id}}", "LanguageCode": "en-US", "VoiceId": "Joanna"}),
    "INAPP": (
        "in_app",
        "InAppTemplateRequest",
        {
            "Content": [{"BodyConfig": {"Alignment": "LEFT", "Body": "Hi", "TextColor": "#000000"}}],
            "Layout": "OVERLAYS",
        },
    ),
}
RESPONSES = {
    "EMAIL": "EmailTemplateResponse",
    "SMS": "SMSTemplateResponse",
    "PUSH": "PushNotificationTemplateResponse",
    "VOICE": "VoiceTemplateResponse",
    "INAPP": "InAppTemplateResponse",
}


# --- helpers -------------------------------------------------------------------------------------------------


def create(client: Any, name: str, template_type: str = "EMAIL", **request: Any) -> dict[str, Any]:
    infix, member, default = REQUESTS[template_type]
    response = getattr(client, f"create_{infix}_template")(TemplateName=name, **{member: request or default})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    body = response.get("CreateTemplateMessageBody") or response["TemplateCreateMessageBody"]
    assert body["RequestID"] == response["ResponseMetadata"]["RequestId"]
    return body


def get(client: Any, name: str, template_type: str = "EMAIL", version: str | None = None) -> dict[str, Any]:
    infix = REQUESTS[template_type][0]
    extra = {"Version": version} if version is not None else {}
    response = getattr(client, f"get_{infix}_template")(TemplateName=name, **extra)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    return response[RESPONSES[template_type]]


def update(client: Any, name: str, template_type: str = "EMAIL", request: dict[str, Any] | None = None, **query: Any):
    infix, member, default = REQUESTS[template_type]
    response = getattr(client, f"update_{infix}_template")(TemplateName=name, **{member: request or default}, **query)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["MessageBody"]["RequestID"] == response["ResponseMetadata"]["RequestId"]
    return response


def delete(client: Any, name: str, template_type: str = "EMAIL", **query: Any) -> None:
    infix = REQUESTS[template_type][0]
    response = getattr(client, f"delete_{infix}_template")(TemplateName=name, **query)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202


def versions(client: Any, name: str, template_type: str = "EMAIL") -> list[str]:
    items = client.list_template_versions(TemplateName=name, TemplateType=template_type)
    return [item["Version"] for item in items["TemplateVersionsResponse"]["Item"]]


def error(excinfo: pytest.ExceptionInfo[ClientError], code: str) -> str:
    response = excinfo.value.response
    assert response["Error"]["Code"] == code, response
    assert (
        response["ResponseMetadata"]["HTTPStatusCode"] == {"BadRequestException": 400, "NotFoundException": 404}[code]
    )
    return response["Error"]["Message"]


def bad_create(client: Any, name: str, template_type: str = "EMAIL", **request: Any) -> str:
    with pytest.raises(ClientError) as excinfo:
        create(client, name, template_type, **request)
    return error(excinfo, "BadRequestException")


def template_arn(name: str, template_type: str) -> str:
    return f"arn:aws:mobiletargeting:{REGION}:{ACCOUNT}:templates/{name}/{template_type}"


# --- every type: create, get, update, delete -----------------------------------------------------------------


@pytest.mark.parametrize("template_type", list(REQUESTS))
def test_lifecycle_of_each_type(client: Any, template_type: str) -> None:
    created = create(client, "welcome", template_type)
    assert created["Arn"] == template_arn("welcome", template_type)
    assert created["Message"]

    got = get(client, "welcome", template_type)
    assert got["TemplateName"] == "welcome"
    assert got["TemplateType"] == template_type
    assert got["Version"] == "1"
    assert got["Arn"] == template_arn("welcome", template_type)
    assert ISO_MILLIS.fullmatch(got["CreationDate"]) and ISO_MILLIS.fullmatch(got["LastModifiedDate"])
    for member, value in REQUESTS[template_type][2].items():
        assert got[member] == value
    assert got["tags"] == {}

    update(client, "welcome", template_type, CreateNewVersion=True)
    assert versions(client, "welcome", template_type) == ["1", "2"]

    delete(client, "welcome", template_type)
    with pytest.raises(ClientError) as excinfo:
        get(client, "welcome", template_type)
    assert "welcome" in error(excinfo, "NotFoundException")


def test_same_name_different_types_are_different_templates(client: Any) -> None:
    create(client, "shared", "EMAIL")
    create(client, "shared", "SMS")
    delete(client, "shared", "SMS")
    assert get(client, "shared", "EMAIL")["TemplateType"] == "EMAIL"


def test_create_existing_is_bad_request(client: Any) -> None:
    create(client, "dup")
    assert "already exists" in bad_create(client, "dup")


def test_fields_round_trip(client: Any) -> None:
    recommender = client.create_recommender_configuration(
        CreateRecommenderConfiguration={
            "RecommendationProviderUri": "https://recommender.example.com/recommend",
            "RecommendationProviderRoleArn": "arn:aws:iam::000000000000:role/unused",
            "RecommendationsDisplayName": "Picks",
        }
    )["RecommenderConfigurationResponse"]["Id"]
    create(
        client,
        "full",
        **EMAIL,
        Headers=[{"Name": "X-Campaign", "Value": "spring"}],
        DefaultSubstitutions='{"User": {"UserAttributes": {"FirstName": ["there"]}}}',
        TemplateDescription="spring mail",
        RecommenderId=recommender,
    )
    got = get(client, "full")
    assert got["Headers"] == [{"Name": "X-Campaign", "Value": "spring"}]
    assert json.loads(got["DefaultSubstitutions"]) == {"User": {"UserAttributes": {"FirstName": ["there"]}}}
    assert got["TemplateDescription"] == "spring mail"
    assert got["RecommenderId"] == recommender
    assert "names no recommender configuration" in bad_create(client, "unknown-rec", **EMAIL, RecommenderId="rec-1")

    push = {
        "Default": {"Action": "OPEN_APP", "Title": "Hi", "Body": "Body"},
        "APNS": {"Body": "apns {{Id}}", "MediaUrl": "https://example.com/a.png", "Sound": "default"},
        "GCM": {"Body": "gcm", "ImageUrl": "https://example.com/b.png", "RawContent": '{"data": {}}'},
        "ADM": {"Body": "adm"},
        "Baidu": {"Body": "baidu"},
    }
    create(client, "full", "PUSH", **push)
    got = get(client, "full", "PUSH")
    for platform, members in push.items():
        assert got[platform] == members


# --- versions ------------------------------------------------------------------------------------------------


def test_create_new_version_chain_and_active_version(client: Any) -> None:
    create(client, "chain", Subject="v1")
    update(client, "chain", request={"Subject": "v2"}, CreateNewVersion=True)
    update(client, "chain", request={"Subject": "v3"}, CreateNewVersion=True)
    assert versions(client, "chain") == ["1", "2", "3"]
    # A get without a version answers the active version, which updates do not move.
    active = get(client, "chain")
    assert (active["Version"], active["Subject"]) == ("1", "v1")
    assert get(client, "chain", version="2")["Subject"] == "v2"
    assert get(client, "chain", version="3")["Subject"] == "v3"

    client.update_template_active_version(
        TemplateName="chain", TemplateType="EMAIL", TemplateActiveVersionRequest={"Version": "latest"}
    )
    assert get(client, "chain")["Version"] == "3"
    response = client.update_template_active_version(
        TemplateName="chain", TemplateType="email", TemplateActiveVersionRequest={"Version": "2"}
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["MessageBody"]["RequestID"] == response["ResponseMetadata"]["RequestId"]
    assert get(client, "chain")["Subject"] == "v2"


def test_update_without_new_version_overwrites_latest(client: Any) -> None:
    create(client, "over", Subject="one")
    update(client, "over", request={"Subject": "two"}, CreateNewVersion=True)
    update(client, "over", request={"Subject": "two, fixed"})
    update(client, "over", request={"Subject": "two, fixed again"}, Version="2", CreateNewVersion=False)
    assert versions(client, "over") == ["1", "2"]
    assert get(client, "over", version="2")["Subject"] == "two, fixed again"
    assert get(client, "over", version="1")["Subject"] == "one"
    # The request replaces the version's members: TextPart and HtmlPart were not given, so they are gone.
    assert "HtmlPart" not in get(client, "over", version="2")


def test_update_version_must_be_latest(client: Any) -> None:
    create(client, "mismatch")
    update(client, "mismatch", CreateNewVersion=True)
    with pytest.raises(ClientError) as excinfo:
        update(client, "mismatch", Version="1")
    assert "latest" in error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        update(client, "mismatch", Version="2", CreateNewVersion=True)
    assert "not both" in error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        update(client, "mismatch", Version="two")
    error(excinfo, "BadRequestException")


def test_update_ignores_tags(client: Any) -> None:
    create(client, "tagged", **EMAIL, tags={"team": "growth"})
    update(client, "tagged", request={**EMAIL, "tags": {"team": "other", "new": "x"}})
    assert get(client, "tagged")["tags"] == {"team": "growth"}


def test_delete_one_version_and_numbers_not_reused(client: Any) -> None:
    create(client, "trim", Subject="v1")
    update(client, "trim", request={"Subject": "v2"}, CreateNewVersion=True)
    update(client, "trim", request={"Subject": "v3"}, CreateNewVersion=True)
    delete(client, "trim", Version="3")
    assert versions(client, "trim") == ["1", "2"]
    with pytest.raises(ClientError) as excinfo:
        get(client, "trim", version="3")
    error(excinfo, "NotFoundException")
    # Version 3 was issued once: the next version is 4, and in-place updates now hit version 2.
    update(client, "trim", request={"Subject": "v4"}, CreateNewVersion=True)
    assert versions(client, "trim") == ["1", "2", "4"]
    update(client, "trim", request={"Subject": "v4 edited"}, Version="4")
    assert get(client, "trim", version="4")["Subject"] == "v4 edited"


def test_delete_active_version_is_refused(client: Any) -> None:
    create(client, "keep")
    update(client, "keep", CreateNewVersion=True)
    with pytest.raises(ClientError) as excinfo:
        delete(client, "keep", Version="1")
    assert "active version" in error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        delete(client, "keep", Version="9")
    error(excinfo, "NotFoundException")
    assert versions(client, "keep") == ["1", "2"]


def test_delete_all_removes_versions_and_tags(client: Any) -> None:
    create(client, "gone", **EMAIL, tags={"a": "1"})
    update(client, "gone", CreateNewVersion=True)
    delete(client, "gone")
    with pytest.raises(ClientError) as excinfo:
        client.list_template_versions(TemplateName="gone", TemplateType="EMAIL")
    error(excinfo, "NotFoundException")
    with pytest.raises(ClientError) as excinfo:
        client.list_tags_for_resource(ResourceArn=template_arn("gone", "EMAIL"))
    error(excinfo, "NotFoundException")
    # The name is free again, starting over at version 1 with no tags.
    create(client, "gone")
    again = get(client, "gone")
    assert (again["Version"], again["tags"]) == ("1", {})


def test_update_template_active_version_errors(client: Any) -> None:
    create(client, "act")
    with pytest.raises(ClientError) as excinfo:
        client.update_template_active_version(
            TemplateName="act", TemplateType="EMAIL", TemplateActiveVersionRequest={"Version": "7"}
        )
    error(excinfo, "NotFoundException")
    with pytest.raises(ClientError) as excinfo:
        client.update_template_active_version(
            TemplateName="act", TemplateType="LETTER", TemplateActiveVersionRequest={"Version": "1"}
        )
    assert "LETTER" in error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        client.update_template_active_version(TemplateName="act", TemplateType="EMAIL", TemplateActiveVersionRequest={})
    error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        client.update_template_active_version(
            TemplateName="nope", TemplateType="SMS", TemplateActiveVersionRequest={"Version": "latest"}
        )
    error(excinfo, "NotFoundException")


def test_version_metadata_in_list_versions(client: Any) -> None:
    create(client, "meta", **EMAIL, TemplateDescription="first", DefaultSubstitutions='{"a": "b"}')
    update(client, "meta", request={**EMAIL, "TemplateDescription": "second"}, CreateNewVersion=True)
    response = client.list_template_versions(TemplateName="meta", TemplateType="email")["TemplateVersionsResponse"]
    first, second = response["Item"]
    assert (first["Version"], first["TemplateDescription"], first["DefaultSubstitutions"]) == (
        "1",
        "first",
        '{"a": "b"}',
    )
    assert (second["Version"], second["TemplateDescription"]) == ("2", "second")
    assert "DefaultSubstitutions" not in second
    assert {first["TemplateType"], second["TemplateType"]} == {"EMAIL"}
    assert ISO_MILLIS.fullmatch(second["CreationDate"])
    assert "NextToken" not in response


def test_list_template_versions_paging(client: Any) -> None:
    create(client, "paged", "SMS")
    for _ in range(4):
        update(client, "paged", "SMS", CreateNewVersion=True)
    seen: list[str] = []
    token: str | None = None
    while True:
        extra = {"NextToken": token} if token else {}
        page = client.list_template_versions(TemplateName="paged", TemplateType="SMS", PageSize="2", **extra)
        seen += [item["Version"] for item in page["TemplateVersionsResponse"]["Item"]]
        token = page["TemplateVersionsResponse"].get("NextToken")
        if not token:
            break
    assert seen == ["1", "2", "3", "4", "5"]


# --- ListTemplates -------------------------------------------------------------------------------------------


def test_list_templates_filters_and_metadata(client: Any) -> None:
    create(client, "promo-a", **EMAIL, TemplateDescription="a", tags={"k": "v"})
    update(client, "promo-a", request={**EMAIL, "TemplateDescription": "a2"}, CreateNewVersion=True)
    create(client, "promo-b", "SMS")
    create(client, "Promo-c", "PUSH")
    create(client, "other", "VOICE")

    items = client.list_templates()["TemplatesResponse"]["Item"]
    assert [(item["TemplateName"], item["TemplateType"]) for item in items] == [
        ("promo-a", "EMAIL"),
        ("promo-b", "SMS"),
        ("Promo-c", "PUSH"),
        ("other", "VOICE"),
    ]
    first = items[0]
    # The active version's metadata, no message parts.
    assert (first["Version"], first["TemplateDescription"], first["tags"]) == ("1", "a", {"k": "v"})
    assert first["Arn"] == template_arn("promo-a", "EMAIL")
    assert "Subject" not in first and "HtmlPart" not in first

    prefixed = client.list_templates(Prefix="promo")["TemplatesResponse"]["Item"]
    assert [item["TemplateName"] for item in prefixed] == ["promo-a", "promo-b"]  # case-sensitive
    typed = client.list_templates(TemplateType="sms")["TemplatesResponse"]["Item"]
    assert [item["TemplateName"] for item in typed] == ["promo-b"]
    both = client.list_templates(Prefix="promo", TemplateType="EMAIL")["TemplatesResponse"]["Item"]
    assert [item["TemplateName"] for item in both] == ["promo-a"]
    with pytest.raises(ClientError) as excinfo:
        client.list_templates(TemplateType="FAX")
    error(excinfo, "BadRequestException")


def test_list_templates_paging(client: Any) -> None:
    for index in range(5):
        create(client, f"t{index}", "SMS")
    names: list[str] = []
    token: str | None = None
    while True:
        extra = {"NextToken": token} if token else {}
        page = client.list_templates(PageSize="2", **extra)["TemplatesResponse"]
        assert len(page["Item"]) <= 2
        names += [item["TemplateName"] for item in page["Item"]]
        token = page.get("NextToken")
        if not token:
            break
    assert names == [f"t{index}" for index in range(5)]
    with pytest.raises(ClientError) as excinfo:
        client.list_templates(PageSize="0")
    error(excinfo, "BadRequestException")
    with pytest.raises(ClientError) as excinfo:
        client.list_templates(NextToken="garbage!")
    error(excinfo, "BadRequestException")


# --- tags ----------------------------------------------------------------------------------------------------


def test_tags_on_template_arns(client: Any) -> None:
    arn = create(client, "tags", "SMS", Body="hi", tags={"team": "growth"})["Arn"]
    assert arn == template_arn("tags", "SMS")
    assert client.list_tags_for_resource(ResourceArn=arn)["TagsModel"]["tags"] == {"team": "growth"}
    client.tag_resource(ResourceArn=arn, TagsModel={"tags": {"env": "prod"}})
    client.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert get(client, "tags", "SMS")["tags"] == {"env": "prod"}
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(ResourceArn=template_arn("tags", "EMAIL"), TagsModel={"tags": {"a": "b"}})
    error(excinfo, "NotFoundException")
    assert "aws:" in bad_create(client, "badtags", "SMS", Body="x", tags={"aws:x": "y"})


# --- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["-starts-with-dash", "_under", "has space", "dot.ted", "x" * 129, "ünï"])
def test_bad_names(client: Any, name: str) -> None:
    assert "Template name" in bad_create(client, name)


def test_good_names(client: Any) -> None:
    for name in ("a", "9lives", "A_b-C", "x" * 128):
        create(client, name, "SMS")


def test_handlebars_syntax_error_names_part_line_and_column(client: Any) -> None:
    message = bad_create(client, "broken", HtmlPart="<p>\n  {{#if x}}open</p>", Subject="ok")
    assert "HtmlPart" in message
    assert re.search(r"line \d+, column \d+", message), message
    message = bad_create(client, "broken", "SMS", Body="Hello {{name")
    assert "Body" in message and "line 1, column" in message
    message = bad_create(client, "broken", "PUSH", APNS={"Title": "{{/each}}"})
    assert "APNS.Title" in message and "line 1" in message
    message = bad_create(client, "broken", "VOICE", Body="{{#each items}}")
    assert "Body" in message
    # Updates are checked the same way, and nothing is written.
    create(client, "broken", "SMS", Body="fine")
    with pytest.raises(ClientError) as excinfo:
        update(client, "broken", "SMS", request={"Body": "{{#if}}"})
    assert "Body" in error(excinfo, "BadRequestException")
    assert get(client, "broken", "SMS")["Body"] == "fine"


@pytest.mark.parametrize("value", ["{not json", "[1, 2]", '"text"', "42"])
def test_default_substitutions_must_be_json_object(client: Any, value: str) -> None:
    assert "DefaultSubstitutions" in bad_create(client, "subs", **EMAIL, DefaultSubstitutions=value)


def test_size_limits(client: Any) -> None:
    assert "1,600" in bad_create(client, "big", "SMS", Body="x" * 1601)
    create(client, "big", "SMS", Body="x" * 1600)
    assert "10,000" in bad_create(client, "big", "VOICE", Body="x" * 10_001)
    assert "600,000" in bad_create(client, "big", Subject="s", HtmlPart="x" * 400_000, TextPart="y" * 200_000)
    assert "4,000" in bad_create(client, "big", "PUSH", GCM={"Title": "t" * 2000, "Body": "b" * 2001})
    create(client, "big", "PUSH", ADM={"Body": "b" * 5000})
    assert "6,000" in bad_create(client, "big2", "PUSH", ADM={"Body": "b" * 6001})
    headers = [{"Name": f"X-{index}", "Value": "v"} for index in range(16)]
    assert "15" in bad_create(client, "big", **EMAIL, Headers=headers)
    content = [{"BodyConfig": {"Alignment": "LEFT", "Body": "b", "TextColor": "#000000"}}] * 6
    assert "5" in bad_create(client, "big", "INAPP", Content=content)
    huge = [{"BodyConfig": {"Alignment": "LEFT", "Body": "b" * 50_000, "TextColor": "#000000"}}] * 5
    assert "200,000" in bad_create(client, "big", "INAPP", Content=huge)


# --- not found -----------------------------------------------------------------------------------------------


def test_not_found(client: Any) -> None:
    for call in (
        lambda: get(client, "missing"),
        lambda: update(client, "missing"),
        lambda: delete(client, "missing"),
        lambda: client.list_template_versions(TemplateName="missing", TemplateType="PUSH"),
        lambda: client.list_tags_for_resource(ResourceArn=template_arn("missing", "SMS")),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error(excinfo, "NotFoundException")
    create(client, "present")
    with pytest.raises(ClientError) as excinfo:
        get(client, "present", version="2")
    error(excinfo, "NotFoundException")
    with pytest.raises(ClientError) as excinfo:
        get(client, "present", version="zero")
    error(excinfo, "BadRequestException")


def test_templates_are_account_level(client: Any, server: Any, app_id: str) -> None:
    """DeleteApp leaves templates alone."""
    create(client, "survivor", "SMS", Body="hi", tags={"k": "v"})
    client.delete_app(ApplicationId=app_id)
    assert get(client, "survivor", "SMS")["tags"] == {"k": "v"}
