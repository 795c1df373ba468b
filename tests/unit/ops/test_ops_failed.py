"""dlq --by-reason, retry and forget: one failed job at a time, against the embedded SQS."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from ops_helpers import Terminal, send
from worker.contract import FAILURE_REASON_ATTRIBUTE, SOURCE_MESSAGE_ID_ATTRIBUTE

from scripts.operate import dlq, forget, retry
from tests.sqs_helpers import drain
from tests.sqs_helpers import queue_counts as counts

MOVED_BY_SQS = "maxReceiveCount exceeded"
PERMANENT = "PermanentFailure: bad body"
MALFORMED = "malformed body: Expecting value: line 1 column 1 (char 0)"
PRODUCER_ATTRIBUTE = {"job": {"DataType": "String", "StringValue": "SendInvoice"}}


def dead_lettered(reason: str, source_id: str) -> dict[str, Any]:
    """The attributes of a copy the worker dead-lettered itself (and one the producer set)."""
    return {
        **PRODUCER_ATTRIBUTE,
        FAILURE_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason},
        SOURCE_MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": source_id},
    }


class Failed:
    """A deployed environment whose DLQ holds 23 messages of three reasons: 12 that SQS moved
    (no reason), 7 permanent failures (original ids perm-0..6), 4 malformed (bad-0..3)."""

    def __init__(self, sqs: Any, outputs: dict[str, str], env: str, aws_args: list[str]) -> None:
        self.sqs = sqs
        self.queue_url, self.dlq_url = outputs["QueueUrl"], outputs["DeadLetterQueueUrl"]
        self.args = [*aws_args, "--env", env]
        send(sqs, self.dlq_url, [f"moved {n}" for n in range(12)])
        for n in range(7):
            send(sqs, self.dlq_url, [f"permanent {n}"], dead_lettered(PERMANENT, f"perm-{n}"))
        for n in range(4):
            send(sqs, self.dlq_url, [f"malformed {n}"], dead_lettered(MALFORMED, f"bad-{n}"))


@pytest.fixture
def failed(sqs_client: Any, deploy_queue_stack: Any, env_name: str, aws_args: list[str]) -> Failed:
    return Failed(sqs_client, deploy_queue_stack(env_name), env_name, aws_args)


def document(capsys: Any, module: Any, argv: list[str], code: int = 0) -> Any:
    """Run `module` with `argv` (which has --json); its JSON document."""
    capsys.readouterr()
    assert module.main(argv) == code
    return json.loads(capsys.readouterr().out)


def by_reason(failed: Failed, capsys: Any, *extra: str) -> Any:
    return document(capsys, dlq, [*failed.args, "--by-reason", "--json", *extra])


def test_by_reason_counts_every_message_largest_first(failed: Failed, capsys: Any) -> None:
    report = by_reason(failed, capsys)
    assert (report["read"], report["max_messages"], report["complete"]) == (
        23,
        dlq.DEFAULT_MAX_MESSAGES,
        True,
    )
    assert report["stopped_at"] is None
    assert [(g["reason"], g["count"]) for g in report["reasons"]] == [
        (MOVED_BY_SQS, 12),
        (PERMANENT, 7),
        (MALFORMED, 4),
    ]
    shown = {g["reason"]: g["messages"] for g in report["reasons"]}
    assert [len(messages) for messages in shown.values()] == [dlq.DEFAULT_IDS_SHOWN] * 2 + [4]
    assert {m["source_message_id"] for m in shown[PERMANENT]} <= {f"perm-{n}" for n in range(7)}
    assert all(m["source_message_id"] == m["message_id"] for m in shown[MOVED_BY_SQS])
    # Nothing consumed: all 23 visible again at once.
    assert counts(failed.sqs, failed.dlq_url) == (23, 0)


def test_by_reason_text(failed: Failed, capsys: Any) -> None:
    capsys.readouterr()
    assert dlq.main([*failed.args, "--by-reason", "--ids", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    dlq_name = failed.dlq_url.rsplit("/", 1)[-1]
    assert lines[0] == f"{dlq_name}: read 23 messages, 3 reasons"
    assert lines[1] == f"12  {MOVED_BY_SQS}"
    assert lines[4] == "      ... and 10 more"
    assert lines[5] == f" 7  {PERMANENT}"
    assert lines[6].strip().startswith("perm-")
    assert lines[9] == f" 4  {MALFORMED}"
    assert len(lines) == 13


def test_by_reason_says_when_max_messages_stopped_it(failed: Failed, capsys: Any) -> None:
    report = by_reason(failed, capsys, "--max-messages", "15")
    assert (report["read"], report["complete"], report["stopped_at"]) == (
        15,
        False,
        "--max-messages 15",
    )
    assert sum(g["count"] for g in report["reasons"]) == 15
    capsys.readouterr()
    assert dlq.main([*failed.args, "--by-reason", "--max-messages", "15"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("(stopped at --max-messages 15: the DLQ may hold more)")
    assert counts(failed.sqs, failed.dlq_url) == (23, 0)


def test_by_reason_stops_before_what_it_read_can_reappear(
    failed: Failed, capsys: Any, monkeypatch: Any
) -> None:
    """A read longer than SCAN_READ_SECONDS would meet its first messages again (visible once
    SCAN_VISIBILITY_SECONDS pass) and take them for the end: it stops and says so."""
    monkeypatch.setattr(dlq, "SCAN_READ_SECONDS", 0)
    report = by_reason(failed, capsys)
    assert (report["read"], report["complete"], report["stopped_at"]) == (
        10,
        False,
        "0 s of reading",
    )
    capsys.readouterr()
    assert retry.main([*failed.args, "no-such-id"]) == 1
    assert capsys.readouterr().err == (
        "error: not in the DLQ: no-such-id (stopped at 0 s of reading: the DLQ may hold more); "
        "nothing retried\n"
    )
    assert counts(failed.sqs, failed.dlq_url) == (23, 0)


def moved_by_sqs_ids(failed: Failed, capsys: Any, how_many: int) -> list[str]:
    """DLQ ids of `how_many` messages SQS moved (their only id: no original one)."""
    report = by_reason(failed, capsys, "--ids", str(how_many))
    group = next(g for g in report["reasons"] if g["reason"] == MOVED_BY_SQS)
    return [m["message_id"] for m in group["messages"]]


def test_retry_by_id_moves_exactly_those_with_body_and_attributes(
    failed: Failed, capsys: Any
) -> None:
    (sqs_moved,) = moved_by_sqs_ids(failed, capsys, 1)
    report = document(capsys, retry, [*failed.args, "perm-2", "bad-0", sqs_moved, "--json"])
    assert report["retried"] == 3
    assert (report["dry_run"], report["read"]) == (False, 23)
    assert {m["source_message_id"] for m in report["messages"]} == {"perm-2", "bad-0", sqs_moved}
    assert counts(failed.sqs, failed.dlq_url) == (20, 0)
    # What a worker receives from the work queue: the same bodies, the producer's attribute,
    # under the new ids retry printed.
    back = {m["MessageId"]: m for m in drain(failed.sqs, failed.queue_url)}
    assert set(back) == {m["new_message_id"] for m in report["messages"]}
    bodies = {m["Body"] for m in back.values()}
    assert bodies == {"permanent 2", "malformed 0", "moved " + bodies_suffix(bodies)}
    by_body = {m["Body"]: m for m in back.values()}
    assert by_body["permanent 2"]["MessageAttributes"]["job"] == PRODUCER_ATTRIBUTE["job"]
    # The others stay: the remaining reasons' counts.
    left = by_reason(failed, capsys)
    assert [(g["reason"], g["count"]) for g in left["reasons"]] == [
        (MOVED_BY_SQS, 11),
        (PERMANENT, 6),
        (MALFORMED, 3),
    ]


def bodies_suffix(bodies: set[str]) -> str:
    """The number of the one `moved N` body among `bodies`."""
    (moved,) = [body for body in bodies if body.startswith("moved ")]
    return moved.removeprefix("moved ")


def test_retry_by_reason_moves_every_message_with_it(failed: Failed, capsys: Any) -> None:
    capsys.readouterr()
    assert retry.main([*failed.args, "--reason", MALFORMED]) == 0
    lines = capsys.readouterr().out.splitlines()
    dlq_name, queue_name = (url.rsplit("/", 1)[-1] for url in (failed.dlq_url, failed.queue_url))
    assert lines[0] == f"retried 4 messages from {dlq_name} to {queue_name}:"
    assert all(line.startswith("- bad-") and f"reason: {MALFORMED}" in line for line in lines[1:])
    assert len(lines) == 5
    bodies = sorted(m["Body"] for m in drain(failed.sqs, failed.queue_url))
    assert bodies == [f"malformed {n}" for n in range(4)]
    assert counts(failed.sqs, failed.dlq_url) == (19, 0)


def test_retry_dry_run_moves_nothing(failed: Failed, capsys: Any) -> None:
    report = document(capsys, retry, [*failed.args, "--reason", PERMANENT, "--dry-run", "--json"])
    assert (report["dry_run"], report["retried"], len(report["messages"])) == (True, 0, 7)
    assert "new_message_id" not in report["messages"][0]
    assert counts(failed.sqs, failed.dlq_url) == (23, 0)
    assert counts(failed.sqs, failed.queue_url) == (0, 0)


def test_unknown_ids_are_one_error_and_nothing_moves(failed: Failed, capsys: Any) -> None:
    capsys.readouterr()
    assert retry.main([*failed.args, "perm-1", "nope-1", "nope-2"]) == 1
    assert capsys.readouterr().err == "error: not in the DLQ: nope-1, nope-2; nothing retried\n"
    assert forget.main([*failed.args, "nope-3", "--yes"]) == 1
    assert capsys.readouterr().err == "error: not in the DLQ: nope-3; nothing deleted\n"
    assert retry.main([*failed.args, "--reason", "no such reason"]) == 1
    assert "no DLQ message has the reason 'no such reason'" in capsys.readouterr().err
    assert counts(failed.sqs, failed.dlq_url) == (23, 0)
    assert counts(failed.sqs, failed.queue_url) == (0, 0)


@pytest.mark.parametrize("module", [retry, forget])
def test_ids_or_reason_one_of_them(module: Any, capsys: Any) -> None:
    for extra in ([], ["an-id", "--reason", "boom"]):
        with pytest.raises(SystemExit) as exited:
            module.main(["--queue-url", "http://unused", *extra])
        assert exited.value.code == 2
        assert "give message IDs or --reason TEXT" in capsys.readouterr().err


def test_forget_yes_deletes_exactly_those(failed: Failed, capsys: Any) -> None:
    report = document(capsys, forget, [*failed.args, "perm-0", "perm-5", "--yes", "--json"])
    assert report["forgot"] == 2
    assert sorted(m["source_message_id"] for m in report["messages"]) == ["perm-0", "perm-5"]
    assert counts(failed.sqs, failed.dlq_url) == (21, 0)
    assert counts(failed.sqs, failed.queue_url) == (0, 0)
    capsys.readouterr()
    assert forget.main([*failed.args, "--reason", MOVED_BY_SQS, "--yes"]) == 0
    assert capsys.readouterr().out.startswith("forgot 12 messages of ")
    left = by_reason(failed, capsys)
    assert [(g["reason"], g["count"]) for g in left["reasons"]] == [(PERMANENT, 5), (MALFORMED, 4)]


def test_forget_refuses_without_a_terminal(failed: Failed, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    capsys.readouterr()
    assert forget.main([*failed.args, "--reason", MALFORMED]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: refusing to forget: no terminal to confirm on (pass --yes to skip the question)\n"
    )
    assert counts(failed.sqs, failed.dlq_url) == (23, 0)


@pytest.mark.parametrize("typed", ["4\n", "yes\n"])
def test_forget_typed_count_or_yes_confirms(
    failed: Failed, capsys: Any, monkeypatch: Any, typed: str
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(typed))
    capsys.readouterr()
    assert forget.main([*failed.args, "--reason", MALFORMED]) == 0
    out = capsys.readouterr().out
    assert "4 messages of " in out
    # (the answer's echo and its newline are the terminal's; the test's stdin has none)
    assert out.splitlines()[-1].startswith("type 4 or yes to delete them: forgot 4 messages of ")
    assert counts(failed.sqs, failed.dlq_url) == (19, 0)


@pytest.mark.parametrize("typed", ["3\n", "no\n", ""])
def test_forget_other_answers_abort(
    failed: Failed, capsys: Any, monkeypatch: Any, typed: str
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(typed))
    capsys.readouterr()
    assert forget.main([*failed.args, "--reason", MALFORMED]) == 1
    assert capsys.readouterr().err == "error: aborted: not confirmed; nothing deleted\n"
    assert counts(failed.sqs, failed.dlq_url) == (23, 0)


def test_forget_json_asks_on_stderr(failed: Failed, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("1\n"))
    report = document(capsys, forget, [*failed.args, "bad-3", "--json"])
    assert (report["forgot"], report["gone"]) == (1, 0)
    assert report["messages"][0]["source_message_id"] == "bad-3"
    assert counts(failed.sqs, failed.dlq_url) == (22, 0)


def test_forget_deletes_only_what_is_still_there_after_the_question(
    failed: Failed, capsys: Any, monkeypatch: Any
) -> None:
    """While the operator answers, another one retries one of the four: forget deletes the
    other three, says one had left, and deletes nothing it did not list."""

    def answered_while_one_leaves(*_: Any, **__: Any) -> bool:
        assert retry.main([*failed.args, "bad-2"]) == 0
        send(failed.sqs, failed.dlq_url, ["malformed 9"], dead_lettered(MALFORMED, "bad-9"))
        return True

    monkeypatch.setattr(forget, "confirm", answered_while_one_leaves)
    capsys.readouterr()
    assert forget.main([*failed.args, "--reason", MALFORMED]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("forgot 3 messages of ")
    assert last.endswith(" (1 had left the DLQ meanwhile)")
    left = by_reason(failed, capsys, "--ids", "10")
    malformed = next(g for g in left["reasons"] if g["reason"] == MALFORMED)
    assert [m["source_message_id"] for m in malformed["messages"]] == ["bad-9"]
    assert [m["Body"] for m in drain(failed.sqs, failed.queue_url)] == ["malformed 2"]
