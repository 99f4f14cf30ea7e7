"""Three `clarion serve` processes on one PostgreSQL store acting as one system (docs/operations.md#several-
processes): one of them runs the journey engine for the others' writes and events, a campaign's MessagesPerSecond
holds for the group, a revoked key is refused by every process within a second, concurrent duplicate TraceIds send
once, a killed delivery process's batch is picked up again within 15 s, and when the scheduler's leader dies
another process takes the role within 10 s.

The processes are started once for the module and share an SMTP relay in this process, which records when each
message arrived. The tests run in file order: the last one kills processes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, reset_postgres
from pinpoint_calls import project_with_email
from processes import pinpoint, start_server
from smtp_relay import Relay, start_relay
from test_access_keys_live import accepted, client_for

from clarion.access_keys.service import AccessKeys, generate_key
from clarion.channels.config import DeliverySettings
from clarion.channels.secrets import load_secret_box
from clarion.clock import SystemClock
from clarion.config import Settings
from clarion.store.database import PostgresDatabase

pytestmark = pytest.mark.postgres

SCHEDULER = "campaign-scheduler"
BATCH = 20
SIMPLE = {"Subject": {"Data": "s"}, "TextPart": {"Data": "t"}}


@dataclass
class Member:
    settings: Settings
    process: subprocess.Popen[bytes]

    @property
    def client(self) -> Any:
        return pinpoint(self.settings.port)

    def leads(self, role: str = SCHEDULER) -> bool:
        """Whether this process holds the role (the campaign scheduler unless told) now, by its own /metrics."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.settings.port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return False
        found = re.search(re.escape(f'clarion_leader{{role="{role}"}}') + r" (\S+)", text)
        return found is not None and float(found.group(1)) == 1.0


@dataclass
class Group:
    members: list[Member]
    relay: Relay
    shared_env: dict[str, str]
    database_url: str
    cli_dir: Path


def eventually(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> float:
    """Seconds until `condition` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(step)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def group(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    reset_postgres(postgres_url)
    folder = tmp_path_factory.mktemp("group")
    relay = Relay()
    controller, smtp_port = start_relay(relay)
    shared = {
        # Every process seals and opens stored keys and channel credentials with the same key.
        "CLARION_DELIVERY__SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "CLARION_DELIVERY__SMTP__HOST": "127.0.0.1",
        "CLARION_DELIVERY__SMTP__PORT": str(smtp_port),
        "CLARION_DELIVERY__SMTP__SECURITY": "none",
        "CLARION_CAMPAIGNS__BATCH_SIZE": str(BATCH),
        # Shorter than the defaults (10 s and 6 s) to keep the test short; bench/campaign_crash.py --processes 3
        # checks the defaults against the 15 s and 10 s goals.
        "CLARION_QUEUE__VISIBILITY_SECONDS": "4",
        "CLARION_COORDINATION__LEADER_LEASE_SECONDS": "3",
    }
    members: list[Member] = []
    errors: list[BaseException] = []

    def start(number: int) -> None:
        settings = Settings(data_dir=folder / f"p{number}", port=free_port(), database_url=postgres_url)
        try:
            # Three processes start at once (migrations take turns): allow a busy machine time for it.
            process = start_server(settings, folder / f"p{number}.log", timeout=120, **shared)
            members.append(Member(settings, process))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        yield Group(members, relay, shared, postgres_url, folder / "cli")
    finally:
        for member in members:
            member.process.kill()
            member.process.wait()
        controller.stop()


def _campaign(client: Any, app_id: str, segment_id: str, per_second: int) -> str:
    return client.create_campaign(
        ApplicationId=app_id,
        WriteCampaignRequest={
            "Name": "group",
            "SegmentId": segment_id,
            "Schedule": {"StartTime": "IMMEDIATE"},
            "Limits": {"MessagesPerSecond": per_second},
            "MessageConfiguration": {"EmailMessage": {"Title": "Hello", "Body": "Hi"}},
        },
    )["CampaignResponse"]["Id"]


def _arrivals(relay: Relay, name: str) -> list[float]:
    return sorted(item.at for item in relay.received if item.rcpt_tos[0].startswith(name))


def test_one_process_of_the_group_keeps_the_segment_replica(group: Group) -> None:
    # The others answer segment reads on the row store: the same answers, without N copies of the replica.
    eventually(lambda: sum(m.leads("analytics") for m in group.members) == 1, 10, "one replica holder", step=0.2)


def test_one_process_of_the_group_prunes_the_store(group: Group) -> None:
    # The store's rows and KPI rollups are shared: pruning and merging them once is enough for the group.
    eventually(lambda: sum(m.leads("retention") for m in group.members) == 1, 10, "one retention pass", step=0.2)


def test_one_process_runs_journeys_and_hears_the_others_events(group: Group) -> None:
    eventually(lambda: sum(m.leads("journey-engine") for m in group.members) == 1, 10, "one engine", step=0.2)
    others = [member for member in group.members if not member.leads("journey-engine")]
    client = others[0].client  # the journey is written on one process that does not run the engine ...
    app_id, _ = project_with_email(client, "journey", 20, prefix="journey")
    client.create_email_template(TemplateName="journey-thanks", EmailTemplateRequest={"Subject": "s", "TextPart": "t"})
    event_filter = {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": ["purchase"]}}}
    journey_id = client.create_journey(
        ApplicationId=app_id,
        WriteJourneyRequest={
            "Name": "thanks",
            "Activities": {"thanks": {"EMAIL": {"TemplateName": "journey-thanks"}}},
            "StartActivity": "thanks",
            "StartCondition": {"EventStartCondition": {"EventFilter": event_filter}},
            "State": "ACTIVE",
        },
    )["JourneyResponse"]["Id"]
    event = {"EventType": "purchase", "Timestamp": "2026-11-23T10:00:00Z"}
    batch = {f"e{n}": {"Endpoint": {}, "Events": {"buy": event}} for n in range(20)}
    others[1].client.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": batch})  # ... and PutEvents another
    addresses = {f"journey{n}@example.org" for n in range(20)}
    eventually(
        lambda: {to for to in group.relay.recipients() if to.startswith("journey")} >= addresses, 15, "every email"
    )
    metrics = client.get_journey_execution_metrics(ApplicationId=app_id, JourneyId=journey_id)
    assert metrics["JourneyExecutionMetricsResponse"]["Metrics"]["ENDPOINT_ENTERED"] == "20"
    time.sleep(0.5)  # nothing more arrives: one engine let each endpoint in once
    assert Counter(to for to in group.relay.recipients() if to.startswith("journey")) == dict.fromkeys(addresses, 1)


def test_messages_per_second_holds_across_three_processes(group: Group) -> None:
    rate, endpoints = 100, 600
    client = group.members[0].client
    app_id, segment_id = project_with_email(client, "mps", endpoints, prefix="mps")
    _campaign(client, app_id, segment_id, rate)
    eventually(lambda: len(_arrivals(group.relay, "mps")) >= endpoints, 30, "every message arrives")
    times = _arrivals(group.relay, "mps")
    # The bucket starts full (a tenth of a second's worth, less than a batch); after that each batch of BATCH
    # goes out when the group's bucket lets it. The rate is the least-squares slope of messages over time, which
    # one batch late or early (a busy machine) moves little.
    mean_t, mean_n = sum(times) / len(times), (len(times) - 1) / 2
    measured = sum((t - mean_t) * (n - mean_n) for n, t in enumerate(times)) / sum((t - mean_t) ** 2 for t in times)
    assert abs(measured - rate) <= 0.1 * rate, f"{measured:.1f} messages/s against a limit of {rate}"


def test_a_revoked_key_is_refused_by_every_process_within_a_second(group: Group) -> None:
    # Keys are stored and revoked the way `clarion keys` does it, here from the test's own process (a CLI start
    # would cost seconds on a busy machine; tests/test_access_keys_live.py runs the command across processes).
    delivery = DeliverySettings(secret_key=group.shared_env["CLARION_DELIVERY__SECRET_KEY"])
    db = PostgresDatabase(group.database_url)
    keys = AccessKeys(db, load_secret_box(delivery, group.cli_dir), SystemClock())
    try:
        key = asyncio.run(keys.create(generate_key(description="group"), known_operations=()))
        clients = [client_for(f"http://127.0.0.1:{m.settings.port}", key.model_dump()) for m in group.members]
        for client in clients:
            eventually(lambda client=client: accepted(client), 1.0, "the new key is accepted everywhere")
        asyncio.run(keys.revoke(key.access_key_id))
        for number, client in enumerate(clients):
            eventually(lambda client=client: not accepted(client), 1.0, f"process {number} refuses the revoked key")
    finally:
        db.close()


def test_concurrent_duplicate_trace_ids_send_once(group: Group) -> None:
    client = group.members[0].client
    app_id = client.create_app(CreateApplicationRequest={"Name": "trace"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    addresses = [f"trace{n}@example.org" for n in range(5)]
    request = {
        "TraceId": "order-1234",
        "Addresses": {address: {"ChannelType": "EMAIL"} for address in addresses},
        "MessageConfiguration": {
            "EmailMessage": {"SimpleEmail": {"Subject": {"Data": "s"}, "TextPart": {"Data": "t"}}}
        },
    }
    answers: list[dict[str, Any]] = []
    barrier = threading.Barrier(6)

    def send(member: Member) -> None:
        member_client = member.client
        barrier.wait()
        answer = member_client.send_messages(ApplicationId=app_id, MessageRequest=request)
        answers.append(answer["MessageResponse"]["Result"])

    threads = [threading.Thread(target=send, args=(member,)) for member in group.members * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6
    time.sleep(0.5)  # nothing more arrives
    received = Counter(to for to in group.relay.recipients() if to.startswith("trace"))
    assert received == dict.fromkeys(addresses, 1)
    for address in addresses:  # every request answers the one message that was sent
        assert {answer[address]["MessageId"] for answer in answers} == {answers[0][address]["MessageId"]}
        assert {answer[address]["DeliveryStatus"] for answer in answers} == {"SUCCESSFUL"}


def test_a_channel_changed_in_one_process_is_used_by_every_process_within_a_second(group: Group) -> None:
    """Each process keeps the channel records it sends with (clarion/channels/cache.py): a change made through one
    of them reaches the others' caches with the commit."""
    client = group.members[0].client
    app_id = client.create_app(CreateApplicationRequest={"Name": "channel"})["ApplicationResponse"]["Id"]
    channel = {"FromAddress": "news@example.com", "Identity": "example.com"}
    client.update_email_channel(ApplicationId=app_id, EmailChannelRequest=channel)
    request = {"MessageConfiguration": {"EmailMessage": {"SimpleEmail": SIMPLE}}}

    def status(member: Member, number: int) -> str:
        addresses = {f"channel{number}@example.org": {"ChannelType": "EMAIL"}}
        answer = member.client.send_messages(ApplicationId=app_id, MessageRequest={**request, "Addresses": addresses})
        return answer["MessageResponse"]["Result"][f"channel{number}@example.org"]["DeliveryStatus"]

    sent = iter(range(1000))
    assert [status(member, next(sent)) for member in group.members] == ["SUCCESSFUL"] * 3  # every cache holds it
    client.update_email_channel(ApplicationId=app_id, EmailChannelRequest={**channel, "Enabled": False})
    for number, member in enumerate(group.members):
        refused = lambda member=member: status(member, next(sent)) == "PERMANENT_FAILURE"  # noqa: E731
        eventually(refused, 1.0, f"process {number} sees the channel disabled", step=0.05)
    client.update_email_channel(ApplicationId=app_id, EmailChannelRequest={**channel, "Enabled": True})
    for number, member in enumerate(group.members):
        delivered = lambda member=member: status(member, next(sent)) == "SUCCESSFUL"  # noqa: E731
        eventually(delivered, 1.0, f"process {number} sees the channel enabled again", step=0.05)


def test_a_killed_delivery_process_batch_is_delivered_again_within_15_seconds(group: Group) -> None:
    rate, endpoints = 200, 1200
    client = group.members[0].client
    app_id, segment_id = project_with_email(client, "kill", endpoints, prefix="kill")
    victim = next(member for member in group.members[1:] if not member.leads())
    _campaign(client, app_id, segment_id, rate)
    eventually(lambda: len(_arrivals(group.relay, "kill")) >= endpoints // 3, 30, "a third of the messages")
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    group.members.remove(victim)
    names = {f"kill{n}@example.org" for n in range(endpoints)}
    seconds = eventually(
        lambda: {to for to in group.relay.recipients() if to.startswith("kill")} >= names, 30, "every recipient"
    )
    received = Counter(to for to in group.relay.recipients() if to.startswith("kill"))
    duplicates = sum(received.values()) - len(received)
    assert duplicates <= BATCH  # at most the killed process's batch in flight
    assert seconds <= 15, f"the last recipients arrived {seconds:.1f} s after the kill"


def test_when_the_scheduler_leader_dies_another_process_takes_over_within_10_seconds(group: Group) -> None:
    eventually(lambda: sum(member.leads() for member in group.members) == 1, 10, "exactly one leader", step=0.2)
    [leader] = [member for member in group.members if member.leads()]
    os.kill(leader.process.pid, signal.SIGKILL)
    leader.process.wait()
    group.members.remove(leader)
    [survivor] = group.members
    seconds = eventually(survivor.leads, 10, "the surviving process schedules", step=0.1)
    # The new leader runs campaigns: one created now is delivered.
    app_id, segment_id = project_with_email(survivor.client, "after", 5, prefix="after")
    _campaign(survivor.client, app_id, segment_id, 100)
    eventually(lambda: len(_arrivals(group.relay, "after")) == 5, 15, "the campaign after the takeover")
    assert seconds <= 10
