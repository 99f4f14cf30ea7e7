"""What a recipient's reply means: opt out, opt back in, or ask for help.

The opt-out words are the union of what AWS End User Messaging SMS requires (ARRET, CANCEL, END, OPT-OUT, OPTOUT,
QUIT, REMOVE, STOP, TD, UNSUBSCRIBE) and what Twilio honours by default (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END,
QUIT); opt-in and help words are the ones both document (START, YES, UNSTOP; HELP, INFO). As with both
providers, only a reply that is the keyword alone counts: "STOP" opts out, "please stop" does not.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from clarion.channels.delivery import ProviderReport

OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "OPT-OUT", "OPTOUT", "REMOVE", "TD"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

OPT_OUT_EVENT = "_SMS.OPTOUT"
# Pinpoint has no event for opting back in; Clarion records this one so that the opt-in is visible and segmentable.
OPT_IN_EVENT = "_SMS.OPTIN"


class Keyword(StrEnum):
    OPT_OUT = "OPT_OUT"
    OPT_IN = "OPT_IN"
    HELP = "HELP"


def keyword_of(body: str) -> Keyword | None:
    word = body.strip().upper()
    # "Arrêt" is how French speakers write ARRET.
    word = word.replace("Ê", "E")
    if word in OPT_OUT_KEYWORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return Keyword.OPT_IN
    if word in HELP_KEYWORDS:
        return Keyword.HELP
    return None


def inbound_report(
    sender: str,
    recipient: str,
    body: str,
    provider: str,
    *,
    provider_message_id: str | None = None,
    occurred_at: datetime | None = None,
) -> ProviderReport | None:
    """The report an inbound message makes, if it is an opt-out or opt-in keyword.

    `sender` is the subscriber's number (the address that opts out); `recipient` is Clarion's number, the one
    that originated the messages being refused. The provider's id for the inbound message, or the time it says
    the message came, tells a replayed STOP from a new one and orders STOP against START.
    """
    keyword = keyword_of(body)
    if keyword not in (Keyword.OPT_OUT, Keyword.OPT_IN):
        return None
    opt_out = keyword is Keyword.OPT_OUT
    return ProviderReport(
        event_type=OPT_OUT_EVENT if opt_out else OPT_IN_EVENT,
        channel="SMS",
        provider_message_id=provider_message_id,
        address=sender,
        attributes={
            "keyword": body.strip().upper(),
            "destination_phone_number": sender,
            "origination_phone_number": recipient,
            "provider": provider,
        },
        opt_out=opt_out,
        opt_in=not opt_out,
        occurred_at=occurred_at,
    )
