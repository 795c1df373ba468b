"""A FIFO queue on the real fleet at the production shape: every group's jobs run in order.

A supervisord fleet of PROD_PROCESSES (8) worker processes at the prod settings against moto's
server (which locks a group while a message of it is in flight, as SQS does) drains 6 groups of
6 short jobs, sent interleaved, so that a batch (PREFETCH_SECONDS 5 s: up to 10 of these 0.2-s
jobs) holds several messages of one group. One job fails on its first run: it is retried after
the prod backoff (10 s), and no later job of its group starts before it has run again. Every job
runs once (the failing one twice), each group in the order sent, and the queues end empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from worker import contract

from tests.integration.fleet import PROD
from tests.sqs_helpers import queue_counts
from tests.unit.worker.recording_handlers import runs, started

GROUPS = "abcdef"
JOBS_PER_GROUP = 6
JOB_SECONDS = 0.2
FAILING = "c1"  # the second job of group c fails on its first run


def test_every_groups_jobs_run_in_order_behind_a_failing_one(
    make_fleet: Any, make_queue_pair: Any, sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair(max_receive_count=5, visibility_timeout=120, fifo=True)
    record = tmp_path / "record"
    names: dict[str, str] = {}  # message id -> job name (group letter, index)
    for index in range(JOBS_PER_GROUP):
        for group in GROUPS:
            name = f"{group}{index}"
            job = {"record": str(record), "name": name, "duration_seconds": JOB_SECONDS}
            if name == FAILING:
                job["fail_on_first"] = True
            response = sqs_client.send_message(
                QueueUrl=pair.url, MessageBody=json.dumps(job), MessageGroupId=group
            )
            names[response["MessageId"]] = name
    fleet = make_fleet(QUEUE_URL=pair.url, DEAD_LETTER_QUEUE_URL=pair.dlq_url, **PROD)

    fleet.wait_for(lambda: len(fleet.jobs("done")) == len(names), timeout=40)
    fleet.wait_for(lambda: queue_counts(sqs_client, pair.url) == (0, 0))
    assert fleet.stop() == 0

    failing = next(m for m, name in names.items() if name == FAILING)
    assert runs(record) == {
        m: {"start": 2 if m == failing else 1, "done": 1} for m in names
    }  # nothing lost, nothing run twice (the failing job again, once)
    order = [names[m] for m in started(record)]
    for group in GROUPS:
        in_group = [name for name in order if name[0] == group]
        expected = [f"{group}{i}" for i in range(JOBS_PER_GROUP)]
        if group == FAILING[0]:
            expected.insert(expected.index(FAILING), FAILING)  # its two runs, back to back
        assert in_group == expected
    assert len({job[contract.PROCESS] for job in fleet.jobs()}) > 1  # several processes worked
    assert {job["outcome"] for job in fleet.jobs()} == {"done", "retry"}
    assert {job[contract.MESSAGE_GROUP_ID] for job in fleet.jobs()} == set(GROUPS)
    assert queue_counts(sqs_client, pair.dlq_url) == (0, 0)
