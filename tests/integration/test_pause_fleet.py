"""`queue-worker pause` and `continue` next to the real fleet at the production shape.

A supervisord fleet of PROD_PROCESSES (8) worker processes against moto's server, the way
`retry`'s fleet test runs (tests/integration/test_ops_contract.py): each process runs one slow
job when `pause --queue NAME` tags the queue, 16 short jobs wait behind them. The test shortens
PAUSE_CHECK_SECONDS from 30 s to 1 s (a setting of the worker, docs/contract.md), so that
"within the poll interval" is seconds here. The running jobs finish and are deleted; no process
takes one of the waiting jobs while the tag is there; after `continue` they all run. Every
message runs exactly once and the queue ends empty. (--queue sets the flag only: the scalable
target and the service's count, which need --env and its stacks, are tests/unit/ops/.)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from worker.consumer import CONSUMER_PAUSED_EVENT, CONSUMER_RESUMED_EVENT
from worker.contract import CONTINUED_EVENT, PAUSED_EVENT, PAUSED_TAG

from scripts.__main__ import main
from tests.integration.fleet import PROD_PROCESSES, send_jobs
from tests.sqs_helpers import queue_counts
from tests.unit.worker.framework_consumer import READY_EVENT
from tests.unit.worker.recording_handlers import runs, started

REGION = "ap-northeast-1"
CHECK_SECONDS = 1.0  # PAUSE_CHECK_SECONDS of this test (30 s by default)
SLOW_SECONDS = 4.0  # each process's running job when the flag is set
CONSUMER_CHECK_SECONDS = 0.5  # PAUSE_CHECK_SECONDS of the consumer-mode test
CONSUMER_JOB_SECONDS = 3.0  # each consumer's running job when the flag is set


def pause_while_each_runs_one(
    fleet: Any, sqs: Any, url: str, record: Path, endpoint: str, job_seconds: float
) -> tuple[set[str], set[str], list[str]]:
    """Each process runs one job of `job_seconds`, 16 short ones wait behind them: then
    `queue-worker pause --queue` (the command's own code). Returns the running jobs' ids, the
    waiting ones' and the command's queue arguments (for `continue`)."""
    slow = set(send_jobs(sqs, url, record, PROD_PROCESSES, duration_seconds=job_seconds))
    fleet.wait_for(lambda: set(started(record)) == slow)  # every process runs one
    waiting = set(send_jobs(sqs, url, record, 16, duration_seconds=0.05))
    queue = url.rsplit("/", 1)[-1]
    where = ["--queue", queue, "--region", REGION, "--endpoint-url", endpoint]
    assert main(["pause", *where]) == 0
    return slow, waiting, where


def test_pause_lets_running_jobs_finish_takes_nothing_new_and_continue_runs_the_rest(
    make_fleet: Any, make_queue_pair: Any, sqs_client: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    pair = make_queue_pair(max_receive_count=3)
    record = tmp_path / "record"
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=PROD_PROCESSES,
        PAUSE_CHECK_SECONDS=CHECK_SECONDS,
        PREFETCH_SECONDS=1,  # one message a receive: a process holds only what it runs
    )
    fleet.wait_for(lambda: len(fleet.worker_pids()) == PROD_PROCESSES)
    slow, waiting, where = pause_while_each_runs_one(
        fleet, sqs_client, pair.url, record, moto_endpoint, SLOW_SECONDS
    )
    paused_at = time.monotonic()

    # Each process sees the tag before its next receive: all 8 within a slow job + an interval.
    fleet.wait_for(lambda: len(fleet.events(PAUSED_EVENT)) == PROD_PROCESSES, timeout=30)
    assert time.monotonic() - paused_at < SLOW_SECONDS + 2 * CHECK_SECONDS + 5
    assert {e["pid"] for e in fleet.events(PAUSED_EVENT)} == fleet.worker_pids()
    fleet.wait_for(lambda: queue_counts(sqs_client, pair.url) == (16, 0))  # the 8 deleted
    assert {job["message_id"] for job in fleet.jobs("done")} == slow
    time.sleep(3 * CHECK_SECONDS)  # three more reads of the tag by every process
    assert set(started(record)) == slow  # nothing new was taken while paused
    assert queue_counts(sqs_client, pair.url) == (16, 0)
    tags = sqs_client.list_queue_tags(QueueUrl=pair.url).get("Tags", {})
    assert tags[PAUSED_TAG].startswith("since=")

    assert main(["continue", *where, "--json"]) == 0
    fleet.wait_for(lambda: len(fleet.jobs("done")) == PROD_PROCESSES + 16)
    fleet.wait_for(lambda: queue_counts(sqs_client, pair.url) == (0, 0))
    assert len(fleet.events(CONTINUED_EVENT)) == PROD_PROCESSES
    assert fleet.stop() == 0
    order = started(record)
    assert set(order[: len(slow)]) == slow and set(order[len(slow) :]) == waiting
    assert runs(record) == {m: {"start": 1, "done": 1} for m in slow | waiting}  # once each
    assert queue_counts(sqs_client, pair.dlq_url) == (0, 0)
    assert not [e for e in fleet.jobs() if e["outcome"] != "done"], json.dumps(fleet.jobs())


def test_pause_in_consumer_mode_ends_each_consumer_after_its_job_and_continue_restarts_them(
    make_fleet: Any, make_queue_pair: Any, sqs_client: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """The same in `consumer` handler mode: PROD_PROCESSES (8) watchers under supervisord, each
    running tests/unit/worker/framework_consumer.py (a stand-in for `php artisan queue:work`:
    one message at a time, ends its job and exits 0 on SIGTERM). PAUSE_CHECK_SECONDS is
    shortened from 30 s to 0.5 s here. `pause --queue` (the command's own code) tags the queue;
    the fleet's watch, the task's one reader of the tag, leaves its file in the run dir within
    the check period; within a second of the watchers' sampling every watcher sends its
    consumer SIGTERM, the 8 running jobs end and are deleted, no consumer takes a waiting job
    and the watchers stay up without consumers; after `continue` the watch removes the file and
    fresh consumers run the rest, each message exactly once."""
    pair = make_queue_pair(max_receive_count=3, visibility_timeout=30)
    record = tmp_path / "record"
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        WORKER_PROCESSES=PROD_PROCESSES,
        WORKER_HANDLER_MODE="consumer",
        WORKER_HANDLER=f"{sys.executable} -m tests.unit.worker.framework_consumer",
        PAUSE_CHECK_SECONDS=CONSUMER_CHECK_SECONDS,
    )
    fleet.wait_for(lambda: len(fleet.events(READY_EVENT)) == PROD_PROCESSES)  # all polling
    slow, waiting, where = pause_while_each_runs_one(
        fleet, sqs_client, pair.url, record, moto_endpoint, CONSUMER_JOB_SECONDS
    )
    paused_at = time.monotonic()
    fleet.wait_for(lambda: len(fleet.events(CONSUMER_PAUSED_EVENT)) == PROD_PROCESSES)
    assert (
        time.monotonic() - paused_at < CONSUMER_JOB_SECONDS + CONSUMER_CHECK_SECONDS + 5
    )  # a job, a check, slack
    assert {e["exit_code"] for e in fleet.events(CONSUMER_PAUSED_EVENT)} == {0}
    [read] = fleet.events(PAUSED_EVENT)  # one reader of the tag a task: the fleet's watch
    assert read["process"] == "supervise" and read["pid"] not in fleet.worker_pids()
    assert runs(record) == {m: {"start": 1, "done": 1} for m in slow}  # ended, none cut
    assert queue_counts(sqs_client, pair.url) == (16, 0)  # deleted; no waiting one taken
    time.sleep(3 * CONSUMER_CHECK_SECONDS)  # three more reads of the tag by the watch
    assert set(started(record)) == slow and queue_counts(sqs_client, pair.url) == (16, 0)
    assert not fleet.events("worker_stopped")  # the watchers stay: no restart by supervisord

    assert main(["continue", *where]) == 0
    fleet.wait_for(lambda: len(fleet.events(CONSUMER_RESUMED_EVENT)) == PROD_PROCESSES)
    fleet.wait_for(lambda: queue_counts(sqs_client, pair.url) == (0, 0))
    fleet.wait_for(lambda: sum(r["done"] for r in runs(record).values()) == len(slow | waiting))
    assert len(fleet.events(CONTINUED_EVENT)) == 1
    assert fleet.stop() == 0
    assert runs(record) == {m: {"start": 1, "done": 1} for m in slow | waiting}  # once each
    assert queue_counts(sqs_client, pair.dlq_url) == (0, 0)
