"""Fault injection on the real fleet (supervisord + worker processes + moto's server).

Every test sends recorded jobs (each run appends `<id> start|done` to a file) and ends by
checking that nothing was lost: every message is either done exactly once or in the DLQ, and
the work queue is empty.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer
from worker import contract
from worker.handlers import sqs_attributes

from tests.conftest import REGION, free_port
from tests.integration.fleet import PROD, PROD_PROCESSES, Fleet, queue_depth, send_jobs
from tests.sqs_helpers import drain
from tests.unit.worker.harness import FakeAgent
from tests.unit.worker.recording_handlers import RECORDED_COMMAND, runs

MakeFleet = Callable[..., Fleet]


def dead_letters(sqs: Any, dlq_url: str) -> set[str]:
    """Source ids of the messages in the DLQ (drained): the original id (SQS redrive keeps it)
    or the worker's attribute."""
    ids: set[str] = set()
    for message in drain(sqs, dlq_url):
        source = message.get("MessageAttributes", {}).get("worker_source_message_id")
        ids.add(source["StringValue"] if source else message["MessageId"])
    return ids


def assert_nothing_lost(
    sqs: Any, pair: Any, record: Path, done: list[str], dead: list[str] | None = None
) -> None:
    """`done` ran to completion exactly once, `dead` are in the DLQ, the queue is empty."""
    completions = {i: r["done"] for i, r in runs(record).items() if r["done"]}
    assert completions == dict.fromkeys(done, 1)
    assert dead_letters(sqs, pair.dlq_url) == set(dead or [])
    assert queue_depth(sqs, pair.url) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_kill_9_of_a_worker_mid_job_runs_the_job_again_once(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    record = tmp_path / "record"
    [long_job] = send_jobs(sqs_client, pair.url, record, duration_seconds=3)
    fleet = make_fleet(QUEUE_URL=pair.url, DEAD_LETTER_QUEUE_URL=pair.dlq_url, WORKER_PROCESSES=1)
    fleet.wait_for(lambda: long_job in runs(record))
    executor_pid = int(record.read_text().split()[2])
    [worker_pid] = fleet.worker_pids()
    os.kill(worker_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    others = send_jobs(sqs_client, pair.url, record, 3, duration_seconds=0.1)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 4)
    # The message came back after the visibility timeout (2 s), not after the job's 3 s.
    assert time.monotonic() - killed_at < 10
    assert not _alive(executor_pid)  # the job died with its worker: no orphan finishing it
    assert fleet.stop() == 0
    assert runs(record)[long_job] == {"start": 2, "done": 1}
    assert len(fleet.worker_pids()) == 2  # supervisord restarted the killed process
    assert_nothing_lost(sqs_client, pair, record, [long_job, *others])


def test_sigterm_lets_running_jobs_finish_within_the_grace(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    record = tmp_path / "record"
    ids = send_jobs(sqs_client, pair.url, record, 2, duration_seconds=1.5)
    fleet = make_fleet(QUEUE_URL=pair.url, WORKER_PROCESSES=2, WORKER_STOP_GRACE_SECONDS=5)
    fleet.wait_for(lambda: len(runs(record)) == 2)
    assert fleet.stop() == 0
    assert [j["outcome"] for j in fleet.jobs()] == ["done", "done"]
    assert_nothing_lost(sqs_client, pair, record, ids)


def test_sigterm_hands_back_jobs_that_outlast_the_grace(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair(visibility_timeout=60)
    record = tmp_path / "record"
    ids = send_jobs(sqs_client, pair.url, record, 2, duration_seconds=60)
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        WORKER_PROCESSES=2,
        WORKER_STOP_GRACE_SECONDS=0.5,
        VISIBILITY_TIMEOUT_SECONDS=60,
    )
    fleet.wait_for(lambda: len(runs(record)) == 2)
    stopped_at = time.monotonic()
    assert fleet.stop() == 0
    assert time.monotonic() - stopped_at < 8
    assert [j["outcome"] for j in fleet.jobs()] == ["handed_back", "handed_back"]
    assert all(r["done"] == 0 for r in runs(record).values())
    # Not deleted, and visible again at once (not after the 60-s visibility).
    got = sqs_client.receive_message(QueueUrl=pair.url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    assert sorted(m["MessageId"] for m in got["Messages"]) == sorted(ids)


def test_a_poison_message_ends_in_the_dlq_and_the_rest_is_done(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair(max_receive_count=3)
    record = tmp_path / "record"
    [poison] = send_jobs(sqs_client, pair.url, record, fail=True)
    good = send_jobs(sqs_client, pair.url, record, 4, duration_seconds=0.1)
    fleet = make_fleet(QUEUE_URL=pair.url, DEAD_LETTER_QUEUE_URL=pair.dlq_url, WORKER_PROCESSES=2)
    fleet.wait_for(lambda: len(fleet.jobs("retry")) == 3 and len(fleet.jobs("done")) == 4)
    fleet.wait_for(lambda: queue_depth(sqs_client, pair.url) == 0)  # redriven on receive 4
    assert fleet.stop() == 0
    assert runs(record)[poison] == {"start": 3, "done": 0}
    assert_nothing_lost(sqs_client, pair, record, good, [poison])


def test_a_malformed_body_is_dead_lettered_and_the_loop_survives(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    bad = sqs_client.send_message(QueueUrl=pair.url, MessageBody="{not json")["MessageId"]
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=1,
        WORKER_HANDLER="worker.examples:sleep_job",
    )
    fleet.wait_for(lambda: len(fleet.jobs("dead_letter")) == 1)
    good = sqs_client.send_message(QueueUrl=pair.url, MessageBody='{"duration_seconds": 0.1}')
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 1)
    assert fleet.stop() == 0
    assert len(fleet.worker_pids()) == 1  # the same process went on
    assert {j["message_id"]: j["outcome"] for j in fleet.jobs()} == {
        bad: "dead_letter",
        good["MessageId"]: "done",
    }
    assert dead_letters(sqs_client, pair.dlq_url) == {bad}
    assert queue_depth(sqs_client, pair.url) == 0


def test_a_hung_handler_is_stopped_at_the_timeout_and_retried(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    record = tmp_path / "record"
    [hung] = send_jobs(sqs_client, pair.url, record, hang_on_first=True)
    fleet = make_fleet(QUEUE_URL=pair.url, WORKER_PROCESSES=1, JOB_TIMEOUT_SECONDS=1)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 1)
    assert fleet.stop() == 0
    assert [(j["outcome"], j["receive_count"]) for j in fleet.jobs()] == [
        ("timeout", 1),
        ("done", 2),
    ]
    assert runs(record)[hung] == {"start": 2, "done": 1}
    assert_nothing_lost(sqs_client, pair, record, [hung])


def test_a_leaking_handler_is_recycled_by_the_memory_limit(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    record = tmp_path / "record"
    ids = send_jobs(sqs_client, pair.url, record, 6, leak_mib=64)
    fleet = make_fleet(QUEUE_URL=pair.url, WORKER_PROCESSES=1, MAX_MEMORY_MIB_PER_PROCESS=200)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 6)
    assert fleet.stop() == 0
    recycles = [e for e in fleet.events("worker_stopped") if e["reason"] == "recycle_memory"]
    assert len(recycles) >= 2  # 6 x 64 MiB never fits under 200 MiB in one process
    assert all(e["jobs"] <= 3 for e in recycles)
    assert_nothing_lost(sqs_client, pair, record, ids)


def test_the_sqs_endpoint_going_away_is_survived(make_fleet: MakeFleet, tmp_path: Path) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    url = sqs.create_queue(QueueName="outage", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    record = tmp_path / "record"
    before = send_jobs(sqs, url, record, 3, duration_seconds=0.1)
    fleet = make_fleet(endpoint=endpoint, QUEUE_URL=url, WORKER_PROCESSES=2)
    try:
        fleet.wait_for(lambda: len(fleet.jobs("done")) == 3)
        server.stop()  # SQS goes away ...
        fleet.wait_for(lambda: len(fleet.events("receive_error")) >= 4, timeout=30)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()  # ... and comes back on the same address (moto keeps its state)
        after = send_jobs(sqs, url, record, 3, duration_seconds=0.1)
        fleet.wait_for(lambda: len(fleet.jobs("done")) == 6, timeout=60)
        assert fleet.stop() == 0
        assert runs(record) == {i: {"start": 1, "done": 1} for i in before + after}
        assert queue_depth(sqs, url) == 0
    finally:
        server.stop()
    errors = fleet.events("receive_error")
    assert {e["level"] for e in errors} == {"warning"}
    for pid in {e["pid"] for e in errors}:  # each process backs off instead of spinning
        backoffs = [e["backoff_seconds"] for e in errors if e["pid"] == pid]
        assert backoffs == [1.0, 2.0, 4.0, 8.0, 16.0][: len(backoffs)]
    assert len(fleet.worker_pids()) == 2  # no process died over it


def test_kill_9_of_a_command_worker_mid_job_stops_its_job_before_it_runs_again(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    record = tmp_path / "record"
    say = f'echo "$WORKER_MESSAGE_ID {{}} $$" >> {record}'
    command = f"{say.format('start')}; sleep 4; {say.format('done')}"  # runs(): start/done lines
    job = sqs_client.send_message(QueueUrl=pair.url, MessageBody="{}")["MessageId"]
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=1,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=command,
    )
    fleet.wait_for(lambda: job in runs(record))
    [worker_pid] = fleet.worker_pids()
    os.kill(worker_pid, signal.SIGKILL)  # the job's own process group survives its worker...
    killed_at = time.monotonic()
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 1)
    time.sleep(max(0.0, killed_at + 5 - time.monotonic()))  # past the first run's own end
    assert fleet.stop() == 0
    # ... until the restarted process kills it: the message never ran twice at once.
    assert len(fleet.events(contract.JOB_ORPHAN_KILLED_EVENT)) == 1
    assert runs(record)[job] == {"start": 2, "done": 1}
    assert queue_depth(sqs_client, pair.url) == 0


# -- Issue 9: a stopped job stops, no retry is wasted, nothing is lost (prod shape: 8 processes)


def assert_once_never_concurrent(record: Path, ids: list[str]) -> None:
    """Every message completed exactly once and no two runs of one message overlapped (the
    recorded job's run lock: `overlap` lines), nor did any child outlive its job."""
    got = runs(record)
    assert {i: got[i]["done"] for i in ids} == dict.fromkeys(ids, 1)
    assert [i for i, r in got.items() if r.get("overlap") or r.get("child_done")] == []


class BreakableSqs:
    """moto's server on a port of its own, to stop (connection refused) and start again; moto
    keeps its queues and messages across (its backend lives in this process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None
        self.start()
        self.client = boto3.client("sqs", region_name=REGION, endpoint_url=self.endpoint)

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def queue(self, visibility: int) -> str:
        name = f"faults-{free_port()}"
        attributes = {"VisibilityTimeout": str(visibility)}
        return str(self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def test_a_callables_child_is_stopped_with_its_timed_out_job(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """8 processes; each job shells out to a 4-s child on its first receive, the job timeout is
    1.5 s (scaled down from 900 s): the child must die with its job, never finish later."""
    pair = make_queue_pair(max_receive_count=5)
    record = tmp_path / "record"
    ids = send_jobs(sqs_client, pair.url, record, PROD_PROCESSES, child_seconds=4)
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=PROD_PROCESSES,
        JOB_TIMEOUT_SECONDS=1.5,
    )
    fleet.wait_for(lambda: len(fleet.jobs("done")) == PROD_PROCESSES, timeout=60)
    time.sleep(max(0.0, 4.5 - min(j["duration_seconds"] for j in fleet.jobs("done"))))
    assert fleet.stop() == 0
    assert len(fleet.jobs("timeout")) == PROD_PROCESSES
    assert_once_never_concurrent(record, ids)
    assert_nothing_lost(sqs_client, pair, record, ids)


def test_command_jobs_die_with_their_workers_killed_with_9(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """8 command jobs of 4 s; every worker is killed with -9 mid-job. Each command must die
    with its worker (parent-death signal), not only when supervisord's replacement kills the
    orphan: no replacement logs `job_orphan_killed`. The visibility is 2 s (scaled down from
    120 s), so each message is delivered again long before the first run would have ended: the
    run lock shows whether a first run was still alive."""
    pair = make_queue_pair(max_receive_count=5)
    record = tmp_path / "record"
    ids = send_jobs(sqs_client, pair.url, record, PROD_PROCESSES, duration_seconds=4)
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=PROD_PROCESSES,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=RECORDED_COMMAND,
    )
    fleet.wait_for(lambda: len(runs(record)) == PROD_PROCESSES, timeout=60)
    jobs = [int(line.split()[2]) for line in record.read_text().splitlines()]
    for pid in fleet.worker_pids():
        os.kill(pid, signal.SIGKILL)
    fleet.wait_for(lambda: not any(_alive(pid) for pid in jobs), timeout=10)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == PROD_PROCESSES, timeout=60)
    assert fleet.stop() == 0
    # The kernel killed them with their workers; no successor found one left running.
    assert fleet.events(contract.JOB_ORPHAN_KILLED_EVENT) == []
    assert all(r["start"] >= 2 for r in runs(record).values())  # every first run was killed
    assert_once_never_concurrent(record, ids)
    assert_nothing_lost(sqs_client, pair, record, ids)


def test_a_lost_lease_stops_the_job_before_sqs_delivers_it_again(
    make_fleet: MakeFleet, tmp_path: Path
) -> None:
    """8 jobs of 8 s; SQS refuses connections for 6 s while they run, so no extension lands.
    Visibility 4 s, heartbeat 1 s (scaled down from 120 s / 30 s)."""
    sqs = BreakableSqs()
    try:
        url = sqs.queue(visibility=4)
        record = tmp_path / "record"
        ids = send_jobs(sqs.client, url, record, PROD_PROCESSES, duration_seconds=8)
        fleet = make_fleet(
            endpoint=sqs.endpoint,
            QUEUE_URL=url,
            WORKER_PROCESSES=PROD_PROCESSES,
            VISIBILITY_TIMEOUT_SECONDS=4,
            HEARTBEAT_INTERVAL_SECONDS=1,
        )
        fleet.wait_for(lambda: len(runs(record)) == PROD_PROCESSES, timeout=60)
        sqs.stop()
        fleet.wait_for(lambda: len(fleet.jobs("lease_lost")) == PROD_PROCESSES, timeout=10)
        time.sleep(6 - 4)
        sqs.start()
        fleet.wait_for(lambda: len(fleet.jobs("done")) == PROD_PROCESSES, timeout=90)
        assert fleet.stop() == 0
        assert_once_never_concurrent(record, ids)
        assert queue_depth(sqs.client, url) == 0
    finally:
        sqs.stop()
    assert {j["level"] for j in fleet.jobs("lease_lost")} == {"warning"}


# The 45-s outage at the prod visibility (120 s) and heartbeat (30 s), all three a third.
OUTAGE_VISIBILITY, OUTAGE_HEARTBEAT, OUTAGE_SECONDS = 120 // 3, 30 // 3, 45 / 3


def test_a_45_s_sqs_outage_reruns_nothing_sqs_did_not_redeliver(
    make_fleet: MakeFleet, tmp_path: Path
) -> None:
    """30 jobs of 1 s on 8 processes; SQS refuses connections while jobs run. No message's
    visibility runs out, so SQS redelivers none: every delete that failed is retried and no job
    runs twice.

    Scaled to a third, to keep the test near half a minute: the prod visibility (120 s) and
    heartbeat (30 s) and the 45-s outage become 40 s, 10 s and 15 s. The outage keeps its
    measure against both (1.5 heartbeats, 3/8 of the visibility). The worker's own backoffs
    are not scaled (receives retried after 1, 2, 4, 8, 16 s): a process whose receive at 15 s
    still fails retries its deletes about 31 s after the outage began, past half of the 40-s
    visibility, once the heartbeat has extended the messages (it does at 20 s or less left):
    the hold is tried at least as hard as at the prod timings, where the deletes come back
    about 61 s in, about when the first extensions fall due."""
    sqs = BreakableSqs()
    try:
        url = sqs.queue(visibility=OUTAGE_VISIBILITY)
        record = tmp_path / "record"
        ids = send_jobs(sqs.client, url, record, 30, duration_seconds=1)
        fleet = make_fleet(
            endpoint=sqs.endpoint,
            QUEUE_URL=url,
            WORKER_PROCESSES=PROD_PROCESSES,
            VISIBILITY_TIMEOUT_SECONDS=OUTAGE_VISIBILITY,
            HEARTBEAT_INTERVAL_SECONDS=OUTAGE_HEARTBEAT,
        )
        fleet.wait_for(lambda: len(fleet.jobs("done")) >= 8, timeout=60)
        sqs.stop()
        time.sleep(OUTAGE_SECONDS)
        sqs.start()
        fleet.wait_for(lambda: queue_depth(sqs.client, url) == 0, timeout=120)
        assert fleet.stop() == 0
        assert_once_never_concurrent(record, ids)
        assert queue_depth(sqs.client, url) == 0
    finally:
        sqs.stop()
    assert fleet.events("delete_error")  # deletes did fail during the outage, and were retried
    assert len(fleet.jobs("done")) == 30


def test_a_stalled_ecs_agent_stalls_no_job_and_still_protects_the_task(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """Every call to the (fake) ECS agent takes 5 s; 16 jobs of 0.5 s on 8 processes."""
    agent = FakeAgent(stall={True: 5.0, False: 5.0})
    pair = make_queue_pair()
    record = tmp_path / "record"
    try:
        fleet = make_fleet(
            QUEUE_URL=pair.url,
            WORKER_PROCESSES=PROD_PROCESSES,
            ECS_AGENT_URI=agent.uri,
        )
        fleet.wait_for(lambda: len(fleet.worker_pids()) == PROD_PROCESSES, timeout=60)
        started = time.monotonic()
        ids = send_jobs(sqs_client, pair.url, record, 16, duration_seconds=0.5)
        fleet.wait_for(lambda: len(fleet.jobs("done")) == 16, timeout=60)
        took = time.monotonic() - started
        fleet.wait_for(lambda: agent.enabled()[-1:] == [False], timeout=30)
        assert fleet.stop() == 0
    finally:
        agent.server.shutdown()
    # Serialised behind a stalled agent this took 8 x the stall; now about 2 x 0.5 s of work.
    assert took < 5, took
    assert agent.enabled()[0] is True  # the protection landed despite the stall
    assert fleet.events("task_protection")
    assert not [e for e in fleet.events("task_protection") if e["level"] != "info"]
    assert_once_never_concurrent(record, ids)


def test_recycles_never_spend_a_receive_of_a_message_that_did_not_run(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """60 short jobs at the prod receive count (5) on 8 processes recycled by memory: each job
    keeps 30 MiB, the limit is 200 MiB (prod 256 MiB; jobs scaled up so that a process recycles
    every few jobs). A hand-back of a message that never ran would spend one of its 5 receives;
    none may reach the DLQ without failing, none may even be received twice."""
    pair = make_queue_pair(max_receive_count=5)
    record = tmp_path / "record"
    ids = send_jobs(sqs_client, pair.url, record, 60, duration_seconds=0.02, leak_mib=30)
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=PROD_PROCESSES,
        MAX_JOBS_PER_PROCESS=200,
        MAX_MEMORY_MIB_PER_PROCESS=200,
    )
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 60, timeout=120)
    assert fleet.stop() == 0
    recycles = [e for e in fleet.events("worker_stopped") if e["reason"] == "recycle_memory"]
    assert len(recycles) >= PROD_PROCESSES
    assert [j for j in fleet.jobs() if j["outcome"] != "done"] == []
    assert max(j["receive_count"] for j in fleet.jobs()) == 1  # no receive spent before a run
    assert_once_never_concurrent(record, ids)
    assert_nothing_lost(sqs_client, pair, record, ids)


# -- Issue 17: no message takes a worker down (prod shape: 8 processes) ----------------------

# SQS's maximum message size (body + attributes), before its 1-MiB raise: 256 KiB.
SQS_MAX_MESSAGE_BYTES = 256 * 1024


def shell_recorded(record: Path) -> str:
    """A recorded command in the shell alone (no Python to start, so 200 jobs take seconds):
    it appends `start`, `attributes_<size of its attributes file>` and `done`, as `runs()`
    reads them."""
    say = f'echo "$WORKER_MESSAGE_ID {{}} $$" >> {record}'
    size = 'attributes_$(wc -c < "$WORKER_MESSAGE_ATTRIBUTES_FILE")'
    return f"{say.format('start')}; {say.format(size)}; {say.format('done')}"


def test_a_message_with_attributes_at_sqs_maximum_never_takes_its_worker_down(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """One command-mode message whose attribute fills SQS's 256 KiB, among 200 short jobs, at
    the prod settings. Before: its attributes went in one environment variable above Linux's
    128 KiB, Popen raised E2BIG, the worker died on every receive and handed the rest of its
    batch back (good messages spent receives, some reached the DLQ without running). Now they
    reach the command in WORKER_MESSAGE_ATTRIBUTES_FILE: no worker exits, every message is done
    once on its first receive, the big one included (its job read the whole attributes file)."""
    pair = make_queue_pair(max_receive_count=5, visibility_timeout=120)
    record = tmp_path / "record"
    chars = SQS_MAX_MESSAGE_BYTES - 1024  # the body and the attribute's name and type: < 1 KiB
    attributes = {"payload": {"DataType": "String", "StringValue": "x" * chars}}
    short = send_jobs(sqs_client, pair.url, record, 100, duration_seconds=0)
    big = sqs_client.send_message(
        QueueUrl=pair.url, MessageBody="{}", MessageAttributes=attributes
    )["MessageId"]
    short += send_jobs(sqs_client, pair.url, record, 100, duration_seconds=0)
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=shell_recorded(record),
        **PROD,
    )
    fleet.wait_for(lambda: len(fleet.jobs()) >= 201, timeout=40)
    assert fleet.stop(timeout=30) == 0
    assert len(fleet.worker_pids()) == PROD_PROCESSES  # none died, none was restarted
    assert {(j["outcome"], j["receive_count"]) for j in fleet.jobs()} == {("done", 1)}
    assert {j["message_id"] for j in fleet.jobs()} == {big, *short}
    size = len(json.dumps(sqs_attributes(attributes)))
    assert runs(record)[big] == {"start": 1, f"attributes_{size}": 1, "done": 1}
    assert all(runs(record)[i] == {"start": 1, "attributes_2": 1, "done": 1} for i in short)
    assert_nothing_lost(sqs_client, pair, record, [big, *short])


def test_commands_that_cannot_start_fail_alone_and_no_worker_goes_down(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """A real start failure at the prod settings: the commands' WORKER_WORKDIR goes away (a
    volume unmounted) while 40 messages arrive, so Popen fails for each (its child cannot
    chdir: FileNotFoundError). Each is that message's `retry` with the reason, after the prod
    backoff (10 s); no worker exits; once the directory is back every message is done on its
    second receive, exactly once, none in the DLQ. Before, each failure left the loop and
    ended its worker, handing the rest of its batch back."""
    pair = make_queue_pair(max_receive_count=5, visibility_timeout=120)
    record = tmp_path / "record"
    workdir = tmp_path / "app"
    workdir.mkdir()
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=shell_recorded(record),
        WORKER_WORKDIR=workdir,
        **PROD,
    )
    fleet.wait_for(lambda: len(fleet.events("worker_started")) == PROD_PROCESSES)
    workdir.rmdir()
    ids = send_jobs(sqs_client, pair.url, record, 40, duration_seconds=0)
    fleet.wait_for(lambda: len(fleet.jobs("retry")) == 40, timeout=20)
    workdir.mkdir()
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 40, timeout=30)
    assert fleet.stop(timeout=30) == 0
    assert len(fleet.worker_pids()) == PROD_PROCESSES
    failed = fleet.jobs("retry")
    assert {(j["receive_count"], j["error"].split(":")[0]) for j in failed} == {
        (1, "could not start the command")
    }
    assert all("[Errno 2]" in j["error"] for j in failed)
    assert {j["receive_count"] for j in fleet.jobs("done")} == {2}
    assert not runs(record).keys() - set(ids)
    assert_nothing_lost(sqs_client, pair, record, ids)


def test_jobs_that_print_10_mb_each_log_at_most_their_limit_and_are_done(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """8 command jobs at once, each printing 10 MiB, at the prod settings and the default
    output limit (1 MiB, 1,000 lines a job): each logs at most 1 MiB, then one
    `job_output_truncated` line counting the rest, and is done in seconds (its pipes drained,
    never blocked). The fleet's whole log stays under 8 x 1.5 MiB. Before: 80 MiB of
    job_output, about 1,300 lines a job.

    Read from the log's raw text, not only its parsed lines: with 8 processes flooding at once,
    supervisord relays each process's output in chunks, and a chunk that ends inside a long
    line lets another process's output land in it, so some long lines no longer parse (a
    problem of the relay, older than this limit). The short summary and job lines stay whole."""
    pair = make_queue_pair(max_receive_count=5, visibility_timeout=120)
    flood = f"yes {'x' * 63} | head -c {10 * 2**20}"
    ids = [
        sqs_client.send_message(QueueUrl=pair.url, MessageBody="{}")["MessageId"]
        for _ in range(PROD_PROCESSES)
    ]
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=flood,
        **PROD,
    )
    # A `job` line can land inside another process's long line (above), so jobs are read from
    # the raw text too: a parsed-lines count missed one and waited out its timeout.
    job_line = re.compile(
        r'"event": "job", "process": "[^"]+", "pid": \d+, "message_id": "([^"]+)", '
        r'"queue": "[^"]+", "receive_count": \d+, "duration_seconds": ([\d.]+), '
        r'"outcome": "([a-z_]+)"'
    )

    def jobs() -> list[tuple[str, str, str]]:
        return list(job_line.findall(fleet.log_path.read_text(errors="replace")))

    fleet.wait_for(lambda: len(jobs()) == PROD_PROCESSES, timeout=40)
    assert fleet.stop(timeout=30) == 0
    assert {(message_id, outcome) for message_id, _, outcome in jobs()} == {
        (i, "done") for i in ids
    }
    assert len(jobs()) == PROD_PROCESSES  # each ran once
    assert max(float(seconds) for _, seconds, _ in jobs()) < 10
    raw = fleet.log_path.read_text(errors="replace")
    summary = re.compile(
        r'\{"time": "[^"]+", "level": "warning", "event": "job_output_truncated", '
        r'"process": "[^"]+", "pid": \d+, "message_id": "([^"]+)", "dropped_bytes": (\d+), '
        r'"dropped_events": (\d+), "max_bytes": 1048576, "max_events": 1000\}'
    )
    found = summary.findall(raw)
    assert sorted(m[0] for m in found) == sorted(ids)  # one summary a job
    assert all(int(m[1]) >= 9 * 2**20 for m in found)  # at least 9 of its 10 MiB dropped
    assert len(raw) < PROD_PROCESSES * 1.5 * 2**20
    assert queue_depth(sqs_client, pair.url) == 0
