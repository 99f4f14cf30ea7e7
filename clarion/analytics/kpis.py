"""GetApplicationDateRangeKpi, GetCampaignDateRangeKpi, GetJourneyDateRangeKpi: Pinpoint's KPIs, from the event log.

Every figure comes from the events Clarion records for what it sends and what happens after (`_campaign.send`,
`_email.*`, `_SMS.*`, and the app's own `_campaign.opened_notification`), each carrying the message's campaign,
activity and journey ids as attributes (clarion/channels/outcomes.py). A KPI is a few counters over those events
and a formula over the counters (docs/analytics.md lists each one); the counters are computed by one query on the
engine the process has: the DuckDB replica, or SQL on the row store.

Date rules are Pinpoint's: the range is inclusive, at most 31 days, starts within the last 90 days (the data kept),
and defaults to the 31 days before the call. Values are strings of doubles; `Rows` is empty when nothing matched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clarion.clock import epoch_millis, iso_millis
from clarion.errors import BadRequest, NotFound
from clarion.paging import decode_token, encode_token, page_size
from clarion.projects.service import require_app
from clarion.store import campaigns as campaign_store
from clarion.store import journeys as journey_store
from clarion.store.database import Database, Transaction
from clarion.store.kpi_sql import Aggregate, Counter, Group, KpiQuery, Scope

MAX_RANGE = timedelta(days=31)
KEPT_DAYS = 90  # how far back a range may start: Pinpoint keeps KPI data 90 days (Clarion: its events' retention)

KpiRunner = Callable[[KpiQuery], Awaitable[list[tuple[Any, ...]]]]

# Send statuses that mean the transport refused the message: it was attempted (sent) and rejected at once.
REFUSED = ("PERMANENT_FAILURE", "TEMPORARY_FAILURE", "UNKNOWN_FAILURE", "THROTTLED")
PUSH_CHANNELS = ("APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "GCM", "BAIDU", "ADM")


def _count(*types: str, **where: tuple[str, ...]) -> Counter:
    return Counter(Aggregate.COUNT, types, tuple(where.items()))


def _recipients(*types: str, **where: tuple[str, ...]) -> Counter:
    return Counter(Aggregate.RECIPIENTS, types, tuple(where.items()))


# Campaign counters ----------------------------------------------------------------------------------------------
ATTEMPTED = _count("_campaign.send")
SENT_OK = _count("_campaign.send", delivery_status=("SUCCESSFUL",))
EMAIL_ATTEMPTED = _count("_campaign.send", channel_type=("EMAIL",))
EMAIL_SENT_OK = _count("_campaign.send", delivery_status=("SUCCESSFUL",), channel_type=("EMAIL",))
PUSH_SENT_OK = _count("_campaign.send", delivery_status=("SUCCESSFUL",), channel_type=PUSH_CHANNELS)
HARD_BOUNCES = _count("_email.hardbounce")
UNIQUE_OK = _recipients("_campaign.send", delivery_status=("SUCCESSFUL",))
EMAIL_OPENS = _count("_email.open")
PUSH_OPENS = _count("_campaign.opened_notification")
CLICKS = _count("_email.click")
SMS_PRICE = Counter(Aggregate.PRICE, ("_SMS.SUCCESS", "_SMS.FAILURE"))

# Message counters (transactional and journey email, transactional SMS) --------------------------------------------
EMAILS_SENT = (_count("_email.send"), _count("_email.rejected", delivery_status=REFUSED))
SOFT, HARD, REJECTED = _count("_email.softbounce"), _count("_email.hardbounce"), _count("_email.rejected")
UNDELIVERED = (SOFT, HARD, REJECTED)
SMS_SENT = (_count("_SMS.BUFFERED"), _count("_SMS.FAILURE", delivery_status=REFUSED))
SMS_PARTS_SENT = (
    Counter(Aggregate.PARTS, ("_SMS.BUFFERED",)),
    Counter(Aggregate.PARTS, ("_SMS.FAILURE",), (("delivery_status", REFUSED),)),
)
SMS_DELIVERED = _count("_SMS.SUCCESS")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


@dataclass(frozen=True, slots=True)
class Metric:
    """A KPI's value key (PascalCase), the counters it reads and how its value follows from them."""

    key: str
    counters: tuple[Counter, ...]
    value: Callable[[Sequence[float]], float]


def _sum(key: str, *counters: Counter) -> Metric:
    return Metric(key, counters, sum)


def _rate(key: str, numerator: Sequence[Counter], denominator: Sequence[Counter]) -> Metric:
    """numerator / denominator, each the sum of its counters."""
    n = len(numerator)
    return Metric(key, (*numerator, *denominator), lambda v: _ratio(sum(v[:n]), sum(v[n:])))


def _less(key: str, base: Sequence[Counter], minus: Sequence[Counter]) -> Metric:
    n = len(base)
    return Metric(key, (*base, *minus), lambda v: max(sum(v[:n]) - sum(v[n:]), 0.0))


def _less_rate(key: str, base: Sequence[Counter], minus: Sequence[Counter], per: Sequence[Counter]) -> Metric:
    """(base - minus) / per."""
    b, m = len(base), len(minus)
    return Metric(
        key, (*base, *minus, *per), lambda v: _ratio(max(sum(v[:b]) - sum(v[b : b + m]), 0.0), sum(v[b + m :]))
    )


def _per_less(key: str, numerator: Sequence[Counter], base: Sequence[Counter], minus: Sequence[Counter]) -> Metric:
    """numerator / (base - minus)."""
    n, b = len(numerator), len(base)
    return Metric(
        key,
        (*numerator, *base, *minus),
        lambda v: _ratio(sum(v[:n]), max(sum(v[n : n + b]) - sum(v[n + b :]), 0.0)),
    )


# Campaign metrics (a project's campaigns, or one campaign). Deliveries are successful sends less hard bounces.
SUCCESSFUL_DELIVERY_RATE = _less_rate("SuccessfulDeliveryRate", [SENT_OK], [HARD_BOUNCES], [ATTEMPTED])
EMAIL_OPEN_RATE = _per_less("EmailOpenRate", [EMAIL_OPENS], [EMAIL_SENT_OK], [HARD_BOUNCES])
UNIQUE_DELIVERIES = _sum("UniqueDeliveries", UNIQUE_OK)
SUCCESSFUL_DELIVERIES = _less("SuccessfulDeliveries", [SENT_OK], [HARD_BOUNCES])
PUSH_OPEN_RATE = _rate("PushOpenRate", [PUSH_OPENS], [PUSH_SENT_OK])


def _email_metrics(prefix: str) -> dict[str, Metric]:
    """A journey's email metrics by suffix, value keys prefixed (JourneyEmails..., Emails...). Deliveries are
    sends less bounces and rejections, as for transactional email."""
    return {
        "sent": _sum(f"{prefix}Sent", *EMAILS_SENT),
        "delivered": _less(f"{prefix}Delivered", EMAILS_SENT, UNDELIVERED),
        "opened": _sum(f"{prefix}Opened", EMAIL_OPENS),
        "clicked": _sum(f"{prefix}Clicked", CLICKS),
        "hardbounced": _sum(f"{prefix}Hardbounced", HARD),
        "softbounced": _sum(f"{prefix}Softbounced", SOFT),
        "complained": _sum(f"{prefix}Complained", _count("_email.complaint")),
        "rejected": _sum(f"{prefix}Rejected", REJECTED),
        "unsubscribed": _sum(f"{prefix}Unsubscribed", _count("_email.unsubscribe")),
    }


@dataclass(frozen=True, slots=True)
class Kpi:
    metric: Metric
    scope: Scope
    group: Group | None = None


def _catalogue() -> dict[str, dict[str, Kpi]]:
    app: dict[str, Kpi] = {}
    all_campaigns = {
        "successful-delivery-rate": (SUCCESSFUL_DELIVERY_RATE, (None, Group.DATE)),
        "email-open-rate": (EMAIL_OPEN_RATE, (None, Group.CAMPAIGN)),
        "unique-deliveries": (UNIQUE_DELIVERIES, (None, Group.CAMPAIGN, Group.DATE)),
        "successful-deliveries": (SUCCESSFUL_DELIVERIES, (Group.CAMPAIGN,)),
        "push-open-rate": (PUSH_OPEN_RATE, (None, Group.CAMPAIGN)),
    }
    for name, (metric, groups) in all_campaigns.items():
        for group in groups:
            app[_named(name, group)] = Kpi(metric, Scope.CAMPAIGNS, group)
    txn_email = {
        "txn-emails-sent": _sum("TxnEmailsSent", *EMAILS_SENT),
        "txn-emails-delivered": _less("TxnEmailsDelivered", EMAILS_SENT, UNDELIVERED),
        "txn-emails-delivery-rate": _less_rate("TxnEmailsDeliveryRate", EMAILS_SENT, UNDELIVERED, EMAILS_SENT),
        "txn-emails-opened": _sum("TxnEmailsOpened", EMAIL_OPENS),
        "txn-emails-unique-opens": _sum("TxnEmailsUniqueOpens", _recipients("_email.open")),
        "txn-emails-clicked": _sum("TxnEmailsClicked", CLICKS),
        "txn-emails-unique-clicks": _sum("TxnEmailsUniqueClicks", _recipients("_email.click")),
        "txn-emails-hard-bounced": _sum("TxnEmailsHardBounced", HARD),
        "txn-emails-soft-bounced": _sum("TxnEmailsSoftBounced", SOFT),
        "txn-emails-with-complaints": _sum("TxnEmailsWithComplaints", _count("_email.complaint")),
        "txn-emails-complaint-rate": _rate("TxnEmailsComplaintRate", [_count("_email.complaint")], EMAILS_SENT),
    }
    for name, metric in txn_email.items():
        app[name] = Kpi(metric, Scope.TRANSACTIONAL)
        app[_named(name, Group.DATE)] = Kpi(metric, Scope.TRANSACTIONAL, Group.DATE)
    sms_parts_priced = Counter(Aggregate.PARTS, ("_SMS.SUCCESS", "_SMS.FAILURE"))
    sms_priced = _count("_SMS.SUCCESS", "_SMS.FAILURE")
    txn_sms = {
        "txn-sms-sent": (_sum("TxnSmsSent", *SMS_SENT), (None, Group.DATE, Group.COUNTRY)),
        "txn-sms-sent-by-parts": (_sum("TxnSmsSentByParts", *SMS_PARTS_SENT), (None, Group.COUNTRY)),
        "txn-sms-delivered": (_sum("TxnSmsDelivered", SMS_DELIVERED), (None, Group.DATE, Group.COUNTRY)),
        "txn-sms-delivered-by-parts": (
            _sum("TxnSmsDeliveredByParts", Counter(Aggregate.PARTS, ("_SMS.SUCCESS",))),
            (None, Group.COUNTRY),
        ),
        "txn-sms-delivery-rate": (_rate("TxnSmsDeliveryRate", [SMS_DELIVERED], SMS_SENT), (None, Group.DATE)),
        "txn-sms-average-price": (_rate("TxnSmsAveragePrice", [SMS_PRICE], [sms_priced]), (Group.COUNTRY,)),
        "txn-sms-average-price-by-parts": (
            _rate("TxnSmsAveragePriceByParts", [SMS_PRICE], [sms_parts_priced]),
            (Group.COUNTRY,),
        ),
        "txn-sms-total-price": (_sum("TxnSmsTotalPrice", SMS_PRICE), (Group.COUNTRY,)),
    }
    for name, (metric, groups) in txn_sms.items():
        for group in groups:
            app[_named(name, group)] = Kpi(metric, Scope.TRANSACTIONAL, group)
    app["txn-sms-error-distribution"] = Kpi(
        _sum("TxnSmsErrorDistribution", _count("_SMS.FAILURE")), Scope.TRANSACTIONAL, Group.ERROR
    )

    campaign: dict[str, Kpi] = {}
    per_campaign = {
        "hard-bounce-rate": (_rate("HardBounceRate", [HARD_BOUNCES], [EMAIL_ATTEMPTED]), (None, Group.ACTIVITY)),
        "successful-delivery-rate": (SUCCESSFUL_DELIVERY_RATE, (None, Group.ACTIVITY, Group.DATE)),
        "email-open-rate": (EMAIL_OPEN_RATE, (None, Group.ACTIVITY)),
        "direct-email-opens": (_sum("DirectEmailOpens", EMAIL_OPENS), (Group.ACTIVITY,)),
        "unique-deliveries": (UNIQUE_DELIVERIES, (None, Group.ACTIVITY, Group.DATE)),
        "clicks": (_sum("Clicks", CLICKS), (Group.ACTIVITY,)),
        "successful-deliveries": (SUCCESSFUL_DELIVERIES, (Group.ACTIVITY,)),
        "attempted-deliveries": (_sum("AttemptedDeliveries", ATTEMPTED), (Group.ACTIVITY,)),
        "push-open-rate": (PUSH_OPEN_RATE, (None, Group.ACTIVITY)),
        "direct-push-opens": (_sum("DirectPushOpens", PUSH_OPENS), (Group.ACTIVITY,)),
        "sms-spend": (_sum("SmsSpend", SMS_PRICE), (None,)),
    }
    for name, (metric, groups) in per_campaign.items():
        for group in groups:
            campaign[_named(name, group)] = Kpi(metric, Scope.CAMPAIGN, group)

    journey: dict[str, Kpi] = {}
    for suffix, metric in _email_metrics("JourneyEmails").items():
        journey[f"journey-emails-{suffix}"] = Kpi(metric, Scope.JOURNEY)
    for suffix, metric in _email_metrics("Emails").items():
        journey[f"emails-{suffix}-grouped-by-journey-activity"] = Kpi(metric, Scope.JOURNEY, Group.JOURNEY_ACTIVITY)
    return {"app": app, "campaign": campaign, "journey": journey}


_GROUP_NAMES = {
    Group.DATE: "date",
    Group.CAMPAIGN: "campaign",
    Group.ACTIVITY: "campaign-activity",
    Group.JOURNEY_ACTIVITY: "journey-activity",
    Group.COUNTRY: "country",
}
# GroupedBys keys (their values are all of Type String).
_GROUP_KEYS = {
    Group.DATE: "Date",
    Group.CAMPAIGN: "CampaignId",
    Group.ACTIVITY: "CampaignActivityId",
    Group.JOURNEY_ACTIVITY: "JourneyActivityId",
    Group.COUNTRY: "Country",
    Group.ERROR: "ErrorCode",
}


def _named(name: str, group: Group | None) -> str:
    return name if group is None else f"{name}-grouped-by-{_GROUP_NAMES[group]}"


KPIS = _catalogue()


@dataclass(frozen=True, slots=True)
class DateRange:
    start: datetime
    end: datetime


def date_range(start: datetime | None, end: datetime | None, now: datetime, kept_days: int = KEPT_DAYS) -> DateRange:
    """Pinpoint's rules for StartTime and EndTime; naive times are UTC, as botocore sends them. A range may start
    `kept_days` back (0: events are kept for ever, any start)."""
    try:
        return _date_range(start, end, now, kept_days)
    except OverflowError:  # a time at the edge of the calendar (year 1 or 9999)
        raise BadRequest("StartTime and EndTime must be dates of this era, within the days events are kept") from None


def _date_range(start: datetime | None, end: datetime | None, now: datetime, kept_days: int) -> DateRange:
    start = start.replace(tzinfo=UTC) if start is not None and start.tzinfo is None else start
    end = end.replace(tzinfo=UTC) if end is not None and end.tzinfo is None else end
    if end is None:
        end = now if start is None else min(start + MAX_RANGE, now)
    if start is None:
        start = end - MAX_RANGE
    if start > end:
        raise BadRequest("StartTime must not be after EndTime")
    if end - start > MAX_RANGE:
        raise BadRequest("The date range from StartTime to EndTime must be 31 days or less")
    if kept_days and start < now - timedelta(days=kept_days):
        raise BadRequest(f"StartTime must be within the last {kept_days} days: events are kept for {kept_days} days")
    return DateRange(start.astimezone(UTC), end.astimezone(UTC))


def _value(number: float) -> dict[str, str]:
    return {"Type": "Double", "Value": repr(float(number))}


def _group_value(group: Group, raw: Any) -> str:
    if group is Group.DATE:
        return (date(1970, 1, 1) + timedelta(days=int(raw))).isoformat()
    return str(raw)


def kpi_result(kpi: Kpi, rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The result rows: a row whose counters are all zero is no data (Pinpoint's `Rows: []`)."""
    result = []
    offset = 0 if kpi.group is None else 1
    if kpi.group is not None:  # by day number, or by the group's text
        rows = sorted(rows, key=lambda r: (r[0] is None, r[0] or 0 if kpi.group is Group.DATE else str(r[0] or "")))
    for row in rows:
        counters = [float(value or 0) for value in row[offset:]]
        if not any(counters):
            continue
        grouped: list[dict[str, str]] = []
        if kpi.group is not None:
            if row[0] is None:
                continue
            grouped.append({"Key": _GROUP_KEYS[kpi.group], "Type": "String", "Value": _group_value(kpi.group, row[0])})
        result.append(
            {"GroupedBys": grouped, "Values": [{"Key": kpi.metric.key, **_value(kpi.metric.value(counters))}]}
        )
    return result


@dataclass(frozen=True, slots=True)
class KpiRequest:
    app_id: str
    kpi_name: str
    start: datetime | None = None
    end: datetime | None = None
    next_token: str | None = None
    page_size: str | None = None


def _require(tx: Transaction, level: str, app_id: str, scope_id: str | None) -> None:
    require_app(tx, app_id)
    if level == "campaign" and scope_id is not None and campaign_store.get(tx, app_id, scope_id) is None:
        raise NotFound(f"Campaign {scope_id!r} not found")
    if level == "journey" and scope_id is not None and journey_store.get(tx, app_id, scope_id) is None:
        raise NotFound(f"Journey {scope_id!r} not found")


async def date_range_kpi(
    db: Database,
    run: KpiRunner,
    level: str,
    request: KpiRequest,
    now: datetime,
    scope_id: str | None = None,
    kept_days: int = KEPT_DAYS,
) -> dict[str, Any]:
    """One DateRangeKpiResponse body; `level` is app, campaign or journey, `scope_id` the campaign or journey."""
    await db.read(lambda tx: _require(tx, level, request.app_id, scope_id))
    kpi = KPIS[level].get(request.kpi_name)
    if kpi is None:
        scope = {"app": "an application", "campaign": "a campaign", "journey": "a journey"}[level]
        raise BadRequest(f"KpiName {request.kpi_name!r} is not {scope} KPI (docs/analytics.md lists them)")
    window = date_range(request.start, request.end, now, kept_days)
    size = page_size(request.page_size)
    position = decode_token(request.next_token)
    query = KpiQuery(
        request.app_id,
        epoch_millis(window.start),
        epoch_millis(window.end),
        kpi.scope,
        scope_id,
        kpi.group,
        kpi.metric.counters,
    )
    rows = kpi_result(kpi, await run(query))
    response: dict[str, Any] = {
        "ApplicationId": request.app_id,
        **({"CampaignId": scope_id} if level == "campaign" else {}),
        **({"JourneyId": scope_id} if level == "journey" else {}),
        "KpiName": request.kpi_name,
        "StartTime": iso_millis(window.start),
        "EndTime": iso_millis(window.end),
        "KpiResult": {"Rows": rows[position : position + size]},
    }
    if position + size < len(rows):
        response["NextToken"] = encode_token(position + size)
    return response
