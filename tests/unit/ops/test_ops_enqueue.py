"""scripts.operate.enqueue: body generation, sending, pacing, --env, dry run, argument errors."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from ops_helpers import drain_fifo

from scripts.capacity.sim.inputs import Problems
from scripts.operate import enqueue
from tests.sqs_helpers import drain
from tests.sqs_helpers import queue_counts as counts


def test_make_bodies_mixes_poison_and_malformed_into_count() -> None:
    bodies = enqueue.make_bodies(50, "uniform:30:300", poison=4, malformed=3, seed=1)
    assert len(bodies) == 50
    malformed = [body for body in bodies if not body.startswith("{")]
    jobs = [json.loads(body) for body in bodies if body.startswith("{")]
    assert len(malformed) == 3
    for body in malformed:
        with pytest.raises(ValueError):
            json.loads(body)
    assert sum(job.get("fail", False) for job in jobs) == 4
    assert all(30 <= job["duration_seconds"] <= 300 for job in jobs)
    assert len({job["duration_seconds"] for job in jobs}) > 40  # really sampled


def test_make_bodies_is_reproducible_with_a_seed() -> None:
    first = enqueue.make_bodies(20, "uniform:1:2", poison=2, seed=7)
    assert first == enqueue.make_bodies(20, "uniform:1:2", poison=2, seed=7)
    assert first != enqueue.make_bodies(20, "uniform:1:2", poison=2, seed=8)


def test_make_bodies_fixed_duration() -> None:
    assert enqueue.make_bodies(2, 1.5) == ['{"duration_seconds": 1.5}'] * 2


@pytest.mark.parametrize("spec", ["120", "fixed:120", "uniform:30:300"])
def test_every_duration_the_planner_takes_enqueue_takes_alike(spec: str) -> None:
    """One --duration syntax across the CLI: what plan and simulate read (Problems.durations)
    sends jobs of those seconds."""
    planned = Problems().durations("--duration", spec)
    jobs = [json.loads(body) for body in enqueue.make_bodies(50, spec, seed=1)]
    assert all(planned.low <= job["duration_seconds"] <= planned.high for job in jobs)


@pytest.mark.parametrize(
    "spec",
    ["", "abc", "-1", "uniform:5", "uniform:5:1", "uniform:1:2:3", "fixed:", "fixed:x", "x:1"],
)
def test_bad_duration_is_rejected(spec: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        enqueue.make_bodies(1, spec)


def test_too_many_bad_bodies_is_rejected() -> None:
    with pytest.raises(ValueError, match="exceeds count"):
        enqueue.make_bodies(3, 1, poison=2, malformed=2)


def test_sends_count_messages(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = make_queue_pair()
    argv = [*aws_args, "--queue-url", pair.url, "--count", "25", "--poison", "2", "--seed", "3"]
    assert enqueue.main(argv) == 0
    assert "sent 25 messages" in capsys.readouterr().out
    bodies = [message["Body"] for message in drain(sqs_client, pair.url)]
    assert sorted(bodies) == sorted(enqueue.make_bodies(25, "1.0", 2, 0, 3))


def test_sends_the_lines_of_a_body_file(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], tmp_path: Any
) -> None:
    pair = make_queue_pair()
    lines = ['{"duration_seconds": 2}', "", '{"order": 17}', "not json"]
    body_file = tmp_path / "bodies.jsonl"
    body_file.write_text("\n".join(lines) + "\n")
    argv = [*aws_args, "--queue-url", pair.url, "--body-file", str(body_file)]
    assert enqueue.main(argv) == 0
    received = sorted(message["Body"] for message in drain(sqs_client, pair.url))
    assert received == sorted(line for line in lines if line)


def test_rate_paces_the_sends(sqs_client: Any, make_queue_pair: Any, aws_args: list[str]) -> None:
    pair = make_queue_pair()
    started = time.monotonic()
    argv = [*aws_args, "--queue-url", pair.url, "--count", "21", "--rate", "40"]
    assert enqueue.main(argv) == 0
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2  # batches of 10 leave at 0, 0.25 and 0.5 s
    assert counts(sqs_client, pair.url) == (21, 0)


def test_env_reads_the_queue_from_the_stack(
    sqs_client: Any, deploy_queue_stack: Any, env_name: str, aws_args: list[str]
) -> None:
    outputs = deploy_queue_stack(env_name)
    assert enqueue.main([*aws_args, "--env", env_name, "--count", "3"]) == 0
    assert counts(sqs_client, outputs["QueueUrl"]) == (3, 0)
    assert counts(sqs_client, outputs["DeadLetterQueueUrl"]) == (0, 0)


def test_dry_run_sends_nothing(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], capsys: Any
) -> None:
    pair = make_queue_pair()
    argv = [*aws_args, "--queue-url", pair.url, "--count", "5", "--dry-run"]
    assert enqueue.main(argv) == 0
    assert "dry run: would send 5 messages" in capsys.readouterr().out
    assert counts(sqs_client, pair.url) == (0, 0)


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ([], "exactly one of --count and --body-file"),
        (["--count", "2", "--body-file", "x"], "exactly one of --count and --body-file"),
        (["--count", "0"], "must be at least 1"),
        (["--count", "2", "--duration", "uniform:9"], "bad duration"),
        (["--count", "2", "--poison", "2", "--malformed", "1"], "must not exceed --count"),
        (["--count", "2", "--rate", "-1"], "must be at least 0"),
        (["--body-file", "x", "--poison", "1"], "only apply to generated bodies"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    make_queue_pair: Any, aws_args: list[str], capsys: Any, extra: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        enqueue.main([*aws_args, "--queue-url", "http://unused", *extra])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert complaint in err
    assert err.count("\n") == 1


def test_fifo_sends_to_the_group_in_order(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str], tmp_path: Any
) -> None:
    pair = make_queue_pair(fifo=True)  # content-based deduplication
    body_file = tmp_path / "bodies.jsonl"
    body_file.write_text("".join(f'{{"order": {n}}}\n' for n in range(12)))
    argv = [*aws_args, "--queue-url", pair.url, "--body-file", str(body_file)]
    assert enqueue.main([*argv, "--group-id", "orders-42"]) == 0
    received = drain_fifo(sqs_client, pair.url)
    assert [message["Body"] for message in received] == body_file.read_text().splitlines()
    assert {message["Attributes"]["MessageGroupId"] for message in received} == {"orders-42"}


def test_fifo_without_content_deduplication_takes_a_deduplication_id(
    sqs_client: Any, make_queue_pair: Any, aws_args: list[str]
) -> None:
    fifo = make_queue_pair(fifo=True).dlq_url  # a FIFO queue without content-based dedup
    argv = [*aws_args, "--queue-url", fifo, "--count", "1", "--group-id", "g"]
    assert enqueue.main([*argv, "--deduplication-id", "job-1"]) == 0
    (message,) = drain_fifo(sqs_client, fifo)
    assert message["Attributes"]["MessageDeduplicationId"] == "job-1"
    assert message["Attributes"]["MessageGroupId"] == "g"


@pytest.mark.parametrize(
    ("fifo", "queue", "extra", "complaint"),
    [
        (True, "url", ["--count", "1"], "is a FIFO queue: give --group-id"),
        (True, "dlq_url", ["--count", "1", "--group-id", "g"], "give --deduplication-id"),
        (
            True,
            "dlq_url",
            ["--count", "2", "--group-id", "g", "--deduplication-id", "d"],
            "--deduplication-id names one message, not 2",
        ),
        (False, "url", ["--count", "1", "--group-id", "g"], "apply to a FIFO queue (*.fifo) only"),
        (False, "url", ["--count", "1", "--deduplication-id", "d"], "is a standard queue"),
    ],
)
def test_fifo_options_that_do_not_fit_the_queue_exit_2(
    sqs_client: Any,
    make_queue_pair: Any,
    aws_args: list[str],
    capsys: Any,
    fifo: bool,
    queue: str,
    extra: list[str],
    complaint: str,
) -> None:
    url = getattr(make_queue_pair(fifo=fifo), queue)
    with pytest.raises(SystemExit) as exited:
        enqueue.main([*aws_args, "--queue-url", url, *extra])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert complaint in err
    assert err.count("\n") == 1
    assert counts(sqs_client, url) == (0, 0)
