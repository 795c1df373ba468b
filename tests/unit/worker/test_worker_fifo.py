"""FIFO queues (a queue URL ending with ``.fifo``): a group behind a failing message waits for
it, the other groups go on, and a dead-letter copy keeps its group; against moto's SQS, which
locks a group while a message of it is in flight, as SQS does."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker import contract
from worker.handlers import CommandRunner, JobContext, fifo_environment

from tests.sqs_helpers import drain
from tests.unit.worker.harness import Harness
from tests.unit.worker.recording_handlers import started

Make = Callable[..., Harness]


class Receives:
    """Wraps an SQS client: the keyword arguments of every ReceiveMessage."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def receive_message(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.client.receive_message(**kwargs)


def prefetching(harness: Harness) -> Harness:
    """A worker that takes batches of 10 from its first receive (short jobs known)."""
    harness.worker.durations.append(0.01)
    return harness


def send_groups(harness: Harness, **jobs: dict[str, Any]) -> dict[str, str]:
    """Send each named job in group ``name[0]`` (a1 -> group a), in the order given; returns
    {name: message id}."""
    return {name: harness.send(group=name[0], name=name, **job) for name, job in jobs.items()}


def test_moto_locks_a_group_while_a_message_of_it_is_in_flight(
    sqs_client: Any, make_queue_pair: Callable[..., Any]
) -> None:
    """What the worker relies on: SQS gives none of a group's messages while one is in flight."""
    url = make_queue_pair(fifo=True).url
    for body in ("a1", "a2", "b1"):
        sqs_client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=body[0])
    first = sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert [m["Body"] for m in first] == ["a1"]
    again = sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == ["b1"]  # a2 waits while a1 is in flight
    sqs_client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert [m["Body"] for m in drain(sqs_client, url)] == ["a1", "a2"]


def test_a_group_behind_a_failing_message_waits_for_it_and_keeps_its_order(
    make_worker: Make,
) -> None:
    harness = prefetching(make_worker(fifo=True))
    sqs = Receives(harness.sqs.client)
    harness.sqs.client = sqs
    ids = send_groups(
        harness, a1={}, b1={}, a2={"fail_on_first": True}, b2={}, a3={}
    )  # one receive holds them all
    name = {message_id: job for job, message_id in ids.items()}
    harness.start()
    harness.wait_for(
        lambda: (
            all(r["done"] == 1 for r in harness.runs().values()) and len(harness.runs()) == len(ids)
        )
    )
    harness.stop()

    order = [name[m] for m in started(harness.record)]
    # a3 did not run in a2's round; b2 did; a2 ran again (after its backoff) before a3
    assert order == ["a1", "b1", "a2", "b2", "a2", "a3"]
    assert all(run == {"start": 1, "done": 1} for job, run in _runs(harness, name) if job != "a2")
    assert harness.runs()[ids["a2"]] == {"start": 2, "done": 1}
    first = sqs.calls[0]
    assert first["MaxNumberOfMessages"] == 10
    assert set(contract.FIFO_SYSTEM_ATTRIBUTES) <= set(first["MessageSystemAttributeNames"])
    jobs = {(name[j["message_id"]], j["outcome"]) for j in harness.jobs()}
    assert jobs == {(job, "done") for job in ids} | {("a2", "retry")}
    assert {j[contract.MESSAGE_GROUP_ID] for j in harness.jobs()} == {"a", "b"}


def _runs(harness: Harness, name: dict[str, str]) -> list[tuple[str, dict[str, int]]]:
    return [(name[message_id], run) for message_id, run in harness.runs().items()]


def test_a_dead_letter_copy_keeps_its_group_and_the_group_goes_on(
    make_worker: Make, sqs_client: Any
) -> None:
    harness = prefetching(make_worker(fifo=True))
    ids = send_groups(harness, a1={"permanent": True}, a2={})
    harness.start()
    harness.wait_for(lambda: harness.runs().get(ids["a2"], {}).get("done") == 1)
    harness.stop()

    dlq_url = harness.worker.queues[0].dead_letter_queue_url
    copies = sqs_client.receive_message(
        QueueUrl=dlq_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId"],
    )["Messages"]
    assert len(copies) == 1
    copy = copies[0]
    assert copy["Attributes"]["MessageGroupId"] == "a"
    assert copy["Attributes"]["MessageDeduplicationId"] == ids["a1"]
    source = copy["MessageAttributes"][contract.SOURCE_MESSAGE_ID_ATTRIBUTE]["StringValue"]
    assert source == ids["a1"]
    # dead-lettered (gone from the queue): its group's next message ran in the same round
    assert started(harness.record) == [ids["a1"], ids["a2"]]
    assert [j["outcome"] for j in harness.jobs()] == ["dead_letter", "done"]


def test_a_standard_queue_runs_past_a_failing_message_and_asks_for_no_fifo_attributes(
    make_worker: Make,
) -> None:
    harness = prefetching(make_worker())
    sqs = Receives(harness.sqs.client)
    harness.sqs.client = sqs
    failing = harness.send(name="m1", fail_on_first=True)
    after = harness.send(name="m2")
    harness.start()
    harness.wait_for(lambda: harness.runs().get(failing, {}).get("done") == 1)
    harness.stop()

    assert started(harness.record) == [failing, after, failing]
    assert sqs.calls[0]["MessageSystemAttributeNames"] == ["ApproximateReceiveCount"]
    assert all(contract.MESSAGE_GROUP_ID not in j for j in harness.jobs())


def test_a_command_gets_its_messages_group_and_deduplication_id(tmp_path: Path) -> None:
    fifo = JobContext("m-1", 1, message_group_id="orders-7", deduplication_id="d-1")
    assert fifo_environment(fifo) == {
        contract.MESSAGE_GROUP_ID_VARIABLE: "orders-7",
        contract.MESSAGE_DEDUPLICATION_ID_VARIABLE: "d-1",
    }
    assert fifo_environment(JobContext("m-1", 1)) == {}  # a standard queue's message
    out = tmp_path / "env.json"
    names = (contract.MESSAGE_GROUP_ID_VARIABLE, contract.MESSAGE_DEDUPLICATION_ID_VARIABLE)
    script = "import json, os, sys; json.dump({n: os.environ.get(n) for n in sys.argv[2:]}, "
    script += "open(sys.argv[1], 'w'))"
    runner = CommandRunner(f"python3 -c {json.dumps(script)} {out} {' '.join(names)}")
    try:
        assert runner.run("", fifo, 30, lambda: False).outcome == "done"
    finally:
        runner.close()
    assert json.loads(out.read_text()) == dict(zip(names, ("orders-7", "d-1"), strict=True))


def test_a_stop_hands_back_what_it_holds_and_each_group_comes_back_in_order(
    make_worker: Make, sqs_client: Any
) -> None:
    harness = prefetching(make_worker(fifo=True, WORKER_STOP_GRACE_SECONDS="1"))
    ids = send_groups(harness, a1={"hang_on_first": True}, b1={}, a2={})
    name = {message_id: job for job, message_id in ids.items()}
    harness.start()
    harness.wait_for(lambda: started(harness.record) == [ids["a1"]])
    assert harness.stop() == "sigterm"

    assert [(name[j["message_id"]], j["outcome"]) for j in harness.jobs()] == [
        ("a1", contract.HANDED_BACK)
    ]  # stopped at the grace; b1 and a2 handed back unrun
    back = drain(sqs_client, harness.worker.queues[0].url)
    assert [json.loads(m["Body"])["name"] for m in back] == ["a1", "b1", "a2"]
