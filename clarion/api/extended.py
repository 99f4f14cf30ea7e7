"""Clarion's additions to the Pinpoint wire: extension members on generated shapes and extension operations.

The generated layer (shapes.py, operations.py) stays exactly botocore's model. What Clarion adds is declared here
and merged into the route table (`ROUTED_OPERATIONS`), so extensions go through the same SigV4 check, key scope,
decoding and error shape as every Pinpoint operation:

- `SegmentDimensions.ClarionBehavior` (behavioural conditions, docs/segments.md): CreateSegment and UpdateSegment
  decode their body with subclasses of the generated shapes that add this one member.
- `SegmentDimensions.ClarionEngagement` (engagement scores, docs/analytics.md): the same subclasses carry it.
- `WriteCampaignRequest.ClarionChannelOrder` (channel fallback, docs/campaigns.md): CreateCampaign and
  UpdateCampaign decode their body with a subclass that adds it.
- `WriteJourneyRequest.ClarionCanvas` (docs/journeys.md): where the web console drew each activity, stored and
  answered with the journey (GetJourney's answer declares it) so a layout moved by hand is kept.
- `EmailMessage.ClarionTracking` (SendMessages, SendUsersMessages) and `EmailTemplateRequest.ClarionTracking`
  (Create/UpdateEmailTemplate): `OpenTracking`, `ClickTracking`, `ListUnsubscribe`, each false to leave it out of
  transactional mail (docs/messages.md). GetEmailTemplate answers the member as stored.
- `WriteApplicationSettingsRequest.ClarionUnsubscribePage` (UpdateApplicationSettings; GetApplicationSettings
  answers it once set): `BrandName`, `LogoUrl`, `Language` of the page behind the project's unsubscribe links.
- `ClarionPreviewSegment` (`POST /v1/apps/{application-id}/clarion/segment-preview`): the size, per-channel counts
  and a sample of a saved segment or of an unsaved definition.
- `EventStream.ClarionDelivery` (docs/event-streams.md): GetEventStream's answer adds where the records go, how
  far behind the sink is (records and seconds) and the last failure; SDK clients ignore the member.
- `ClarionGetBuriedWork` (`GET /v1/clarion/buried-work[?application-id=...]`): the queue items given up on, with
  their reasons (docs/queue.md). Account-wide without `application-id`, so only keys for every project may list all.

- `ClarionGetCosts` (`GET /v1/clarion/costs?month=YYYY-MM[&application-id=...]`): a month's usage per project
  (messages per channel, SMS per country and parts, monthly targeted audience, events collected) priced with
  Pinpoint's published prices and with the operator's provider prices (docs/analytics.md). Account-wide without
  `application-id`, like buried work.

- `ClarionGetEngagement` (`GET /v1/apps/{application-id}/clarion/engagement?endpoint-id=...` or `?user-id=...`):
  an endpoint's engagement (recency, frequency, monetary and their sum), or a user's over all their endpoints.
- `ClarionListEndpoints` (`GET /v1/apps/{application-id}/clarion/endpoints[?search=...]`): the project's endpoints
  in id order, paged; `search` is an endpoint id, an address, a user id or `name=value` for an endpoint or user
  attribute (docs/console.md, "Audience").
- `ClarionListProjectUsers` (`GET /v1/apps/{application-id}/clarion/users[?search=...]`): the project's user ids in
  order with their endpoint counts, paged; `search` is the start of a user id.
- `ClarionGetTimeline` (`GET /v1/apps/{application-id}/clarion/timeline?endpoint-id=...` or `?user-id=...`): a
  person's events and messages with their delivery status, newest first, paged; `kind` (EVENT or MESSAGE),
  `event-type` and `start-time`/`end-time` narrow it.
- The web console's operations (sessions, console users, access keys, the audit log): api/extended_console.py.

botocore validates parameters against its model, so SDK clients cannot send these; call them over signed HTTP.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from msgspec import Struct, field

from clarion import shapes
from clarion.api.extended_console import CONSOLE_OPERATIONS, CONSOLE_SUMMARIES
from clarion.api.extension_ops import PROJECT, extension_operation
from clarion.api.operations import OPERATIONS, Operation, QueryParam


class BehaviorCondition(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One item of ClarionBehavior: performed EventType at least Minimum times (in a window), or not since."""

    event_type: str = field(name="EventType")
    minimum: int | None = field(default=None, name="Minimum")
    within_days: int | None = field(default=None, name="WithinDays")
    since: str | None = field(default=None, name="Since")
    not_since: str | None = field(default=None, name="NotSince")
    attributes: dict[str, list[str]] | None = field(default=None, name="Attributes")


class EngagementBounds(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    minimum: int | None = field(default=None, name="Minimum")
    maximum: int | None = field(default=None, name="Maximum")


class EngagementCondition(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """ClarionEngagement: bounds on an endpoint's engagement measures (docs/analytics.md), all of which must hold."""

    of: Literal["ENDPOINT", "USER"] | None = field(default=None, name="Of")
    score: EngagementBounds | None = field(default=None, name="Score")
    recency: EngagementBounds | None = field(default=None, name="Recency")
    frequency: EngagementBounds | None = field(default=None, name="Frequency")
    monetary: EngagementBounds | None = field(default=None, name="Monetary")


class ExtendedSegmentDimensions(shapes.SegmentDimensions, kw_only=True, omit_defaults=True):
    clarion_behavior: list[BehaviorCondition] | None = field(default=None, name="ClarionBehavior")
    clarion_engagement: EngagementCondition | None = field(default=None, name="ClarionEngagement")


class ExtendedSegmentGroup(shapes.SegmentGroup, kw_only=True, omit_defaults=True):
    dimensions: list[ExtendedSegmentDimensions] | None = field(default=None, name="Dimensions")


class ExtendedSegmentGroupList(shapes.SegmentGroupList, kw_only=True, omit_defaults=True):
    groups: list[ExtendedSegmentGroup] | None = field(default=None, name="Groups")


class ExtendedWriteSegmentRequest(shapes.WriteSegmentRequest, kw_only=True, omit_defaults=True):
    dimensions: ExtendedSegmentDimensions | None = field(default=None, name="Dimensions")
    segment_groups: ExtendedSegmentGroupList | None = field(default=None, name="SegmentGroups")


class SegmentDefinition(Struct, kw_only=True, omit_defaults=True):
    dimensions: ExtendedSegmentDimensions | None = field(default=None, name="Dimensions")
    segment_groups: ExtendedSegmentGroupList | None = field(default=None, name="SegmentGroups")


class ExtendedWriteCampaignRequest(shapes.WriteCampaignRequest, kw_only=True, omit_defaults=True):
    """`ClarionChannelOrder`: reach each person on the first of these channels they can receive."""

    clarion_channel_order: list[shapes.ChannelType] | None = field(default=None, name="ClarionChannelOrder")


class CanvasPosition(Struct, kw_only=True, forbid_unknown_fields=True):
    """Where one activity is drawn: the top left corner of its box, in the canvas's units."""

    x: float = field(name="X")
    y: float = field(name="Y")


class JourneyCanvas(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """`ClarionCanvas`: the console's drawing of a journey; it has no part in how the journey runs."""

    positions: dict[str, CanvasPosition] | None = field(default=None, name="Positions")


class ExtendedWriteJourneyRequest(shapes.WriteJourneyRequest, kw_only=True, omit_defaults=True):
    clarion_canvas: JourneyCanvas | None = field(default=None, name="ClarionCanvas")


class ExtendedJourneyResponse(shapes.JourneyResponse, kw_only=True, omit_defaults=True):
    clarion_canvas: JourneyCanvas | None = field(default=None, name="ClarionCanvas")


class TrackingSwitch(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """`ClarionTracking`: what Clarion may add to an email for tracking; each member left out stays on."""

    open_tracking: bool | None = field(default=None, name="OpenTracking")
    click_tracking: bool | None = field(default=None, name="ClickTracking")
    list_unsubscribe: bool | None = field(default=None, name="ListUnsubscribe")


class ExtendedEmailMessage(shapes.EmailMessage, kw_only=True, omit_defaults=True):
    clarion_tracking: TrackingSwitch | None = field(default=None, name="ClarionTracking")


class ExtendedDirectMessageConfiguration(shapes.DirectMessageConfiguration, kw_only=True, omit_defaults=True):
    email_message: ExtendedEmailMessage | None = field(default=None, name="EmailMessage")


class ExtendedMessageRequest(shapes.MessageRequest, kw_only=True, omit_defaults=True):
    message_configuration: ExtendedDirectMessageConfiguration = field(name="MessageConfiguration")


class ExtendedSendUsersMessageRequest(shapes.SendUsersMessageRequest, kw_only=True, omit_defaults=True):
    message_configuration: ExtendedDirectMessageConfiguration = field(name="MessageConfiguration")


class ExtendedEmailTemplateRequest(shapes.EmailTemplateRequest, kw_only=True, omit_defaults=True):
    clarion_tracking: TrackingSwitch | None = field(default=None, name="ClarionTracking")


class UnsubscribePage(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """`ClarionUnsubscribePage`: the project's brand and language on the page behind its emails' unsubscribe links."""

    brand_name: str | None = field(default=None, name="BrandName")
    logo_url: str | None = field(default=None, name="LogoUrl")
    language: str | None = field(default=None, name="Language")


class ExtendedWriteApplicationSettingsRequest(shapes.WriteApplicationSettingsRequest, kw_only=True, omit_defaults=True):
    clarion_unsubscribe_page: UnsubscribePage | None = field(default=None, name="ClarionUnsubscribePage")


class SegmentPreviewRequest(Struct, kw_only=True, omit_defaults=True):
    """Either SegmentId (and optionally SegmentVersion) or Definition."""

    segment_id: str | None = field(default=None, name="SegmentId")
    segment_version: int | None = field(default=None, name="SegmentVersion")
    definition: SegmentDefinition | None = field(default=None, name="Definition")
    sample_size: int | None = field(default=None, name="SampleSize")
    sendable_only: bool | None = field(default=None, name="SendableOnly")


class SegmentPreviewResponse(Struct, kw_only=True, omit_defaults=True):
    size: int = field(name="Size")
    channel_counts: dict[str, int] = field(name="ChannelCounts")
    sample: list[str] = field(name="Sample")


class EventStreamDelivery(Struct, kw_only=True, omit_defaults=True):
    sink: str = field(name="Sink")
    lag_records: int = field(name="LagRecords")
    lag_seconds: float = field(name="LagSeconds")
    consecutive_failures: int = field(name="ConsecutiveFailures")
    last_delivered_date: str | None = field(default=None, name="LastDeliveredDate")
    last_error: str | None = field(default=None, name="LastError")
    last_error_date: str | None = field(default=None, name="LastErrorDate")


class ExtendedEventStream(shapes.EventStream, kw_only=True, omit_defaults=True):
    clarion_delivery: EventStreamDelivery | None = field(default=None, name="ClarionDelivery")


class BuriedWorkItem(Struct, kw_only=True, omit_defaults=True):
    id: int = field(name="Id")
    kind: str = field(name="Kind")
    application_id: str | None = field(default=None, name="ApplicationId")
    attempts: int = field(name="Attempts")
    reason: str = field(name="Reason")
    buried_date: str = field(name="BuriedDate")
    payload: dict[str, Any] = field(name="Payload")


class BuriedWorkResponse(Struct, kw_only=True, omit_defaults=True):
    item: list[BuriedWorkItem] = field(name="Item")


class CostLine(Struct, kw_only=True, omit_defaults=True):
    """Amounts are decimal strings (exact); a line with no known price says Unpriced instead."""

    meter: str = field(name="Meter")
    quantity: int = field(name="Quantity")
    country: str | None = field(default=None, name="Country")
    free: int | None = field(default=None, name="Free")
    billable: int | None = field(default=None, name="Billable")
    unit_price: str | None = field(default=None, name="UnitPrice")
    amount: str | None = field(default=None, name="Amount")
    unpriced: bool | None = field(default=None, name="Unpriced")


class CostBill(Struct, kw_only=True, omit_defaults=True):
    currency: str = field(name="Currency")
    lines: list[CostLine] = field(name="Lines")
    total: str = field(name="Total")
    complete: bool = field(name="Complete")


class SmsUsage(Struct, kw_only=True, omit_defaults=True):
    country: str = field(name="Country")
    parts_per_message: int = field(name="PartsPerMessage")
    messages: int = field(name="Messages")
    parts: int = field(name="Parts")


class CostUsage(Struct, kw_only=True, omit_defaults=True):
    messages: dict[str, int] = field(name="Messages")
    sms: list[SmsUsage] = field(name="Sms")
    monthly_targeted_audience: int = field(name="MonthlyTargetedAudience")
    endpoints_messaged: int = field(name="EndpointsMessaged")
    events_collected: int = field(name="EventsCollected")


class CostBreakdown(Struct, kw_only=True, omit_defaults=True):
    usage: CostUsage = field(name="Usage")
    pinpoint: CostBill = field(name="Pinpoint")
    provider: CostBill = field(name="Provider")


class ProjectCosts(CostBreakdown, kw_only=True, omit_defaults=True):
    application_id: str = field(name="ApplicationId")
    name: str = field(name="Name")


class CostsResponse(Struct, kw_only=True, omit_defaults=True):
    month: str = field(name="Month")
    start: str = field(name="Start")
    end: str = field(name="End")
    projects: list[ProjectCosts] = field(name="Projects")
    total: CostBreakdown = field(name="Total")


class EngagementResponse(Struct, kw_only=True, omit_defaults=True):
    endpoint_id: str | None = field(default=None, name="EndpointId")
    user_id: str | None = field(default=None, name="UserId")
    endpoints: int = field(name="Endpoints")
    last_active_date: str | None = field(default=None, name="LastActiveDate")
    events: int = field(name="Events")
    revenue: float = field(name="Revenue")
    recency: int = field(name="Recency")
    frequency: int = field(name="Frequency")
    monetary: int = field(name="Monetary")
    score: int = field(name="Score")


class EndpointSummary(Struct, kw_only=True, omit_defaults=True):
    id: str = field(name="Id")
    channel_type: str | None = field(default=None, name="ChannelType")
    address: str | None = field(default=None, name="Address")
    endpoint_status: str = field(name="EndpointStatus")
    opt_out: str = field(name="OptOut")
    user_id: str | None = field(default=None, name="UserId")
    creation_date: str = field(name="CreationDate")


class EndpointSearchResponse(Struct, kw_only=True, omit_defaults=True):
    item: list[EndpointSummary] = field(name="Item")
    next_token: str | None = field(default=None, name="NextToken")


class ProjectUser(Struct, kw_only=True, omit_defaults=True):
    user_id: str = field(name="UserId")
    endpoints: int = field(name="Endpoints")


class ProjectUsersResponse(Struct, kw_only=True, omit_defaults=True):
    item: list[ProjectUser] = field(name="Item")
    next_token: str | None = field(default=None, name="NextToken")


class TimelineEntry(Struct, kw_only=True, omit_defaults=True):
    """Kind EVENT (EventType, Attributes: an app event, or an outcome Clarion recorded about a message) or
    MESSAGE (a send, with its channel, address, DeliveryStatus and the campaign or journey that sent it)."""

    kind: Literal["EVENT", "MESSAGE"] = field(name="Kind")
    date: str = field(name="Date")
    endpoint_id: str | None = field(default=None, name="EndpointId")
    event_type: str | None = field(default=None, name="EventType")
    attributes: dict[str, str] | None = field(default=None, name="Attributes")
    message_id: str | None = field(default=None, name="MessageId")
    channel: str | None = field(default=None, name="Channel")
    address: str | None = field(default=None, name="Address")
    delivery_status: str | None = field(default=None, name="DeliveryStatus")
    status_message: str | None = field(default=None, name="StatusMessage")
    campaign_id: str | None = field(default=None, name="CampaignId")
    journey_id: str | None = field(default=None, name="JourneyId")


class TimelineResponse(Struct, kw_only=True, omit_defaults=True):
    item: list[TimelineEntry] = field(name="Item")
    next_token: str | None = field(default=None, name="NextToken")


_PAGE = (QueryParam("PageSize", "page-size", "str"), QueryParam("Token", "token", "str"))
_PERSON = (QueryParam("EndpointId", "endpoint-id", "str"), QueryParam("UserId", "user-id", "str"))
_ERRORS = ("BadRequestException", "ForbiddenException", "InternalServerErrorException")

EXTENSION_OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        extension_operation(
            "ClarionPreviewSegment",
            "POST",
            "/v1/apps/{application-id}/clarion/segment-preview",
            path=PROJECT,
            body=("SegmentPreviewRequest", SegmentPreviewRequest),
            output=("SegmentPreviewResponse", SegmentPreviewResponse),
            errors=(*_ERRORS, "NotFoundException", "PayloadTooLargeException"),
        ),
        extension_operation(
            "ClarionGetBuriedWork",
            "GET",
            "/v1/clarion/buried-work",
            query=(QueryParam("ApplicationId", "application-id", "str"),),
            output=("BuriedWorkResponse", BuriedWorkResponse),
            errors=_ERRORS,
        ),
        extension_operation(
            "ClarionGetCosts",
            "GET",
            "/v1/clarion/costs",
            query=(QueryParam("ApplicationId", "application-id", "str"), QueryParam("Month", "month", "str")),
            output=("CostsResponse", CostsResponse),
            errors=(*_ERRORS, "NotFoundException"),
        ),
        extension_operation(
            "ClarionGetEngagement",
            "GET",
            "/v1/apps/{application-id}/clarion/engagement",
            path=PROJECT,
            query=_PERSON,
            output=("EngagementResponse", EngagementResponse),
            errors=(*_ERRORS, "NotFoundException"),
        ),
        extension_operation(
            "ClarionListEndpoints",
            "GET",
            "/v1/apps/{application-id}/clarion/endpoints",
            path=PROJECT,
            query=(QueryParam("Search", "search", "str"), *_PAGE),
            output=("EndpointSearchResponse", EndpointSearchResponse),
            errors=(*_ERRORS, "NotFoundException"),
        ),
        extension_operation(
            "ClarionListProjectUsers",
            "GET",
            "/v1/apps/{application-id}/clarion/users",
            path=PROJECT,
            query=(QueryParam("Search", "search", "str"), *_PAGE),
            output=("ProjectUsersResponse", ProjectUsersResponse),
            errors=(*_ERRORS, "NotFoundException"),
        ),
        extension_operation(
            "ClarionGetTimeline",
            "GET",
            "/v1/apps/{application-id}/clarion/timeline",
            path=PROJECT,
            query=(
                *_PERSON,
                QueryParam("Kind", "kind", "str"),
                QueryParam("EventType", "event-type", "str"),
                QueryParam("StartTime", "start-time", "timestamp"),
                QueryParam("EndTime", "end-time", "timestamp"),
                *_PAGE,
            ),
            output=("TimelineResponse", TimelineResponse),
            errors=(*_ERRORS, "NotFoundException"),
        ),
    )
} | CONSOLE_OPERATIONS
EXTENSION_SUMMARIES = {
    "ClarionPreviewSegment": "Clarion extension: the size, channel counts and a sample of a segment or a definition",
    "ClarionGetBuriedWork": "Clarion extension: background work given up on (buried queue items) and why",
    "ClarionGetEngagement": "Clarion extension: an endpoint's or a user's engagement (recency, frequency, revenue)",
    "ClarionGetCosts": "Clarion extension: a month's usage per project, priced as Pinpoint would and as it is now",
    "ClarionListEndpoints": "Clarion extension: a project's endpoints, all or found by id, address, user or attribute",
    "ClarionGetTimeline": "Clarion extension: an endpoint's or a user's events and messages, newest first",
    "ClarionListProjectUsers": "Clarion extension: a project's users and their endpoint counts, all or by id prefix",
    **CONSOLE_SUMMARIES,
}

ROUTED_OPERATIONS: dict[str, Operation] = {
    **OPERATIONS,
    **{
        name: dataclasses.replace(OPERATIONS[name], input_type=ExtendedWriteSegmentRequest)
        for name in ("CreateSegment", "UpdateSegment")
    },
    **{
        name: dataclasses.replace(OPERATIONS[name], input_type=ExtendedWriteCampaignRequest)
        for name in ("CreateCampaign", "UpdateCampaign")
    },
    **{
        name: dataclasses.replace(
            OPERATIONS[name], input_type=ExtendedWriteJourneyRequest, output_type=ExtendedJourneyResponse
        )
        for name in ("CreateJourney", "UpdateJourney")
    },
    "GetJourney": dataclasses.replace(OPERATIONS["GetJourney"], output_type=ExtendedJourneyResponse),
    "UpdateApplicationSettings": dataclasses.replace(
        OPERATIONS["UpdateApplicationSettings"], input_type=ExtendedWriteApplicationSettingsRequest
    ),
    "SendMessages": dataclasses.replace(OPERATIONS["SendMessages"], input_type=ExtendedMessageRequest),
    "SendUsersMessages": dataclasses.replace(
        OPERATIONS["SendUsersMessages"], input_type=ExtendedSendUsersMessageRequest
    ),
    **{
        name: dataclasses.replace(OPERATIONS[name], input_type=ExtendedEmailTemplateRequest)
        for name in ("CreateEmailTemplate", "UpdateEmailTemplate")
    },
    "GetEventStream": dataclasses.replace(OPERATIONS["GetEventStream"], output_type=ExtendedEventStream),
    **EXTENSION_OPERATIONS,
}
