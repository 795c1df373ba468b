"""The contract between the worker and the operator commands, end to end.

A real supervisord fleet (tests/integration/fleet.py: `python -m worker.supervise`, here with
2 processes: the names under test do not depend on the fleet's size) dead-letters a poison
message against moto's server; then `python -m scripts dlq` and `python -m scripts redrive`
run as an operator types them (subprocesses, the queue given by the name `status` shows).
What the operator sees must be what the worker wrote: the reason, and the message's original
id, the one the worker's log lines (and so `logs --message-id` and the `message-story` query)
carry. Finally the message is back on the work queue.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from worker.contract import SOURCE_MESSAGE_ID_ATTRIBUTE

from tests.integration.fleet import ROOT, queue_depth, send_jobs
from tests.sqs_helpers import drain, queue_counts

REGION = "ap-northeast-1"


def command(
    verb: str, *args: str, endpoint: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m scripts VERB ...` as typed in a terminal, against moto."""
    return subprocess.run(
        [sys.executable, "-m", "scripts", verb, *args, "--endpoint-url", endpoint],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_dlq_shows_the_workers_reason_and_original_id_then_redrive_brings_it_back(
    make_fleet: Any, make_queue_pair: Any, sqs_client: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    pair = make_queue_pair(max_receive_count=3)
    fleet = make_fleet(QUEUE_URL=pair.url, DEAD_LETTER_QUEUE_URL=pair.dlq_url, WORKER_PROCESSES=2)
    [original_id] = send_jobs(sqs_client, pair.url, tmp_path / "record", permanent=True)
    fleet.wait_for(lambda: len(fleet.jobs("dead_letter")) == 1)
    assert fleet.stop() == 0  # nobody consumes the work queue from here on
    [job_line] = fleet.jobs("dead_letter")
    assert job_line["message_id"] == original_id
    assert queue_counts(sqs_client, pair.dlq_url) == (1, 0)

    queue = pair.url.rsplit("/", 1)[-1]
    peeked = command("dlq", "--queue", queue, "--region", REGION, "--json", endpoint=moto_endpoint)
    assert peeked.returncode == 0, peeked.stderr
    [sample] = json.loads(peeked.stdout)["samples"]
    assert sample["reason"] == job_line["error"]
    assert "asked to fail permanently" in sample["reason"]
    assert sample["source_message_id"] == original_id
    assert sample["message_id"] != original_id  # the DLQ copy has an id of its own

    shown = command("dlq", "--queue", queue, "--region", REGION, endpoint=moto_endpoint)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1].startswith(f"- {original_id}  sent ")
    assert f"reason: {job_line['error']}" in shown.stdout

    redriven = command("redrive", "--queue", queue, "--region", REGION, endpoint=moto_endpoint)
    assert redriven.returncode == 0, redriven.stderr
    dlq_name = pair.dlq_url.rsplit("/", 1)[-1]
    assert redriven.stdout == f"moved 1 messages from {dlq_name} to {queue} (copy)\n"
    assert queue_counts(sqs_client, pair.dlq_url) == (0, 0)
    [back] = drain(sqs_client, pair.url)
    assert json.loads(back["Body"])["permanent"] is True


def test_a_redriven_message_reaches_the_handler_with_every_attribute_it_was_sent_with(
    make_fleet: Any, make_queue_pair: Any, sqs_client: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """10 attributes (one Binary) are more than a DLQ copy keeps as they are: the worker folds
    them, `redrive` moves the copy back, and the worker's next run of the message hands the
    command exactly what the producer sent (a framework decodes from them: Symfony's type)."""
    pair = make_queue_pair(max_receive_count=3)
    seen = tmp_path / "attributes"
    attributes = {
        "type": {"DataType": "String", "StringValue": "App\\Message\\Ping"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffraw"},
        **{f"h{i}": {"DataType": "String", "StringValue": f"v{i}"} for i in range(8)},
    }
    sqs_client.send_message(QueueUrl=pair.url, MessageBody="{}", MessageAttributes=attributes)

    def run_once(command: str, outcome: str) -> None:
        fleet = make_fleet(
            QUEUE_URL=pair.url,
            DEAD_LETTER_QUEUE_URL=pair.dlq_url,
            WORKER_PROCESSES=2,
            WORKER_HANDLER_MODE="command",
            WORKER_HANDLER=command,
        )
        fleet.wait_for(lambda: len(fleet.jobs(outcome)) == 1)
        assert fleet.stop() == 0

    record = f"printenv WORKER_MESSAGE_ATTRIBUTES >> {seen}"
    run_once(f"{record}; exit 65", "dead_letter")  # 65: to the DLQ at once, attributes folded
    queue = pair.url.rsplit("/", 1)[-1]
    redriven = command("redrive", "--queue", queue, "--region", REGION, endpoint=moto_endpoint)
    assert redriven.returncode == 0, redriven.stderr
    run_once(record, "done")
    first, again = map(json.loads, seen.read_text().splitlines())
    assert again == first
    assert again["type"]["StringValue"] == "App\\Message\\Ping"
    assert again["blob"]["BinaryValue"] == "AP9yYXc="  # base64 of b"\x00\xffraw"
    assert len(again) == 10


def test_redrive_copy_next_to_a_fleet_that_dead_letters_at_once_copies_each_message_once(
    make_fleet: Any, make_queue_pair: Any, sqs_client: Any, moto_endpoint: str
) -> None:
    """8 processes in command mode whose command exits 65 (EX_DATAERR): each message they get
    goes straight back to the DLQ as a new copy. `redrive --method copy` without `--limit` used
    to copy those copies again and again and never end (a `fail()` job went round 1,179 times
    in 3 minutes): it must end, having copied each message the DLQ held at its start once."""
    pair = make_queue_pair(max_receive_count=3)
    bodies = [json.dumps({"job": n}) for n in range(25)]
    for body in bodies:
        sqs_client.send_message(QueueUrl=pair.dlq_url, MessageBody=body)
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=8,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER="exit 65",
    )
    fleet.wait_for(lambda: len(fleet.worker_pids()) == 8)

    queue = pair.url.rsplit("/", 1)[-1]
    redriven = command(
        "redrive", "--queue", queue, "--region", REGION, "--method", "copy",
        endpoint=moto_endpoint, timeout=60,
    )  # fmt: skip
    assert redriven.returncode == 0, redriven.stderr
    dlq_name = pair.dlq_url.rsplit("/", 1)[-1]
    assert redriven.stdout.startswith(f"moved 25 messages from {dlq_name} to {queue} (copy)")

    # The fleet dead-letters every copy once more; then nothing moves any more.
    fleet.wait_for(
        lambda: (
            queue_counts(sqs_client, pair.dlq_url) == (25, 0)
            and queue_depth(sqs_client, pair.url) == 0
        )
    )
    assert fleet.stop() == 0
    jobs = fleet.jobs()
    assert [j["outcome"] for j in jobs] == ["dead_letter"] * 25
    back = drain(sqs_client, pair.dlq_url)
    assert sorted(m["Body"] for m in back) == sorted(bodies)  # each original once, none lost
    sources = {m["MessageAttributes"][SOURCE_MESSAGE_ID_ATTRIBUTE]["StringValue"] for m in back}
    assert sources == {j["message_id"] for j in jobs}


def test_retry_by_original_id_runs_that_job_again_on_the_fleet_and_leaves_the_other(
    make_fleet: Any, make_queue_pair: Any, sqs_client: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """Horizon's `queue:failed` then `queue:retry ID`: two jobs the fleet dead-letters (its
    command exits 65 until the "fix" lands), `dlq --by-reason` counts them under the worker's
    reason, `retry ORIGINAL_ID` sends one back, and the running fleet does it: the job line
    carries the new id retry printed; the other stays in the DLQ."""
    pair = make_queue_pair(max_receive_count=3)
    fixed = tmp_path / "fixed"
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=2,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=f"test -e {fixed} || exit 65",
    )
    ids = [
        sqs_client.send_message(QueueUrl=pair.url, MessageBody=json.dumps({"job": n}))["MessageId"]
        for n in range(2)
    ]
    fleet.wait_for(lambda: len(fleet.jobs("dead_letter")) == 2)
    fleet.wait_for(lambda: queue_counts(sqs_client, pair.dlq_url) == (2, 0))
    queue = pair.url.rsplit("/", 1)[-1]
    counted = command(
        "dlq", "--queue", queue, "--region", REGION, "--by-reason", "--json",
        endpoint=moto_endpoint,
    )  # fmt: skip
    assert counted.returncode == 0, counted.stderr
    [group] = json.loads(counted.stdout)["reasons"]
    assert group["count"] == 2
    assert {m["source_message_id"] for m in group["messages"]} == set(ids)

    fixed.touch()
    retried = command(
        "retry", "--queue", queue, "--region", REGION, ids[0], "--json", endpoint=moto_endpoint
    )
    assert retried.returncode == 0, retried.stderr
    [moved] = json.loads(retried.stdout)["messages"]
    assert (moved["source_message_id"], moved["reason"]) == (ids[0], group["reason"])
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 1)
    assert fleet.stop() == 0
    [done] = fleet.jobs("done")
    assert done["message_id"] == moved["new_message_id"]
    [left] = drain(sqs_client, pair.dlq_url)
    assert left["MessageAttributes"][SOURCE_MESSAGE_ID_ATTRIBUTE]["StringValue"] == ids[1]
    assert queue_counts(sqs_client, pair.url) == (0, 0)
