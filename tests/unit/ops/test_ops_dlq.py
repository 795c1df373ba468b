"""scripts.operate.dlq: counts and samples of the DLQ, without consuming them."""

from __future__ import annotations

import json
from typing import Any

from ops_helpers import send
from worker.contract import FAILURE_REASON_ATTRIBUTE, SOURCE_MESSAGE_ID_ATTRIBUTE

from scripts.operate import dlq
from tests.sqs_helpers import queue_counts as counts

# What the worker sets when it dead-letters a message itself (names from worker.contract).
REASON = {
    FAILURE_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": "PermanentFailure: bad body"},
    SOURCE_MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": "original-id-1"},
}


def peek_json(aws_args: list[str], target: list[str], capsys: Any, *extra: str) -> Any:
    capsys.readouterr()
    assert dlq.main([*aws_args, *target, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_counts_and_samples_leave_messages_in_place(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = make_queue_pair()
    send(sqs_client, pair.dlq_url, ['{"duration_seconds": 1, "fail": true}', "x" * 300])
    send(sqs_client, pair.dlq_url, ["not json"], REASON)
    report = peek_json(aws_args, ["--queue-url", pair.url], capsys, "--samples", "10")
    assert (report["visible"], report["in_flight"], report["delayed"]) == (3, 0, 0)
    assert report["queue_url"] == pair.dlq_url
    by_body = {sample["body_preview"]: sample for sample in report["samples"]}
    assert set(by_body) == {'{"duration_seconds": 1, "fail": true}', "x" * 120 + "...", "not json"}
    assert by_body["not json"]["reason"] == "PermanentFailure: bad body"
    assert by_body["not json"]["source_message_id"] == "original-id-1"
    moved_by_sqs = by_body["x" * 120 + "..."]
    assert moved_by_sqs["reason"] == "maxReceiveCount exceeded"
    assert moved_by_sqs["source_message_id"] == moved_by_sqs["message_id"]  # SQS keeps the id
    for sample in report["samples"]:
        assert sample["receive_count"] == 1
        assert sample["sent_at"].endswith("Z")
    # Peeking consumed nothing: all three are visible again at once, and peek again.
    assert counts(sqs_client, pair.dlq_url) == (3, 0)
    again = peek_json(aws_args, ["--queue-url", pair.url], capsys, "--samples", "10")
    assert len(again["samples"]) == 3
    assert all(sample["receive_count"] == 2 for sample in again["samples"])


def test_samples_limit_and_zero(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = make_queue_pair()
    send(sqs_client, pair.dlq_url, [f"job {n}" for n in range(14)])
    target = ["--queue-url", pair.url]
    assert len(peek_json(aws_args, target, capsys, "--samples", "12")["samples"]) == 12
    only_counts = peek_json(aws_args, target, capsys, "--samples", "0")
    assert (only_counts["visible"], only_counts["samples"]) == (14, [])
    assert counts(sqs_client, pair.dlq_url) == (14, 0)


def test_text_output_by_env(
    sqs_client: Any, deploy_queue_stack: Any, env_name: str, aws_args: list[str], capsys: Any
) -> None:
    outputs = deploy_queue_stack(env_name)
    send(sqs_client, outputs["DeadLetterQueueUrl"], ["payload one"], REASON)
    assert dlq.main([*aws_args, "--env", env_name]) == 0
    lines = capsys.readouterr().out.splitlines()
    dlq_name = outputs["DeadLetterQueueUrl"].rsplit("/", 1)[-1]
    assert lines[0] == f"{dlq_name}: about 1 visible, 0 in flight, 0 delayed"
    assert lines[1].startswith("- original-id-1  sent ")
    assert "receives 1  reason: PermanentFailure: bad body" in lines[1]
    assert lines[2] == "  payload one"


def test_empty_dlq(make_queue_pair: Any, aws_args: list[str], capsys: Any) -> None:
    pair = make_queue_pair()
    report = peek_json(aws_args, ["--queue-url", pair.url], capsys)
    assert (report["visible"], report["samples"]) == (0, [])
