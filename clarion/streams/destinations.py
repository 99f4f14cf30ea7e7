"""What a DestinationStreamArn names, and which configured sink stands for it here.

Pinpoint accepts the ARN of a Kinesis data stream (`arn:aws:kinesis:<region>:<account>:stream/<name>`) or of a
Firehose delivery stream (`arn:aws:firehose:<region>:<account>:deliverystream/<name>`), and an IAM role it assumes
to write there. Clarion writes to the sink the operator mapped the ARN to (clarion/streams/config.py); the role is
checked for form and kept, since no role is assumed.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from clarion.errors import BadRequest
from clarion.streams.config import Sink, StreamSettings

_STREAM_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):(?P<service>kinesis|firehose):(?P<region>[a-z]{2}(-[a-z]+)+-\d):"
    r"(?P<account>\d{12}):(?P<kind>stream|deliverystream)/(?P<name>[A-Za-z0-9_.-]{1,128})"
)
_ROLE_ARN = re.compile(r"arn:(aws|aws-cn|aws-us-gov):iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_KIND = {"kinesis": "stream", "firehose": "deliverystream"}
# The library each sink type needs beyond Clarion's own dependencies (the `streams` extra).
LIBRARIES = {"redis": "redis", "nats": "nats"}


@dataclass(frozen=True, slots=True)
class Destination:
    arn: str
    service: str  # kinesis | firehose
    region: str
    account_id: str
    stream_name: str

    def parts(self, app_id: str) -> dict[str, str]:
        """What sink settings may name (config.PLACEHOLDERS)."""
        return {
            "application_id": app_id,
            "stream_name": self.stream_name,
            "region": self.region,
            "account_id": self.account_id,
            "service": self.service,
        }


def parse_destination(arn: str) -> Destination:
    found = _STREAM_ARN.fullmatch(arn)
    # A name of dots alone is refused: sink settings may use it in file paths.
    if found is None or _KIND[found["service"]] != found["kind"] or not found["name"].strip("."):
        raise BadRequest(
            f"DestinationStreamArn {arn[:300]!r} is not the ARN of a Kinesis data stream "
            "(arn:aws:kinesis:<region>:<account>:stream/<name>) or of a Firehose delivery stream "
            "(arn:aws:firehose:<region>:<account>:deliverystream/<name>)"
        )
    return Destination(arn, found["service"], found["region"], found["account"], found["name"])


def check_role(role_arn: str) -> None:
    if not role_arn:
        raise BadRequest("RoleArn is required: the ARN of the IAM role that may write to the destination stream")
    if _ROLE_ARN.fullmatch(role_arn) is None:
        raise BadRequest(f"RoleArn {role_arn[:300]!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")


def sink_for(settings: StreamSettings, arn: str) -> Sink | None:
    """The first configured sink whose pattern matches the ARN."""
    return next((sink for sink in settings.sinks if fnmatchcase(arn, sink.arn)), None)


def missing_library(sink: Sink) -> str | None:
    """The Python package a sink needs that is not installed, or None."""
    module = LIBRARIES.get(sink.type)
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return module


def routed_sink(settings: StreamSettings, arn: str) -> Sink:
    """The sink a PutEventStream's destination goes to; refuses a destination that would go nowhere."""
    sink = sink_for(settings, arn)
    if sink is None:
        raise BadRequest(
            f"DestinationStreamArn {arn!r} is not mapped to a sink on this server: its operator maps stream ARNs to "
            "webhooks, Redis, NATS, files or S3 in the [[streams.sinks]] settings (docs/event-streams.md)"
        )
    library = missing_library(sink)
    if library is not None:
        raise BadRequest(
            f"DestinationStreamArn {arn!r} maps to a {sink.type} sink, but this server lacks the {library!r} Python "
            "package; its operator installs it with: pip install 'clarion[streams]'"
        )
    return sink
