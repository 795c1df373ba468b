"""FIFO queues: what the worker dead-letters (its own receive and dead-letter code, on moto),
`retry` and `redrive` send back to the work queue in its groups, in order, none dropped by
SQS's deduplication; `dlq` shows each message's group."""

from __future__ import annotations

import io
import json
from typing import Any

from ops_helpers import drain_fifo
from worker.handlers import CallableRunner
from worker.logs import EventLog
from worker.loop import Worker
from worker.settings import Settings

from scripts.operate import dlq, redrive, retry
from tests.sqs_helpers import queue_counts as counts

REASON = "boom"
# Equal bodies in one group: the work queue's content-based deduplication would keep one of
# two copies sent without their own deduplication id.
JOBS = [("a", "same"), ("b", "b1"), ("a", "same"), ("b", "b2"), ("a", "a3")]


def fail_all(sqs: Any, pair: Any) -> int:
    """Receive every message of the work queue and dead-letter it, both with the worker's own
    code (a Worker never started); how many. A FIFO copy keeps its group and is deduplicated by
    the original id (worker.loop.Worker._dead_letter)."""
    settings = Settings.from_env(
        {
            "QUEUE_URL": pair.url,
            "DEAD_LETTER_QUEUE_URL": pair.dlq_url,
            "WORKER_HANDLER": "tests.unit.worker.recording_handlers:recorded_job",
        }
    )
    worker = Worker(settings, sqs, CallableRunner(settings.handler), EventLog("t", io.StringIO()))
    failed = 0
    while held := worker._receive_from(worker.queues[0], 10, long_poll=False):
        for message in held:
            assert worker._dead_letter(message, REASON) == "sent"
            failed += 1
    return failed


def dead_lettered(sqs: Any, make_queue_pair: Any) -> Any:
    """A FIFO pair (the work queue with content-based deduplication) whose DLQ holds JOBS as
    the worker dead-letters them."""
    pair = make_queue_pair(fifo=True)
    for number, (group, body) in enumerate(JOBS):
        sqs.send_message(
            QueueUrl=pair.url,
            MessageBody=body,
            MessageGroupId=group,
            MessageDeduplicationId=f"producer-{number}",
        )
    assert fail_all(sqs, pair) == len(JOBS)
    return pair


def groups(messages: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The bodies of `messages` by their MessageGroupId, each group in the order received."""
    bodies: dict[str, list[str]] = {}
    for message in messages:
        bodies.setdefault(message["Attributes"]["MessageGroupId"], []).append(message["Body"])
    return bodies


EXPECTED = {"a": ["same", "same", "a3"], "b": ["b1", "b2"]}


def test_retry_sends_each_back_to_its_group_in_order(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = dead_lettered(sqs_client, make_queue_pair)
    assert retry.main([*aws_args, "--queue-url", pair.url, "--reason", REASON, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["retried"] == len(JOBS)
    back = drain_fifo(sqs_client, pair.url)
    assert groups(back) == EXPECTED
    assert counts(sqs_client, pair.dlq_url) == (0, 0)
    # each copy is deduplicated by its DLQ message id
    dlq_ids = {m["message_id"] for m in report["messages"]}
    assert {m["Attributes"]["MessageDeduplicationId"] for m in back} == dlq_ids


def test_redrive_copy_sends_each_back_to_its_group_in_order(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = dead_lettered(sqs_client, make_queue_pair)
    assert redrive.main([*aws_args, "--queue-url", pair.url]) == 0  # moto: no move task
    assert f"moved {len(JOBS)} messages" in capsys.readouterr().out
    assert groups(drain_fifo(sqs_client, pair.url)) == EXPECTED
    assert counts(sqs_client, pair.dlq_url) == (0, 0)


def test_a_message_retried_twice_within_five_minutes_lands_both_times(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str]
) -> None:
    pair = dead_lettered(sqs_client, make_queue_pair)
    argv = [*aws_args, "--queue-url", pair.url, "--reason", REASON]
    assert retry.main(argv) == 0
    assert fail_all(sqs_client, pair) == len(JOBS)  # each failed again at once
    assert retry.main(argv) == 0
    assert groups(drain_fifo(sqs_client, pair.url)) == EXPECTED


def test_dlq_shows_each_message_group(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = dead_lettered(sqs_client, make_queue_pair)
    assert dlq.main([*aws_args, "--queue-url", pair.url, "--samples", "10", "--json"]) == 0
    samples = json.loads(capsys.readouterr().out)["samples"]
    assert sorted(s["message_group_id"] for s in samples) == sorted(g for g, _ in JOBS)
