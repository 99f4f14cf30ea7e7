"""Push delivery: APNs and FCM over HTTP/2, through the process's guarded client (libcurl, clarion/outbound/).

`OPENERS` maps each Pinpoint push channel type to its `open_transport(settings, channel, outbound)`; the channel record
is the project's stored, decrypted channel (Pinpoint member names: ServiceJson, TokenKey, Certificate, ...).
"""

from __future__ import annotations

from clarion.channels.delivery import OpenTransport
from clarion.channels.push import apns, fcm

OPENERS: dict[str, OpenTransport] = {
    "GCM": fcm.open_transport,
    "APNS": apns.open_transport,
    "APNS_SANDBOX": apns.open_transport,
    "APNS_VOIP": apns.open_transport,
    "APNS_VOIP_SANDBOX": apns.open_transport,
}
