"""What a project used in a period, as the cost view prices it: messages per channel, SMS per country and part
count, the distinct endpoints messaged, and the events collected (by arrival, as Pinpoint metered them). Messages and
SMS sends read an index range (`messages_by_app`, `events_by_type_time`); events collected scan the project's
events."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Transaction
from clarion.store.events import app_event_sql

SMS_SENT = "_SMS.BUFFERED"  # the send event of an SMS a provider accepted (clarion/channels/outcomes.py)


@dataclass(frozen=True, slots=True)
class SmsUsage:
    country: str | None  # ISO code of the destination; None when the send event did not record one
    parts_per_message: int
    messages: int


@dataclass(frozen=True, slots=True)
class Usage:
    messages: dict[str, int]  # channel -> messages a provider accepted
    sms: list[SmsUsage]
    targeted_audience: int  # distinct endpoints a campaign or journey sent to (Pinpoint's MTA)
    endpoints_messaged: int  # distinct endpoints any message was sent to
    events_collected: int  # events that arrived through PutEvents


def usage(tx: Transaction, app_id: str, start: str, end: str, start_ms: int, end_ms: int) -> Usage:
    """Usage in [start, end): ISO instants for the message log, the same bounds in epoch ms for events."""
    in_period = "app_id = ? AND created_at >= ? AND created_at < ?"
    period = (app_id, start, end)
    messages = {
        channel: int(count)
        for channel, count in tx.fetchall(
            f"SELECT channel, count(*) FROM messages WHERE {in_period} AND status = 'SUCCESSFUL' GROUP BY channel",
            period,
        )
    }
    targeted = tx.scalar(
        f"SELECT count(DISTINCT endpoint_id) FROM messages WHERE {in_period} AND endpoint_id IS NOT NULL "
        "AND (campaign_id IS NOT NULL OR journey_id IS NOT NULL) AND status NOT IN ('OPT_OUT', 'DUPLICATE')",
        period,
    )
    messaged = tx.scalar(
        f"SELECT count(DISTINCT endpoint_id) FROM messages WHERE {in_period} AND endpoint_id IS NOT NULL "
        "AND status NOT IN ('OPT_OUT', 'DUPLICATE')",
        period,
    )
    country = tx.dialect.json_text("doc", ("Attributes", "iso_country_code"))
    parts = tx.dialect.json_text("doc", ("Attributes", "number_of_message_parts"))
    sms = [
        SmsUsage(row[0], int(row[1] or 1), int(row[2]))
        for row in tx.fetchall(
            f"SELECT {country}, {parts}, count(*) FROM events WHERE app_id = ? AND event_type = ? "
            "AND event_at >= ? AND event_at < ? GROUP BY 1, 2 ORDER BY 1, 2",
            (app_id, SMS_SENT, start_ms, end_ms),
        )
    ]
    collected = tx.scalar(
        "SELECT count(*) FROM events WHERE app_id = ? AND arrival_at >= ? AND arrival_at < ? "
        f"AND {app_event_sql('event_type')}",
        (app_id, start_ms, end_ms),
    )
    return Usage(messages, sms, int(targeted or 0), int(messaged or 0), int(collected or 0))
