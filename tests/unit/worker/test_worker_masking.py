"""Secret values never reach the log: the variables WORKER_SECRET_NAMES names (set by the worker
stack for `worker.secrets`) are masked in every logged string, a command's output included."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from worker import contract
from worker.app import main
from worker.handlers import MAX_OUTPUT_EVENT_BYTES, CommandRunner, JobContext
from worker.logs import EventLog
from worker.masking import MASK, MIN_SECRET_CHARS, SecretMask, secret_values

from tests.unit.worker.conftest import FAST

SECRET = "s3cr3t-Pa55word"
CTX = JobContext(message_id="m-1", receive_count=1)


def never() -> bool:
    return False


def lines(stream: io.StringIO, event: str | None = None) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [r for r in records if event is None or r["event"] == event]


def secret_env(**values: str) -> dict[str, str]:
    return {contract.SECRET_NAMES_VARIABLE: ",".join(sorted(values)), **values}


def test_the_values_of_the_named_variables_are_secret() -> None:
    env = {**secret_env(DB_PASSWORD=SECRET, API_TOKEN="tok-123456"), "QUEUE_URL": "https://q"}
    assert secret_values(env) == (SECRET, "tok-123456")


def test_without_the_variable_nothing_is_secret() -> None:
    assert secret_values({"DB_PASSWORD": SECRET}) == ()


def test_short_values_are_not_masked() -> None:
    assert secret_values(secret_env(PIN="1" * (MIN_SECRET_CHARS - 1))) == ()


def test_a_urls_password_and_a_json_secrets_strings_are_secret_too() -> None:
    env = secret_env(
        DATABASE_URL="mysql://app:p%40ss-word@db:3306/app",
        APP=json.dumps({"username": "app-user", "password": "json-pass-1", "port": 5432}),
    )
    values = secret_values(env)
    assert {"p%40ss-word", "p@ss-word", "app-user", "json-pass-1"} <= set(values)


def test_every_string_field_of_a_log_line_is_masked() -> None:
    stream = io.StringIO()
    log = EventLog("worker_test", stream, mask=SecretMask([SECRET]))
    log.error("job", error=f"cannot connect with {SECRET}", messages=[{"id": SECRET}], count=3)
    (line,) = lines(stream)
    assert SECRET not in stream.getvalue()
    assert line["error"] == f"cannot connect with {MASK}"
    assert line["messages"] == [{"id": MASK}]
    assert line["count"] == 3


def command_output(
    command: str, monkeypatch: pytest.MonkeyPatch, **values: str
) -> tuple[list[dict[str, Any]], str]:
    env = secret_env(**values)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = io.StringIO()
    runner = CommandRunner(command, EventLog("worker_test", stream, SecretMask(secret_values(env))))
    assert runner.run("", CTX, 10, never).outcome == contract.DONE
    return lines(stream, contract.JOB_OUTPUT_EVENT), stream.getvalue()


def test_a_command_printing_a_secret_logs_the_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    output, logged = command_output(
        'echo "connecting with $DB_PASSWORD"; echo "$DB_PASSWORD" >&2',
        monkeypatch,
        DB_PASSWORD=SECRET,
    )
    assert SECRET not in logged
    texts = {(o[contract.OUTPUT_STREAM], o[contract.OUTPUT_TEXT]) for o in output}
    assert texts == {("stdout", f"connecting with {MASK}"), ("stderr", MASK)}


@pytest.mark.parametrize("offset", [1, len(SECRET) // 2, len(SECRET) - 1])
def test_a_secret_split_by_a_cut_line_is_masked_whole(
    monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    """A line longer than an event is cut at MAX_OUTPUT_EVENT_BYTES: here inside the secret."""
    pad = MAX_OUTPUT_EVENT_BYTES - offset
    command = f'{sys.executable} -c \'import os; print("x" * {pad} + os.environ["DB_PASSWORD"])\''
    output, logged = command_output(command, monkeypatch, DB_PASSWORD=SECRET)
    assert SECRET not in logged
    assert len(output) == 2 and output[0]["truncated"] and output[1]["continued"]
    assert output[0][contract.OUTPUT_TEXT] == "x" * pad  # the secret's start went on with it
    assert "".join(o[contract.OUTPUT_TEXT] for o in output) == "x" * pad + MASK


def test_the_worker_masks_the_secrets_it_is_given(
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """The process as supervisord starts it (worker.app.main): a command that prints the secret
    and fails with it as its reason; the log and the DLQ copy's reason hold the mask."""
    pair = make_queue_pair(max_receive_count=3, visibility_timeout=2)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    job = tmp_path / "job.sh"
    job.write_text(
        'echo "password=$DB_PASSWORD"\n'
        'printf \'{"reason": "bad %s"}\' "$DB_PASSWORD" > "$WORKER_RESULT_FILE"\n'
        "exit 65\n"
    )
    env = {
        **FAST,
        **secret_env(DB_PASSWORD=SECRET),
        "QUEUE_URL": pair.url,
        "DEAD_LETTER_QUEUE_URL": pair.dlq_url,
        "WORKER_HANDLER_MODE": "command",
        "WORKER_HANDLER": f"sh {job}",
        "MAX_JOBS_PER_PROCESS": "1",
    }
    monkeypatch.setenv("DB_PASSWORD", SECRET)  # ECS puts the value in the environment
    sqs_client.send_message(QueueUrl=pair.url, MessageBody="{}")
    assert main(env) == 0
    logged = capsys.readouterr().out
    assert SECRET not in logged
    records = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    outputs = [r[contract.OUTPUT_TEXT] for r in records if r["event"] == contract.JOB_OUTPUT_EVENT]
    assert outputs == [f"password={MASK}"]
    (job,) = [r for r in records if r["event"] == contract.JOB_EVENT]
    assert job["outcome"] == contract.DEAD_LETTER and job["error"] == f"bad {MASK}"
    (copy,) = sqs_client.receive_message(
        QueueUrl=pair.dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    reason = copy["MessageAttributes"][contract.FAILURE_REASON_ATTRIBUTE]["StringValue"]
    assert reason == f"bad {MASK}"  # what `python -m scripts dlq` shows
