"""Micro-benchmark: orjson against msgspec.json on the JSON Clarion handles untyped, to decide whether both pay.

    .venv/bin/python bench/json_libraries.py [--rounds 20000]

msgspec already decodes and encodes every typed API body; orjson handles the plain dicts: stored endpoint
documents (read, merged and written again by every UpdateEndpoint(sBatch)), events, queue payloads and dict-shaped
API answers. Each case is timed both ways on the same value (best of 5 runs), and the outputs are checked to
decode to the same value. The ratio column is msgspec's time over orjson's: above 1, orjson is faster.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ENDPOINT_DOC: dict[str, Any] = {
    "ChannelType": "EMAIL",
    "Address": "jane.doe@example.com",
    "EndpointStatus": "ACTIVE",
    "OptOut": "NONE",
    "EffectiveDate": "2026-11-23T10:00:00.000Z",
    "CreationDate": "2026-11-20T08:30:00.000Z",
    "Attributes": {"interests": ["shoes", "running", "outdoor"], "tier": ["gold"], "signup": ["web"]},
    "Metrics": {"purchases": 12.0, "sessions": 48.0, "ltv": 1234.5},
    "Location": {"City": "Seoul", "Country": "KR", "Latitude": 37.56, "Longitude": 126.97, "PostalCode": "04524"},
    "Demographic": {
        "AppVersion": "5.2.1",
        "Locale": "ko_KR",
        "Make": "Apple",
        "Platform": "ios",
        "Timezone": "Asia/Seoul",
    },
    "User": {"UserId": "user-000042", "UserAttributes": {"FirstName": ["Jane"], "LastName": ["Doe"]}},
    "RequestId": "3f6c2f9a-8d1e-4b8e-9a53-0b5b1f5e0c11",
}
EVENT: dict[str, Any] = {
    "EventType": "purchase",
    "Timestamp": "2026-11-23T10:00:00.000Z",
    "Attributes": {"sku": "A-1234", "channel": "web"},
    "Metrics": {"price": 59.9, "quantity": 1.0},
    "Session": {"Id": "s-1", "StartTimestamp": "2026-11-23T09:58:00.000Z"},
    "AppPackageName": "com.example.shop",
    "AppVersionCode": "521",
}
BATCH_PAYLOAD: dict[str, Any] = {
    "run": "c0ffee:2026-11-23T10:00:00.000Z",
    "endpoints": [f"ep-{n:07d}" for n in range(100)],
    "due": 1_795_000_000_000,
}
ACTIVITIES: dict[str, Any] = {
    "Item": [
        {
            "ApplicationId": "0123456789abcdef0123456789abcdef",
            "CampaignId": "fedcba9876543210fedcba9876543210",
            "Id": f"{n:032x}",
            "State": "COMPLETED",
            "Result": "SUCCESS",
            "ScheduledStart": "2026-11-23T10:00:00.000Z",
            "Start": "2026-11-23T10:00:00.120Z",
            "End": "2026-11-23T10:04:12.332Z",
            "TotalEndpointCount": 100_000,
            "SuccessfulEndpointCount": 99_812,
            "TimezonesTotalCount": 3,
            "TimezonesCompletedCount": 3,
            "TreatmentId": "0",
            "ExecutionMetrics": {"RetriedEndpoints": "12"},
        }
        for n in range(20)
    ]
}
CASES = {
    "endpoint document (~0.8 kB)": ENDPOINT_DOC,
    "event (~0.3 kB)": EVENT,
    "campaign batch payload (100 ids)": BATCH_PAYLOAD,
    "GetCampaignActivities answer (20 items)": ACTIVITIES,
}


def best_microseconds(work: Callable[[], Any], rounds: int) -> float:
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            work()
        timings.append((time.perf_counter() - start) / rounds * 1e6)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    rounds = parser.parse_args().rounds
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    print(f"{'case':42} {'op':7} {'orjson µs':>10} {'msgspec µs':>11} {'ratio':>6}")
    for name, value in CASES.items():
        text = orjson.dumps(value)
        assert decoder.decode(encoder.encode(value)) == orjson.loads(text) == value
        for op, fast, other in (
            ("encode", lambda v=value: orjson.dumps(v), lambda v=value: encoder.encode(v)),
            ("decode", lambda t=text: orjson.loads(t), lambda t=text: decoder.decode(t)),
        ):
            ours, theirs = best_microseconds(fast, rounds), best_microseconds(other, rounds)
            print(f"{name:42} {op:7} {ours:10.2f} {theirs:11.2f} {theirs / ours:6.2f}")


if __name__ == "__main__":
    main()
