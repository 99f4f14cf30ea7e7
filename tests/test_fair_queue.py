"""Fair background work: projects take turns, one project's slow or many items leave room for the others', items
have time limits, and work that keeps failing or never finishes is buried and reported by its kind.

The queue-level tests drive a real queue on both stores with a FixedClock; the end-to-end test runs a real server
against a local HTTP server that answers one line and then holds the connection, released by the test.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar

import pytest
from conftest import RunningServer
from pinpoint_calls import email_project, folder_of, immediate_campaign, import_job, wait_job
from smtp_relay import Relay
from test_queue import START, run
from web_recorder import serving

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings, SmtpSettings
from clarion.clock import FixedClock
from clarion.config import Settings
from clarion.jobs.config import JobSettings
from clarion.outbound.config import OutboundSettings
from clarion.queue.config import QueueSettings
from clarion.queue.work_queue import BuriedItem, Lease, StoreQueue
from clarion.queue.worker import Worker
from clarion.store.database import Transaction

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

T = TypeVar("T")
WAIT = 30.0  # a generous bound for "soon" on a busy machine; nothing here waits it out when things work


def test_a_project_queueing_later_takes_its_turn_before_an_earlier_backlog(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> list[str]:
        for n in range(50):
            await queue.enqueue("send", {"n": n}, project="big")
        clock.at += timedelta(seconds=2)
        await queue.enqueue("send", {"n": 0}, project="small")
        order = []
        for _ in range(6):
            [lease] = await queue.lease(["send"], 1, visibility=60)
            order.append(f"{lease.project}:{lease.payload['n']}")
        return order

    order = run(settings, scenario)
    assert "small:0" in order[:4]  # first come first served would have put it 51st
    assert [entry for entry in order if entry.startswith("big")] == ["big:0", "big:1", "big:2", "big:3", "big:4"]


def test_a_slow_item_holds_one_slot_and_its_project_no_more_than_its_share(settings: Settings) -> None:
    config = QueueSettings(concurrency=3, project_concurrency=1, poll_seconds=0.05)

    async def scenario(queue: StoreQueue, clock: FixedClock) -> tuple[list[str], list[str]]:
        release = asyncio.Event()
        slow_started = asyncio.Event()
        finished: list[str] = []
        started: list[str] = []
        all_quick_done = asyncio.Event()

        async def work(lease: Lease) -> None:
            started.append(f"{lease.project}:{lease.payload['n']}")
            if lease.project == "slow":
                slow_started.set()
                await release.wait()
            finished.append(f"{lease.project}:{lease.payload['n']}")
            if sum(1 for f in finished if f.startswith("quick")) == 5:
                all_quick_done.set()

        for n in range(3):
            await queue.enqueue("import", {"n": n}, project="slow")
        for n in range(5):
            await queue.enqueue("import", {"n": n}, project="quick")
        worker = Worker(queue, {"import": work}, config)
        task = asyncio.create_task(worker.run())
        try:
            await asyncio.wait_for(slow_started.wait(), WAIT)
            await asyncio.wait_for(all_quick_done.wait(), WAIT)  # while the slow item still holds its slot
            during = list(started)
            release.set()
            while len(finished) < 8:
                await asyncio.wait_for(queue.wait(0.05), WAIT)
            return during, finished
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    during, finished = run(settings, scenario)
    assert [s for s in during if s.startswith("slow")] == ["slow:0"]  # its share: one slot, the rest waited
    assert sorted(s for s in during if s.startswith("quick")) == [f"quick:{n}" for n in range(5)]
    assert sorted(finished) == sorted([f"slow:{n}" for n in range(3)] + [f"quick:{n}" for n in range(5)])


def test_an_item_over_its_time_limit_is_retried_then_buried_and_reported(settings: Settings) -> None:
    config = QueueSettings(max_attempts=2, kind_timeout_seconds={"fetch": 0.2}, retry_delay_seconds=5)

    async def scenario(queue: StoreQueue, clock: FixedClock) -> tuple[list[BuriedItem], list[BuriedItem], Any]:
        reported: list[BuriedItem] = []

        def on_buried(tx: Transaction, item: BuriedItem) -> None:
            reported.append(item)

        async def hangs(lease: Lease) -> None:
            await asyncio.Event().wait()

        queue.on_buried("fetch", on_buried)
        await queue.enqueue("fetch", {"job": "j1"}, project="p")
        worker = Worker(queue, {"fetch": hangs}, config)
        assert await worker.run_once() == 1  # timed out: back in the queue for a retry
        assert await queue.counts() == {"fetch": 1} and reported == []
        clock.at += timedelta(seconds=5)
        assert await worker.run_once() == 1  # timed out again: the last attempt
        return reported, await queue.buried(), await queue.counts()

    reported, buried, counts = run(settings, scenario)
    assert counts == {}
    [item] = buried
    assert (item.kind, item.project, item.attempts, item.reason) == ("fetch", "p", 2, "timed out after 0.2s")
    assert item.payload == {"job": "j1"} and item.buried_at == START + timedelta(seconds=5)
    assert [(r.id, r.reason) for r in reported] == [(item.id, item.reason)]


def test_an_item_handed_out_too_often_without_finishing_is_buried_unrun(settings: Settings) -> None:
    """A poison item that kills or freezes the process each time never reaches the worker's failure handling;
    the count of deliveries catches it."""
    config = QueueSettings(max_attempts=3, visibility_seconds=60)

    async def scenario(queue: StoreQueue, clock: FixedClock) -> tuple[list[BuriedItem], list[str]]:
        ran: list[str] = []

        async def handler(lease: Lease) -> None:
            ran.append("ran")

        await queue.enqueue("campaign.batch", {"run": "r"}, project="p")
        for _ in range(3):  # three deliveries, each lost with its process
            assert len(await queue.lease(["campaign.batch"], 1, visibility=60)) == 1
            clock.at += timedelta(seconds=61)
        await Worker(queue, {"campaign.batch": handler}, config).run_once()
        return await queue.buried(), ran

    [item], ran = run(settings, scenario)
    assert ran == [] and item.attempts == 4
    assert item.reason == "handed out 3 times without finishing (the process stopped each time)"


class _HeldFile(BaseHTTPRequestHandler):
    """Answers a CSV header, then holds the connection until the test releases it (a slow import source)."""

    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.end_headers()
        self.wfile.write(b"Id,ChannelType,Address\n")
        self.wfile.flush()
        _HeldFile.release.wait(120)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def held_file() -> Iterator[str]:
    _HeldFile.release = threading.Event()
    with serving(_HeldFile) as url:
        try:
            yield f"{url}/slow.csv"
        finally:
            _HeldFile.release.set()


def test_slow_imports_in_one_project_do_not_hold_up_another_projects_import_and_campaign(
    settings: Settings, held_file: str, relay: tuple[Relay, int]
) -> None:
    sink, port = relay
    tuned = settings.model_copy(
        update={
            "outbound": OutboundSettings(allow_networks=["127.0.0.0/8"]),
            "queue": QueueSettings(concurrency=4, project_concurrency=2, poll_seconds=0.1),
            "campaigns": CampaignSettings(poll_seconds=0.1),
            "delivery": DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=port, security="none")),
        }
    )
    with RunningServer(tuned) as server:
        client = server.client()
        slow = client.create_app(CreateApplicationRequest={"Name": "slow"})["ApplicationResponse"]["Id"]
        other = email_project(client, "other", 0)
        stuck = [import_job(client, slow, held_file)["Id"] for _ in range(4)]  # more than every worker slot

        folder = folder_of(server.settings, other)
        folder.mkdir(parents=True)
        (folder / "people.csv").write_text("Id,ChannelType,Address\nx1,EMAIL,x1@example.com\nx2,EMAIL,x2@example.com\n")
        started = time.monotonic()
        job = import_job(client, other, str(folder / "people.csv"), DefineSegment=True, SegmentName="people")
        done = wait_job(client, other, job["Id"], timeout=WAIT)
        immediate_campaign(client, other, done["Definition"]["SegmentId"])
        while len(sink.received) < 2:
            assert time.monotonic() - started < WAIT, "the other project's campaign waited for the slow imports"
            time.sleep(0.05)
        still = [client.get_import_job(ApplicationId=slow, JobId=j)["ImportJobResponse"]["JobStatus"] for j in stuck]
        _HeldFile.release.set()
    assert done["JobStatus"] == "COMPLETED" and done["TotalProcessed"] == 2
    assert sorted(sink.recipients()) == ["x1@example.com", "x2@example.com"]
    # All of that happened while the slow project's imports were held (two downloading, its share of the slots).
    assert not {"COMPLETED", "FAILED"} & set(still)


def test_a_download_that_never_ends_fails_its_job_once_the_queue_gives_up(settings: Settings, held_file: str) -> None:
    tuned = settings.model_copy(
        update={
            "outbound": OutboundSettings(allow_networks=["127.0.0.0/8"]),
            "jobs": JobSettings(transfer_timeout_seconds=0.5),
            "queue": QueueSettings(max_attempts=2, retry_delay_seconds=0.1, poll_seconds=0.1),
        }
    )
    with RunningServer(tuned) as server:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "p"})["ApplicationResponse"]["Id"]
        done = wait_job(client, app_id, import_job(client, app_id, held_file)["Id"], timeout=WAIT)
    assert (done["JobStatus"], done["FailedPieces"]) == ("FAILED", 1)
    assert done["Failures"] == [
        f"{held_file}: gave up after 2 attempts: OutboundTimeout: 127.0.0.1 did not finish answering within 0.5s"
    ]
