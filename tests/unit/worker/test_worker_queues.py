"""Several queues in priority order (WORKER_QUEUES): the settings (every fault at once), the
order of receives, and every call about a message going to its own queue and DLQ."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from worker import app, contract
from worker.contract import PAUSED_TAG, QUEUES_VARIABLE
from worker.handlers import queue_environment
from worker.settings import Settings, SettingsError, WorkQueue

from tests.sqs_helpers import drain, queue_counts
from tests.unit.worker.harness import Harness
from tests.unit.worker.recording_handlers import started

Make = Callable[..., Harness]
HIGH = "https://sqs.eu-west-1.amazonaws.com/123456789012/high"
LOW = "https://sqs.eu-west-1.amazonaws.com/123456789012/low"


class RefusingQueue:
    """Wraps an SQS client: every receive of queue `url` is refused as a lost connection; counts
    the receives of each queue."""

    def __init__(self, client: Any, url: str) -> None:
        self.client, self.url = client, url
        self.receives: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def receive_message(self, **kwargs: Any) -> Any:
        self.receives[kwargs["QueueUrl"]] += 1
        if kwargs["QueueUrl"] == self.url:
            raise EndpointConnectionError(endpoint_url=self.url)
        return self.client.receive_message(**kwargs)


def queues_env(*entries: Any) -> dict[str, str]:
    return {QUEUES_VARIABLE: json.dumps(list(entries))}


class QueueCalls:
    """Wraps an SQS client: the queue each receipt handle came from, and each call made about
    a receipt handle (operation, the queue it went to, the handle)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.source: dict[str, str] = {}
        self.calls: list[tuple[str, str, str]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            url = kwargs.get("QueueUrl", "")
            entries = [kwargs, *kwargs.get("Entries", [])]
            self.calls += [(name, url, e["ReceiptHandle"]) for e in entries if "ReceiptHandle" in e]
            response = method(**kwargs)
            for message in response.get("Messages", []) if name == "receive_message" else []:
                self.source[message["ReceiptHandle"]] = url
            return response

        return call


# -- settings ------------------------------------------------------------------------------------


def test_worker_queues_are_read_in_priority_order() -> None:
    settings = Settings.from_env(
        queues_env(
            {"name": "high", "url": HIGH, "dead_letter_queue_url": HIGH + "-dlq"},
            {"name": "low", "url": LOW, "max_receive_count": 8},
        )
    )
    assert settings.work_queues == (
        WorkQueue("high", HIGH, HIGH + "-dlq"),
        WorkQueue("low", LOW, None, 8),
    )
    assert settings.queue_url == HIGH  # the first queue stands for the worker's own
    assert settings.dead_letter_queue_url == HIGH + "-dlq"
    assert settings.region == "eu-west-1"


def test_queue_url_alone_is_one_queue_named_by_its_url() -> None:
    settings = Settings.from_env({"QUEUE_URL": LOW, "DEAD_LETTER_QUEUE_URL": LOW + "-dlq"})
    assert settings.queues == ()
    assert settings.work_queues == (WorkQueue("low", LOW, LOW + "-dlq"),)


def test_every_fault_of_worker_queues_is_reported_at_once() -> None:
    env = {
        **queues_env(
            {"name": "high", "url": HIGH, "priority": 1},
            {"name": "no spaces", "url": LOW, "max_receive_count": 0},
            {"name": "high", "dead_letter_queue_url": ""},
            "low",
        ),
        "QUEUE_URL": HIGH,
        "JOB_TIMEOUT_SECONDS": "soon",
    }
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    for fault in (
        "WORKER_QUEUES[0].priority=1: unknown key",
        "WORKER_QUEUES[1].name='no spaces'",
        "WORKER_QUEUES[1].max_receive_count=0",
        "WORKER_QUEUES[2].url=None: required",
        "WORKER_QUEUES[2].dead_letter_queue_url=''",
        "WORKER_QUEUES[3]='low'",
        "WORKER_QUEUES[*].name='high': appears twice",
        "QUEUE_URL='https://sqs",
        "JOB_TIMEOUT_SECONDS='soon'",
    ):
        assert fault in message


@pytest.mark.parametrize("value", ["high,low", "[]", '{"name": "high"}'])
def test_worker_queues_must_be_a_list_of_objects(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({QUEUES_VARIABLE: value})
    assert f"{QUEUES_VARIABLE}={value!r}: a JSON list" in str(raised.value)
    assert "QUEUE_URL=''" not in str(raised.value)  # the one-queue form is not asked for


def test_a_command_learns_its_messages_queue() -> None:
    assert queue_environment(WorkQueue("low", LOW, None, 8)) == {
        "WORKER_QUEUE_URL": LOW,
        contract.QUEUE_NAME_VARIABLE: "low",
        contract.MAX_RECEIVE_COUNT_VARIABLE: "8",
    }
    assert contract.MAX_RECEIVE_COUNT_VARIABLE not in queue_environment(WorkQueue("low", LOW))
    assert queue_environment(None) == {}


def test_a_worker_with_a_missing_queue_among_its_queues_exits_ex_config(
    sqs_client: Any,
    make_queue_pair: Callable[..., Any],
    moto_endpoint: str,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    there, gone = make_queue_pair().url, make_queue_pair().url
    sqs_client.delete_queue(QueueUrl=gone)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # boto3 reads it from the process
    env = queues_env({"name": "high", "url": there}, {"name": "low", "url": gone})
    assert app.main({**env, "AWS_REGION": "ap-northeast-1"}) == app.EX_CONFIG
    assert f"WORKER_QUEUES[1].url='{gone}': cannot be used" in capsys.readouterr().err


# -- the loop on two queues (moto) ---------------------------------------------------------------


def test_the_high_queue_is_emptied_before_the_low_one_is_touched(make_worker: Make) -> None:
    h = make_worker(queues=("high", "low"))
    low = [h.send(queue=1, duration_seconds=0.01) for _ in range(4)]
    high = [h.send(queue=0, duration_seconds=0.01) for _ in range(3)]
    h.start()
    h.wait_for(lambda: len(h.jobs("done")) == 7)
    h.stop()
    order = started(h.record)
    assert set(order[:3]) == set(high) and set(order[3:]) == set(low)
    assert all(run == {"start": 1, "done": 1} for run in h.runs().values())
    names = {line["message_id"]: line[contract.QUEUE] for line in h.jobs()}
    assert names == {**dict.fromkeys(high, "high"), **dict.fromkeys(low, "low")}
    for queue in h.worker.queues:
        assert queue_counts(h.sqs.client, queue.url) == (0, 0)  # deleted from its own queue


def test_the_low_queue_is_served_while_the_high_one_is_empty(make_worker: Make) -> None:
    h = make_worker(queues=("high", "low"), RECEIVE_WAIT_SECONDS="1")
    h.start()
    first = h.send(queue=1, duration_seconds=0.01)
    h.wait_for(lambda: len(h.jobs("done")) == 1)
    later = h.send(queue=0, duration_seconds=0.01)
    h.wait_for(lambda: len(h.jobs("done")) == 2)
    h.stop()
    assert started(h.record) == [first, later]
    # Each round asks the high queue at once, then long-polls the low one.
    assert h.sqs.calls["receive_message"] >= 2


def test_every_call_about_a_message_goes_to_its_own_queue(make_worker: Make) -> None:
    h = make_worker(queues=("high", "low"), RETRY_BACKOFF_MAX_SECONDS="1")
    h.sqs.client = calls = QueueCalls(h.sqs.client)
    high_poison = h.send(queue=0, permanent=True)
    low_poison = h.send(queue=1, permanent=True)
    slow = h.send(queue=1, duration_seconds=3)  # > the visibility: heartbeated on its queue
    failing = h.send(queue=1, fail=True)  # backed off on its queue, then redriven by SQS
    h.start()
    h.wait_for(lambda: len(h.jobs("dead_letter")) == 2 and len(h.jobs("done")) == 1)
    high, low = h.worker.queues
    assert low.dead_letter_queue_url and high.dead_letter_queue_url
    h.wait_for(lambda: queue_counts(h.sqs.client, low.url) == (0, 0), timeout=30)
    h.stop()
    assert h.runs()[slow] == {"start": 1, "done": 1}
    assert h.runs()[failing]["start"] == 3  # max_receive_count 3: then SQS's redrive
    source = contract.SOURCE_MESSAGE_ID_ATTRIBUTE

    def copies(url: str) -> set[str]:
        return {
            m.get("MessageAttributes", {}).get(source, {}).get("StringValue", m["MessageId"])
            for m in drain(h.sqs.client, url)
        }

    assert copies(high.dead_letter_queue_url) == {high_poison}
    assert copies(low.dead_letter_queue_url) == {low_poison, failing}
    assert queue_counts(h.sqs.client, high.url) == (0, 0)
    made = {name for name, _, _ in calls.calls}
    assert {"change_message_visibility_batch", "delete_message"} <= made
    assert all(calls.source[handle] == url for _, url, handle in calls.calls)


def test_a_paused_queue_gives_nothing_while_the_others_go_on(make_worker: Make) -> None:
    h = make_worker(queues=("high", "low"), PAUSE_CHECK_SECONDS="0.5")
    high = h.worker.queues[0]
    h.sqs.client.tag_queue(QueueUrl=high.url, Tags={PAUSED_TAG: "since=test"})
    held_back = h.send(queue=0, duration_seconds=0.01)
    served = h.send(queue=1, duration_seconds=0.01)
    h.start()
    h.wait_for(lambda: len(h.jobs("done")) == 1)
    assert set(h.runs()) == {served}
    assert not h.worker.paused  # one queue of two
    assert [e[contract.QUEUE] for e in h.events(contract.PAUSED_EVENT)] == ["high"]
    h.sqs.client.untag_queue(QueueUrl=high.url, TagKeys=[PAUSED_TAG])
    h.wait_for(lambda: len(h.jobs("done")) == 2)
    h.stop()
    assert set(h.runs()) == {served, held_back}
    assert [e[contract.QUEUE] for e in h.events(contract.CONTINUED_EVENT)] == ["high"]


def test_a_failing_queue_ends_each_round_and_backs_off_more_each_time(make_worker: Make) -> None:
    h = make_worker(queues=("high", "low"))
    high, low = h.worker.queues
    h.sqs.client = refusing = RefusingQueue(h.sqs.client, high.url)
    h.start()
    h.wait_for(lambda: len(h.events("receive_error")) >= 3)
    h.stop()
    errors = h.events("receive_error")
    assert [e["backoff_seconds"] for e in errors[:3]] == [1.0, 2.0, 4.0]
    assert {e[contract.QUEUE] for e in errors} == {"high"}
    assert refusing.receives[low.url] == 0  # the order holds: nothing below a failing queue
