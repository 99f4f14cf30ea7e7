"""Differential tests: requests signed by botocore must verify, tampered ones must not.

Most requests come from a real boto3 Pinpoint client whose ``before-send`` hook
captures the prepared request (exactly what urllib3 would put on the wire) and
answers with a canned response; one test goes through a real socket to prove
that the hook sees the same bytes as the server.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from unittest import mock
from urllib.parse import urlsplit

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clarion.api.sigv4 import SignatureError, VerifiedRequest, verify_request
from clarion.aws.sigv4 import _signing_key, canonical_uri
from clarion.signed_times import amz_date

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//token+with/odd=chars"
SIGNED_AT = datetime(2026, 11, 22, 10, 15, 0, tzinfo=UTC)
ENDPOINT_URL = "http://localhost:8080"
TAG_ARN = "arn:aws:mobiletargeting:us-east-1:123456789012:apps/abc"

ODD_IDS = [
    "ep 1/x",
    "a:b",
    "a+b",
    "x%20y",
    "é",
    "日本",
    "~tilde_-.",
    "semi;colon,comma=eq&amp?q#frag",
    "..",
    ".",
    TAG_ARN,
]


@dataclass(frozen=True)
class Wire:
    """One request as an ASGI server would see it."""

    method: str
    raw_path: bytes
    query_string: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def header(self, name: bytes) -> bytes:
        return next(v for k, v in self.headers if k == name)

    def with_header(self, name: bytes, value: bytes | None) -> Wire:
        """Replace (or with None, drop) every header called `name`."""
        kept = tuple(h for h in self.headers if h[0] != name)
        extra = () if value is None else ((name, value),)
        return replace(self, headers=kept + extra)


def secrets(**extra: str) -> Callable[[str], str | None]:
    table = {AKID: SECRET, **extra}
    return table.get


def verify(
    wire: Wire,
    secret_for: Callable[[str], str | None] | None = None,
    now: datetime = SIGNED_AT,
    **kwargs: Any,
) -> VerifiedRequest:
    return verify_request(
        wire.method,
        wire.raw_path,
        wire.query_string,
        wire.headers,
        wire.body,
        secret_for or secrets(),
        now,
        **kwargs,
    )


def refused(wire: Wire, **kwargs: Any) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        verify(wire, **kwargs)
    return info.value


@contextmanager
def frozen_clock(at: datetime = SIGNED_AT) -> Iterator[None]:
    """botocore asks auth.get_current_datetime() for the signing time (naive UTC)."""
    naive = at.astimezone(UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: naive):
        yield


def to_wire(prepared: Any) -> Wire:
    """What urllib3/http.client send for a botocore AWSPreparedRequest."""
    url = urlsplit(prepared.url)
    headers = [
        (
            name.lower().encode("latin-1"),
            value if isinstance(value, bytes) else value.encode("latin-1"),
        )
        for name, value in prepared.headers.items()
    ]
    # http.client adds Host from the URL's netloc (port kept if non-default).
    headers.append((b"host", url.netloc.encode("ascii")))
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return Wire(
        prepared.method,
        url.path.encode("ascii"),
        url.query.encode("ascii"),
        tuple(headers),
        body,
    )


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _client(**credentials: str) -> Any:
    return boto3.client(
        "pinpoint",
        region_name=credentials.pop("region", "us-east-1"),
        endpoint_url=ENDPOINT_URL,
        aws_access_key_id=AKID,
        aws_secret_access_key=credentials.pop("secret", SECRET),
        config=Config(retries={"max_attempts": 0}),
        **credentials,
    )


_CLIENTS: dict[tuple[tuple[str, str], ...], Any] = {}


def capture(operation: str, *, at: datetime = SIGNED_AT, **params: Any) -> Wire:
    """Call a boto3 Pinpoint operation and return the request it would send."""
    return capture_with(operation, {}, at=at, **params)


def capture_with(operation: str, client_kwargs: dict[str, str], *, at: datetime, **params: Any) -> Wire:
    key = tuple(sorted(client_kwargs.items()))
    if key not in _CLIENTS:
        client = _client(**client_kwargs)
        client.meta.events.register("before-send.pinpoint.*", _hook)
        _CLIENTS[key] = client
    client = _CLIENTS[key]
    sent.clear()
    with frozen_clock(at):
        getattr(client, operation)(**params)
    assert len(sent) == 1
    return to_wire(sent[0])


sent: list[Any] = []


def _hook(request: Any, **_: Any) -> AWSResponse:
    sent.append(request)
    return AWSResponse(request.url, 200, {}, _Raw(b"{}"))


def sign(
    request: AWSRequest,
    *,
    signer: type[SigV4Auth] = SigV4Auth,
    service: str = "mobiletargeting",
    region: str = "us-east-1",
    token: str | None = None,
    at: datetime = SIGNED_AT,
    **signer_kwargs: Any,
) -> Wire:
    """Sign a hand-built AWSRequest with botocore and return its wire form."""
    with frozen_clock(at):
        signer(Credentials(AKID, SECRET, token), service, region, **signer_kwargs).add_auth(request)
    return to_wire(request.prepare())


def botocorecanonical_uri(wire: Wire) -> str:
    return SigV4Auth(None, "mobiletargeting", "us-east-1")._normalize_url_path(wire.raw_path.decode("ascii"))


# --- realistic boto3 requests ------------------------------------------------


@pytest.mark.parametrize("endpoint_id", ODD_IDS)
def test_get_endpoint_with_odd_ids_verifies(endpoint_id: str) -> None:
    wire = capture("get_endpoint", ApplicationId="app", EndpointId=endpoint_id)
    assert wire.method == "GET"
    result = verify(wire)
    assert result == VerifiedRequest(AKID, "us-east-1", SIGNED_AT)
    assert canonical_uri(wire.raw_path) == botocorecanonical_uri(wire)


def test_path_is_encoded_twice_from_raw_bytes() -> None:
    wire = capture("get_endpoint", ApplicationId="app", EndpointId="ep 1/x")
    assert wire.raw_path == b"/v1/apps/app/endpoints/ep%201%2Fx"
    assert canonical_uri(wire.raw_path) == "/v1/apps/app/endpoints/ep%25201%252Fx"
    # The decoded path would be "/v1/apps/app/endpoints/ep 1/x": a different
    # resource, and its canonical form must not verify.
    decoded = replace(wire, raw_path=b"/v1/apps/app/endpoints/ep%201/x")
    assert refused(decoded).reason == "mismatch"


def test_literal_percent_and_unicode_ids_on_the_wire() -> None:
    wire = capture("get_endpoint", ApplicationId="app", EndpointId="x%20y日")
    assert wire.raw_path == b"/v1/apps/app/endpoints/x%2520y%E6%97%A5"
    assert verify(wire).access_key_id == AKID


def test_dot_segments_are_normalised_like_botocore() -> None:
    """botocore signs "/v1/apps/app/endpoints/.." as "/v1/apps/app"."""
    wire = capture("get_endpoint", ApplicationId="app", EndpointId="..")
    assert wire.raw_path == b"/v1/apps/app/endpoints/.."
    assert canonical_uri(wire.raw_path) == "/v1/apps/app"
    verify(wire)
    # Consequence worth knowing for routing: equivalent spellings verify too.
    assert verify(replace(wire, raw_path=b"/v1//apps/app")).region == "us-east-1"


def test_canonical_uri_edge_cases_match_botocore() -> None:
    normalise = SigV4Auth(None, "mobiletargeting", "us-east-1")._normalize_url_path
    for path in ["", "/", "//", "/a/./b/../c/", "/a//b", "/..", "/a/b/..", "/%7E~"]:
        assert canonical_uri(path.encode()) == normalise(path), path


def test_tag_arn_as_path_segment() -> None:
    wire = capture("list_tags_for_resource", ResourceArn=TAG_ARN)
    assert wire.raw_path == (b"/v1/tags/arn%3Aaws%3Amobiletargeting%3Aus-east-1%3A123456789012%3Aapps%2Fabc")
    assert verify(wire).access_key_id == AKID


def test_untag_resource_repeated_query_keys() -> None:
    wire = capture("untag_resource", ResourceArn=TAG_ARN, TagKeys=["b", "a", "x y+~", "a"])
    assert wire.method == "DELETE"
    # botocore keeps the caller's order on the wire; the canonical form sorts.
    assert wire.query_string == b"tagKeys=b&tagKeys=a&tagKeys=x%20y%2B~&tagKeys=a"
    verify(wire)
    reordered = replace(wire, query_string=b"tagKeys=a&tagKeys=a&tagKeys=b&tagKeys=x%20y%2B~")
    assert verify(reordered).access_key_id == AKID
    dropped = replace(wire, query_string=b"tagKeys=b&tagKeys=a&tagKeys=x%20y%2B~")
    assert refused(dropped).reason == "mismatch"


def test_update_email_template_boolean_query() -> None:
    wire = capture(
        "update_email_template",
        TemplateName="welcome",
        CreateNewVersion=True,
        EmailTemplateRequest={"Subject": "Grüße, 世界", "HtmlPart": "<p>é</p>"},
    )
    assert wire.method == "PUT"
    assert wire.query_string == b"create-new-version=true"
    verify(wire)
    flipped = replace(wire, query_string=b"create-new-version=false")
    assert refused(flipped).reason == "mismatch"


def test_update_endpoints_batch_with_non_ascii_json_body() -> None:
    wire = capture(
        "update_endpoints_batch",
        ApplicationId="app",
        EndpointBatchRequest={
            "Item": [
                {
                    "Id": "ep 1",
                    "Address": "émile@example.com",
                    "Attributes": {"k": ["日本"]},
                },
                {"Id": "ep/2", "ChannelType": "SMS", "Address": "+15555550100"},
            ]
        },
    )
    assert wire.method == "PUT"
    assert json.loads(wire.body)["Item"][0]["Attributes"]["k"] == ["日本"]
    assert b"content-type" in dict(wire.headers)
    assert verify(wire).access_key_id == AKID
    changed = replace(wire, body=wire.body.replace(b"+1555", b"+1666"))
    assert refused(changed).reason == "mismatch"


def test_post_create_app() -> None:
    wire = capture("create_app", CreateApplicationRequest={"Name": "mon app ✓", "tags": {"t": "v"}})
    assert (wire.method, wire.raw_path) == ("POST", b"/v1/apps")
    assert verify(wire).region == "us-east-1"


def test_query_values_needing_encoding() -> None:
    token = "a b+c/d=e&f~g*h%i日"
    wire = capture("get_apps", PageSize="10", Token=token)
    assert b"token=a%20b%2Bc%2Fd%3De%26f~g%2Ah%25i%E6%97%A5" in wire.query_string
    verify(wire)


def test_session_token_is_a_signed_header() -> None:
    wire = capture_with(
        "get_endpoint",
        {"aws_session_token": TOKEN, "region": "eu-west-2"},
        at=SIGNED_AT,
        ApplicationId="app",
        EndpointId="e",
    )
    assert wire.header(b"x-amz-security-token") == TOKEN.encode()
    assert b"x-amz-security-token" in wire.header(b"authorization")
    assert verify(wire) == VerifiedRequest(AKID, "eu-west-2", SIGNED_AT)
    swapped = wire.with_header(b"x-amz-security-token", b"another-token")
    assert refused(swapped).reason == "mismatch"


def test_region_comes_from_the_credential_scope() -> None:
    wire = capture_with("get_apps", {"region": "ap-southeast-2"}, at=SIGNED_AT, PageSize="1")
    result = verify(wire)
    assert result.region == "ap-southeast-2"
    assert result.signed_at.tzinfo is UTC


# --- hand-built AWSRequests: the less common corners -------------------------


def test_params_query_plus_versus_percent20() -> None:
    """AWSRequest.params go on the wire via urlencode ('+') but are signed as %20."""
    request = AWSRequest(
        "GET",
        f"{ENDPOINT_URL}/v1/apps",
        params=[("k", "v2"), ("k", "v1"), ("sp ace", "a+b c/~*"), ("blank", "")],
    )
    wire = sign(request)
    assert b"sp+ace=a%2Bb+c%2F~%2A" in wire.query_string
    assert verify(wire).access_key_id == AKID


def test_url_query_with_blank_and_valueless_keys() -> None:
    request = AWSRequest("GET", f"{ENDPOINT_URL}/v1/apps?b=2&flag&a=%20&a=")
    wire = sign(request)
    assert wire.query_string == b"b=2&flag&a=%20&a="
    verify(wire)
    assert refused(replace(wire, query_string=b"b=2&a=%20&a=")).reason == "mismatch"


def test_empty_path_is_slash() -> None:
    wire = sign(AWSRequest("GET", ENDPOINT_URL))
    assert wire.raw_path in (b"", b"/")
    assert verify(replace(wire, raw_path=b"")).access_key_id == AKID
    assert verify(replace(wire, raw_path=b"/")).access_key_id == AKID


def test_header_whitespace_is_trimmed_and_collapsed() -> None:
    request = AWSRequest(
        "POST",
        f"{ENDPOINT_URL}/v1/apps",
        data=b"{}",
        headers={"X-Custom": "  a   b \t c  ", "Content-Type": "application/json"},
    )
    wire = sign(request)
    assert wire.header(b"x-custom") == b"  a   b \t c  "
    verify(wire)
    assert verify(wire.with_header(b"x-custom", b"a b c")).access_key_id == AKID
    assert refused(wire.with_header(b"x-custom", b"a bc")).reason == "mismatch"


class _RepeatingSigner(SigV4Auth):
    """botocore's HeadersDict cannot repeat a header; force one to test ',' joining."""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)
        headers["x-multi"] = " one "
        headers["x-multi"] = "two  2"  # HTTPHeaders appends
        return headers


def test_repeated_headers_join_with_comma() -> None:
    request = AWSRequest("GET", f"{ENDPOINT_URL}/v1/apps")
    wire = sign(request, signer=_RepeatingSigner)
    assert b"x-multi" in wire.header(b"authorization")
    repeated = (*wire.headers, (b"x-multi", b" one "), (b"x-multi", b"two  2"))
    assert verify(replace(wire, headers=repeated)).access_key_id == AKID
    swapped = (*wire.headers, (b"x-multi", b"two  2"), (b"x-multi", b" one "))
    assert refused(replace(wire, headers=swapped)).reason == "mismatch"


def test_date_header_instead_of_x_amz_date() -> None:
    request = AWSRequest("GET", f"{ENDPOINT_URL}/v1/apps", headers={"Date": "placeholder"})
    wire = sign(request)
    assert b"x-amz-date" not in dict(wire.headers)
    assert wire.header(b"date") == b"Sun, 22 Nov 2026 10:15:00 -0000"
    assert verify(wire).signed_at == SIGNED_AT


def test_x_amz_content_sha256_header() -> None:
    body = b'{"Name": "x"}'
    digest = hashlib.sha256(body).hexdigest()
    request = AWSRequest(
        "POST",
        f"{ENDPOINT_URL}/v1/apps",
        data=body,
        headers={"X-Amz-Content-SHA256": digest},
    )
    wire = sign(request)
    assert verify(wire).access_key_id == AKID
    # The signature still covers the declared hash, but the body no longer matches it.
    err = refused(replace(wire, body=b'{"Name": "y"}'))
    assert err.reason == "mismatch"
    assert "x-amz-content-sha256" in err.message


def test_unsigned_payload_is_refused() -> None:
    """S3 lets a signer leave the body out with UNSIGNED-PAYLOAD; for the Pinpoint API that would let anyone who
    captured a request replay it with another body, so the signature must cover the body."""
    request = AWSRequest(
        "POST",
        f"{ENDPOINT_URL}/v1/apps",
        data=b"{}",
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    wire = sign(request)
    for body in (b"{}", b'{"other": 1}'):
        err = refused(replace(wire, body=body))
        assert err.reason == "malformed"
        assert "UNSIGNED-PAYLOAD" in err.message


# --- presigned URLs ------------------------------------------------------------


def test_presigned_url_verifies_until_it_expires() -> None:
    request = AWSRequest("GET", f"{ENDPOINT_URL}/v1/apps/app/endpoints/ep%201?x=1 2")
    wire = sign(request, signer=SigV4QueryAuth, expires=60, token=TOKEN)
    assert b"X-Amz-Signature=" in wire.query_string
    assert b"authorization" not in dict(wire.headers)
    assert verify(wire, now=SIGNED_AT + timedelta(seconds=60)).access_key_id == AKID
    err = refused(wire, now=SIGNED_AT + timedelta(seconds=61))
    assert err.reason == "expired"
    assert err.message.startswith("Request has expired")
    assert refused(wire, now=SIGNED_AT - timedelta(minutes=6)).reason == "expired"


def test_presigned_url_tampering() -> None:
    request = AWSRequest("GET", f"{ENDPOINT_URL}/v1/apps?page-size=5")
    wire = sign(request, signer=SigV4QueryAuth, expires=300)
    verify(wire)
    tampered = replace(wire, query_string=wire.query_string.replace(b"page-size=5", b"page-size=6"))
    assert refused(tampered).reason == "mismatch"
    longer = replace(wire, query_string=wire.query_string.replace(b"Expires=300", b"Expires=900"))
    assert refused(longer).reason == "mismatch"
    both = wire.with_header(b"authorization", b"AWS4-HMAC-SHA256 x=y")
    assert refused(both).reason == "malformed"


# --- refusals --------------------------------------------------------------------


@pytest.fixture(scope="module")
def get_wire() -> Wire:
    return capture("get_endpoint", ApplicationId="app", EndpointId="ep")


def test_unknown_key(get_wire: Wire) -> None:
    err = refused(get_wire, secret_for=lambda _: None)
    assert err.reason == "unknown-key"
    assert err.message == "The security token included in the request is invalid."
    assert str(err) == err.message


def test_wrong_secret(get_wire: Wire) -> None:
    err = refused(get_wire, secret_for=lambda _: SECRET + "x")
    assert err.reason == "mismatch"
    assert err.message.startswith("The request signature we calculated does not match")


def test_missing_authorization(get_wire: Wire) -> None:
    err = refused(get_wire.with_header(b"authorization", None))
    assert (err.reason, err.message) == ("missing", "Missing Authentication Token")


CREDENTIAL = b"Credential=AKIDEXAMPLE/20261122/us-east-1/mobiletargeting/aws4_request"
ZEROS = b"0" * 64


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer abc",
        b"",
        b"AWS4-HMAC-SHA256",
        b"AWS4-HMAC-SHA256 garbage",
        b"AWS4-HMAC-SHA256 " + CREDENTIAL + b", SignedHeaders=host;x-amz-date",
        b"AWS4-HMAC-SHA256 "
        + CREDENTIAL.removesuffix(b"/aws4_request")
        + b", SignedHeaders=host;x-amz-date, Signature="
        + ZEROS,
        b"AWS4-HMAC-SHA256 " + CREDENTIAL + b", SignedHeaders=host, Signature=xyz",
        b"AWS4-HMAC-SHA256 " + CREDENTIAL + b", SignedHeaders=x-amz-date, Signature=" + ZEROS,
        b"AWS4-HMAC-SHA256 " + CREDENTIAL + b", SignedHeaders=Host;x-amz-date, Signature=" + ZEROS,
        b"AWS4-HMAC-SHA256 " + CREDENTIAL + b", Credential=x, Signature=" + ZEROS,
        b"AWS4-HMAC-SHA256 Credential=\xff\xfe, SignedHeaders=host, Signature=\xff",
    ],
)
def test_garbage_authorization_is_malformed(get_wire: Wire, authorization: bytes) -> None:
    err = refused(get_wire.with_header(b"authorization", authorization))
    assert err.reason == "malformed"
    assert err.message


def test_two_authorization_headers_are_malformed(get_wire: Wire) -> None:
    doubled = replace(
        get_wire,
        headers=(*get_wire.headers, (b"authorization", get_wire.header(b"authorization"))),
    )
    assert refused(doubled).reason == "malformed"


def test_no_date_is_malformed(get_wire: Wire) -> None:
    err = refused(get_wire.with_header(b"x-amz-date", None))
    assert err.reason == "malformed"
    assert "X-Amz-Date" in err.message


def test_amz_date_is_read_exactly() -> None:
    assert amz_date("20261122T101500Z") == datetime(2026, 11, 22, 10, 15, 0, tzinfo=UTC)
    assert amz_date("00010101T000000Z") == datetime(1, 1, 1, tzinfo=UTC)
    refused = [
        "2026112T1015000Z",  # fields shifted: 16 characters, not the canonical form
        "20261122 101500Z",
        "20261122T101500+",
        "2026-122T101500Z",
        "20261322T101500Z",  # month 13
        "20260230T101500Z",  # 30 February
        "20261122T241500Z",
        "2026112\uff12T101500Z",  # a full-width digit
        "+2026122T101500Z",
        "00000101T000000Z",
        "20261122T101500Z ",
    ]
    for text in refused:
        with pytest.raises(ValueError):
            amz_date(text)


def test_non_canonical_date_is_malformed(get_wire: Wire) -> None:
    err = refused(get_wire.with_header(b"x-amz-date", b"2026112T1015000Z"))
    assert err.reason == "malformed"
    assert "X-Amz-Date" in err.message


def test_missing_signed_header_is_mismatch(get_wire: Wire) -> None:
    assert refused(get_wire.with_header(b"host", None)).reason == "mismatch"
    assert refused(get_wire.with_header(b"host", b"evil:8080")).reason == "mismatch"


def test_stale_request_is_expired() -> None:
    wire = capture("get_endpoint", ApplicationId="app", EndpointId="ep")
    err = refused(wire, now=SIGNED_AT + timedelta(minutes=6))
    assert err.reason == "expired"
    assert err.message == (
        "Signature expired: 20261122T101500Z is now earlier than 20261122T101600Z (20261122T102100Z - 5 min.)"
    )
    # Exactly at the limit is still fine, and the window is configurable.
    assert verify(wire, now=SIGNED_AT + timedelta(minutes=5, microseconds=999))
    assert verify(wire, now=SIGNED_AT + timedelta(minutes=6), max_skew=timedelta(minutes=15))


def test_future_request_is_expired() -> None:
    wire = capture("get_endpoint", ApplicationId="app", EndpointId="ep")
    err = refused(wire, now=SIGNED_AT - timedelta(minutes=6))
    assert err.reason == "expired"
    assert err.message == (
        "Signature not yet current: 20261122T101500Z is still later than 20261122T101400Z (20261122T100900Z + 5 min.)"
    )
    err = refused(wire, now=SIGNED_AT - timedelta(seconds=91), max_skew=timedelta(seconds=90))
    assert err.message.endswith("+ 90 sec.)")


def test_now_in_another_timezone(get_wire: Wire) -> None:
    tokyo = SIGNED_AT.astimezone(timezone(timedelta(hours=9)))
    assert verify(get_wire, now=tokyo).signed_at == SIGNED_AT


def test_wrong_service_in_scope() -> None:
    wire = sign(AWSRequest("GET", f"{ENDPOINT_URL}/v1/apps"), service="pinpoint")
    err = refused(wire)
    assert err.reason == "wrong-scope"
    assert "mobiletargeting" in err.message
    # The expected service is a parameter.
    assert verify(wire, service="pinpoint").access_key_id == AKID


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"/20261122/", b"/20261121/"),
        (b"/aws4_request", b"/aws5_request"),
        (b"/us-east-1/", b"/US_EAST/"),
    ],
)
def test_scope_fields_are_checked(get_wire: Wire, old: bytes, new: bytes) -> None:
    authorization = get_wire.header(b"authorization")
    assert old in authorization
    err = refused(get_wire.with_header(b"authorization", authorization.replace(old, new)))
    assert err.reason == "wrong-scope"


def test_signing_keys_are_cached(get_wire: Wire) -> None:
    _signing_key.cache_clear()
    verify(get_wire)
    verify(get_wire)
    info = _signing_key.cache_info()
    assert (info.misses, info.hits) == (1, 1)


# --- a real socket -------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[Wire]] = []

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path, _, query = self.path.encode("latin-1").partition(b"?")
        headers = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items())
        self.seen.append(Wire(self.command, path, query, headers, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_PUT = do_POST = do_DELETE = _handle

    def log_message(self, *args: Any) -> None:
        pass


def test_bytes_from_a_real_socket_verify() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = boto3.client(
            "pinpoint",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            aws_access_key_id=AKID,
            aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 0}),
        )
        hooked: list[Any] = []
        client.meta.events.register("before-send.pinpoint.*", lambda request, **_: hooked.append(request))
        _Recorder.seen.clear()
        with frozen_clock():
            for endpoint_id in ODD_IDS:
                client.get_endpoint(ApplicationId="app", EndpointId=endpoint_id)
            client.update_endpoint(
                ApplicationId="app",
                EndpointId="ep 1/é",
                EndpointRequest={"Address": "日本@example.com"},
            )
            client.untag_resource(ResourceArn=TAG_ARN, TagKeys=["b", "a"])
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Recorder.seen) == len(ODD_IDS) + 2
    for received, prepared in zip(_Recorder.seen, hooked, strict=True):
        # The hook-based tests above assume urllib3 sends the prepared URL verbatim.
        expected = to_wire(prepared)
        assert (received.raw_path, received.query_string, received.body) == (
            expected.raw_path,
            expected.query_string,
            expected.body,
        )
        assert verify(received).access_key_id == AKID


# --- properties ----------------------------------------------------------------

ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    endpoint_id=ids,
    address=st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    data=st.data(),
)
@example(endpoint_id="..", address="", data=None)
@example(endpoint_id="a/../b", address="é", data=None)
def test_property_random_endpoint_ids(endpoint_id: str, address: str, data: Any) -> None:
    get = capture("get_endpoint", ApplicationId="app", EndpointId=endpoint_id)
    assert canonical_uri(get.raw_path) == botocorecanonical_uri(get)
    assert verify(get).access_key_id == AKID

    wire = capture(
        "update_endpoint",
        ApplicationId="app",
        EndpointId=endpoint_id,
        EndpointRequest={"Address": address},
    )
    assert verify(wire).access_key_id == AKID
    assert refused(wire, secret_for=lambda _: "another-secret").reason == "mismatch"
    if data is None:  # explicit @example rows have no draw source
        return

    flip = data.draw(st.integers(1, 255), label="xor")
    i = data.draw(st.integers(0, len(wire.body) - 1), label="body index")
    body = bytearray(wire.body)
    body[i] ^= flip
    assert refused(replace(wire, body=bytes(body))).reason == "mismatch"

    j = data.draw(st.integers(0, len(wire.raw_path) - 1), label="path index")
    path = bytearray(wire.raw_path)
    path[j] ^= flip
    mutated = replace(wire, raw_path=bytes(path))
    if canonical_uri(mutated.raw_path) == canonical_uri(wire.raw_path):
        # e.g. "/x/./y" vs "/x/y": genuinely the same signed request
        assert verify(mutated).access_key_id == AKID
    else:
        assert refused(mutated).reason == "mismatch"


@settings(max_examples=75, deadline=None)
@given(
    keys=st.lists(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
        min_size=1,
        max_size=5,
    )
)
def test_property_random_query_values(keys: list[str]) -> None:
    wire = capture("untag_resource", ResourceArn=TAG_ARN, TagKeys=keys)
    assert verify(wire).access_key_id == AKID
    extra = replace(wire, query_string=wire.query_string + b"&tagKeys=zz")
    assert refused(extra).reason == "mismatch"
