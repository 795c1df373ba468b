"""operate.redrive: copy fallback never loses a message; the move task path with a stubbed SQS."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from ops_helpers import send
from worker.contract import FAILURE_REASON_ATTRIBUTE, SOURCE_MESSAGE_ID_ATTRIBUTE

from scripts._cli import OpsError
from scripts.operate import redrive
from tests.sqs_helpers import drain
from tests.sqs_helpers import queue_counts as counts

ATTRIBUTE = {FAILURE_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": "boom"}}
DLQ_ARN = "arn:aws:sqs:ap-northeast-1:123456789012:work-dlq"
QUEUE_ARN = "arn:aws:sqs:ap-northeast-1:123456789012:work"


def test_auto_falls_back_to_copy_and_moves_everything(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = make_queue_pair()
    bodies = [f"job {n}" for n in range(23)]
    send(sqs_client, pair.dlq_url, bodies, ATTRIBUTE)
    assert redrive.main([*aws_args, "--queue-url", pair.url]) == 0
    captured = capsys.readouterr()
    assert "move task not supported here; copying instead" in captured.err
    assert "moved 23 messages" in captured.out
    assert counts(sqs_client, pair.dlq_url) == (0, 0)
    moved = drain(sqs_client, pair.url)
    assert sorted(message["Body"] for message in moved) == sorted(bodies)
    assert all(message["MessageAttributes"] == ATTRIBUTE for message in moved)


def test_limit_moves_only_that_many(
    sqs_client: Any, deploy_queue_stack: Any, env_name: str, aws_args: list[str]
) -> None:
    outputs = deploy_queue_stack(env_name)
    send(sqs_client, outputs["DeadLetterQueueUrl"], [f"job {n}" for n in range(15)])
    assert redrive.main([*aws_args, "--env", env_name, "--limit", "6"]) == 0
    assert counts(sqs_client, outputs["QueueUrl"]) == (6, 0)
    assert counts(sqs_client, outputs["DeadLetterQueueUrl"])[0] == 9


def test_dry_run_moves_nothing(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = make_queue_pair()
    send(sqs_client, pair.dlq_url, ["a", "b", "c"])
    assert redrive.main([*aws_args, "--queue-url", pair.url, "--dry-run"]) == 0
    assert "dry run: would move about 3 messages" in capsys.readouterr().out
    assert counts(sqs_client, pair.dlq_url) == (3, 0)
    assert counts(sqs_client, pair.url) == (0, 0)


def test_method_move_where_unsupported_is_a_clear_error(
    make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = make_queue_pair()
    assert redrive.main([*aws_args, "--queue-url", pair.url, "--method", "move"]) == 1
    assert "no SQS move task; use --method copy" in capsys.readouterr().err


def test_bad_arguments(capsys: Any) -> None:
    for extra, complaint in [
        (["--method", "move", "--limit", "3"], "--limit needs --method copy"),
        (["--max-per-second", "501"], "at most 500"),
    ]:
        with pytest.raises(SystemExit) as exited:
            redrive.main(["--queue-url", "http://unused", *extra])
        assert exited.value.code == 2
        assert complaint in capsys.readouterr().err


class FailingSends:
    """An SQS client whose SendMessageBatch fails every entry whose body starts with 'bad'."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        good = [entry for entry in Entries if not entry["MessageBody"].startswith("bad")]
        response = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=good) if good else {}
        response["Failed"] = [
            {"Id": entry["Id"], "Code": "InternalError", "SenderFault": False, "Message": "x"}
            for entry in Entries
            if entry["MessageBody"].startswith("bad")
        ]
        return response


def test_copy_keeps_what_it_could_not_send(sqs_client: Any, make_queue_pair: Any) -> None:
    pair = make_queue_pair()
    send(sqs_client, pair.dlq_url, ["good 1", "bad 1", "good 2", "bad 2"])
    with pytest.raises(OpsError, match="could not send 2 message"):
        redrive.copy_messages(FailingSends(sqs_client), pair.dlq_url, pair.url)
    assert sorted(m["Body"] for m in drain(sqs_client, pair.url)) == ["good 1", "good 2"]
    # The unsent ones are back in the DLQ and visible at once.
    assert sorted(m["Body"] for m in drain(sqs_client, pair.dlq_url)) == ["bad 1", "bad 2"]


class DeadLetteringAtOnce:
    """An SQS client whose every message sent to the work queue comes straight back to the DLQ
    as a worker's copy does (exit 65 in command mode: a new message, its source id in
    `worker_source_message_id`), as soon as it is sent: a fleet without its timing."""

    def __init__(self, sqs: Any, dlq_url: str) -> None:
        self._sqs = sqs
        self._dlq_url = dlq_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        response = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        bodies = {entry["Id"]: entry["MessageBody"] for entry in Entries}
        for sent in response.get("Successful", []):
            source = {"DataType": "String", "StringValue": sent["MessageId"]}
            self._sqs.send_message(
                QueueUrl=self._dlq_url,
                MessageBody=bodies[sent["Id"]],
                MessageAttributes={SOURCE_MESSAGE_ID_ATTRIBUTE: source},
            )
        return response


def test_copy_leaves_what_reached_the_dlq_after_it_started(
    sqs_client: Any, make_queue_pair: Any
) -> None:
    """The DLQ's count at the start is approximate: here it says 50 where 3 wait. The copies
    that come back while the redrive runs are left in the DLQ (visible again), not copied round
    and round until the count is reached."""
    pair = make_queue_pair()
    send(sqs_client, pair.dlq_url, ["a", "b", "c"])
    copied = redrive.copy_messages(
        DeadLetteringAtOnce(sqs_client, pair.dlq_url), pair.dlq_url, pair.url, at_start=50
    )
    assert (copied.moved, copied.left) == (3, 3)
    assert sorted(m["Body"] for m in drain(sqs_client, pair.url)) == ["a", "b", "c"]  # once each
    back = drain(sqs_client, pair.dlq_url)  # visible at once: released, not hidden
    assert sorted(m["Body"] for m in back) == ["a", "b", "c"]
    assert all(SOURCE_MESSAGE_ID_ATTRIBUTE in m["MessageAttributes"] for m in back)


def test_copy_stops_at_the_count_the_dlq_had_at_the_start(
    sqs_client: Any, make_queue_pair: Any
) -> None:
    pair = make_queue_pair()
    send(sqs_client, pair.dlq_url, [f"job {n}" for n in range(12)])
    copied = redrive.copy_messages(sqs_client, pair.dlq_url, pair.url, at_start=7)
    assert (copied.moved, copied.left) == (7, 0)
    assert counts(sqs_client, pair.url) == (7, 0)
    assert counts(sqs_client, pair.dlq_url) == (5, 0)


def stubbed_sqs() -> tuple[Any, Stubber]:
    sqs = boto3.client("sqs", region_name="ap-northeast-1")
    return sqs, Stubber(sqs)


def test_move_task_is_started_and_polled_until_completed() -> None:
    sqs, stub = stubbed_sqs()
    stub.add_response(
        "start_message_move_task",
        {"TaskHandle": "handle-1"},
        {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN, "MaxNumberOfMessagesPerSecond": 20},
    )
    for status, moved in [("RUNNING", 40), ("COMPLETED", 100)]:
        task = {"Status": status, "ApproximateNumberOfMessagesMoved": moved}
        stub.add_response(
            "list_message_move_tasks",
            {"Results": [{**task, "ApproximateNumberOfMessagesToMove": 100}]},
            {"SourceArn": DLQ_ARN, "MaxResults": 1},
        )
    with stub:
        assert redrive.move_task(sqs, DLQ_ARN, QUEUE_ARN, 20, poll_seconds=0) == 100
    stub.assert_no_pending_responses()


def test_failed_move_task_is_an_error() -> None:
    sqs, stub = stubbed_sqs()
    stub.add_response("start_message_move_task", {"TaskHandle": "h"})
    failed = {"Status": "FAILED", "ApproximateNumberOfMessagesMoved": 3, "FailureReason": "KMS"}
    stub.add_response("list_message_move_tasks", {"Results": [failed]})
    with stub, pytest.raises(OpsError, match="move task failed after 3: KMS"):
        redrive.move_task(sqs, DLQ_ARN, QUEUE_ARN, None, poll_seconds=0)


@pytest.mark.parametrize(
    ("error", "unsupported"),
    [
        (NotImplementedError("start_message_move_task"), True),
        (ClientError({"Error": {"Code": "UnsupportedOperation"}}, "StartMessageMoveTask"), True),
        (ClientError({"Error": {"Code": "500"}}, "StartMessageMoveTask"), True),
        (ClientError({"Error": {"Code": "AccessDenied"}}, "StartMessageMoveTask"), False),
        (ValueError("other"), False),
    ],
)
def test_is_unsupported(error: Exception, unsupported: bool) -> None:
    assert redrive.is_unsupported(error) is unsupported


def test_main_prefers_the_move_task(
    make_queue_pair: Any, aws_args: list[str], capsys: Any, monkeypatch: Any
) -> None:
    pair = make_queue_pair()
    calls = []

    def fake_move_task(sqs: Any, *args: Any) -> int:
        calls.append(args)
        return 7

    monkeypatch.setattr(redrive, "move_task", fake_move_task)
    argv = [*aws_args, "--queue-url", pair.url, "--max-per-second", "5", "--poll-seconds", "1"]
    assert redrive.main(argv) == 0
    assert calls == [(pair.dlq_arn, pair.arn, 5, 1.0)]
    assert "moved 7 messages" in capsys.readouterr().out


class OtherFailureArrives:
    """An SQS client with which another job's failure reaches the DLQ while the copy runs,
    past the clock margin: a message this copy never saw at its start."""

    def __init__(self, sqs: Any, dlq_url: str) -> None:
        self._sqs, self._dlq_url, self._sent = sqs, dlq_url, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        if not self._sent:
            time.sleep(redrive.CLOCK_MARGIN_MS / 1000 + 0.2)
            self._sqs.send_message(QueueUrl=self._dlq_url, MessageBody="later")
            self._sent = True
        return self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)


def test_copy_leaves_a_message_sent_to_the_dlq_after_it_started(
    sqs_client: Any, make_queue_pair: Any
) -> None:
    pair = make_queue_pair()
    send(sqs_client, pair.dlq_url, ["a", "b"])
    copied = redrive.copy_messages(
        OtherFailureArrives(sqs_client, pair.dlq_url), pair.dlq_url, pair.url, at_start=3
    )
    assert (copied.moved, copied.left) == (2, 1)
    assert sorted(m["Body"] for m in drain(sqs_client, pair.url)) == ["a", "b"]
    assert [m["Body"] for m in drain(sqs_client, pair.dlq_url)] == ["later"]
