"""Two queues in priority order (WORKER_QUEUES) on the real fleet at the production shape.

A supervisord fleet of PROD_PROCESSES (8) worker processes at the prod settings against moto's
server drains a batch of short jobs from the low queue; while it does, jobs arrive in the high
queue. The high queue's jobs start before the low queue's remaining ones: once they are there,
a process runs at most the low batch it holds, then takes the high queue's. Every message runs
exactly once, both queues end empty and nothing reaches a DLQ. PREFETCH_SECONDS is 0.4 s here
(5 s by default), so that a batch holds at most two 0.2-s jobs: the order shows in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from worker import contract

from tests.integration.fleet import PROD, PROD_PROCESSES, send_jobs
from tests.sqs_helpers import queue_counts
from tests.unit.worker.recording_handlers import runs, started

JOB_SECONDS = 0.2
PREFETCH_SECONDS = 0.4
BATCH = int(PREFETCH_SECONDS / JOB_SECONDS)  # the most low jobs a process holds at once
LOW_JOBS = 160
HIGH_JOBS = 16


def test_the_high_queues_jobs_start_before_the_low_queues_remaining_ones(
    make_fleet: Any, make_queue_pair: Any, sqs_client: Any, tmp_path: Path
) -> None:
    high, low = (make_queue_pair(max_receive_count=5, visibility_timeout=120) for _ in "hl")
    queues = [
        {"name": "high", "url": high.url, "dead_letter_queue_url": high.dlq_url},
        {"name": "low", "url": low.url, "dead_letter_queue_url": low.dlq_url},
    ]
    record = tmp_path / "record"
    low_ids = set(send_jobs(sqs_client, low.url, record, LOW_JOBS, duration_seconds=JOB_SECONDS))
    fleet = make_fleet(
        **{contract.QUEUES_VARIABLE: json.dumps(queues)},
        **PROD,
        PREFETCH_SECONDS=PREFETCH_SECONDS,
    )
    fleet.wait_for(lambda: len(started(record)) >= 2 * PROD_PROCESSES, timeout=30)
    before = len(started(record))  # every low job started so far, and a few more
    high_ids = set(send_jobs(sqs_client, high.url, record, HIGH_JOBS, duration_seconds=JOB_SECONDS))

    fleet.wait_for(lambda: len(fleet.jobs("done")) == LOW_JOBS + HIGH_JOBS, timeout=40)
    fleet.wait_for(lambda: queue_counts(sqs_client, low.url) == (0, 0))
    assert fleet.stop() == 0
    order = started(record)
    last_high = max(order.index(message_id) for message_id in high_ids)
    low_after = len(order) - last_high - 1
    # Low jobs that start once the high ones are there: the batch each process held when they
    # arrived, the batch of any process whose receive came while they were sent, and those
    # of the processes that found the high queue taken (its last jobs held by others).
    assert len(order[before:last_high]) - HIGH_JOBS + 1 <= 3 * PROD_PROCESSES * BATCH
    assert low_after >= LOW_JOBS - before - 3 * PROD_PROCESSES * BATCH > 0
    assert runs(record) == {m: {"start": 1, "done": 1} for m in low_ids | high_ids}
    by_queue = {job["message_id"]: job[contract.QUEUE] for job in fleet.jobs()}
    assert by_queue == {**dict.fromkeys(low_ids, "low"), **dict.fromkeys(high_ids, "high")}
    assert {job["outcome"] for job in fleet.jobs()} == {"done"}
    for pair in (high, low):
        assert queue_counts(sqs_client, pair.url) == (0, 0)
        assert queue_counts(sqs_client, pair.dlq_url) == (0, 0)
