"""Errors every AWS command reports as one line on stderr with exit code 1 (no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts.__main__ import COMMANDS as VERBS
from scripts.__main__ import main
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
# Each AWS command with the arguments that make it do its main work.
QUEUE_COMMANDS = [
    pytest.param(["enqueue", "--count", "1"], id="enqueue"),
    pytest.param(["dlq"], id="dlq"),
    pytest.param(["dlq", "--by-reason"], id="dlq-by-reason"),
    pytest.param(["redrive", "--method", "copy"], id="redrive"),
    pytest.param(["retry", "--reason", "boom"], id="retry"),
    pytest.param(["forget", "some-id", "--yes"], id="forget"),
    pytest.param(["purge", "--yes"], id="purge"),
    pytest.param(["pause"], id="pause"),
    pytest.param(["continue"], id="continue"),
]
ENV_COMMANDS = [
    pytest.param(["status"], id="status"),
    pytest.param(["logs"], id="logs"),
]
COMMANDS = QUEUE_COMMANDS + ENV_COMMANDS


def one_error_line(capsys: Any) -> str:
    """The single stderr line of a failed run."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return str(lines[0])


@pytest.mark.parametrize("work", COMMANDS)
def test_no_credentials(
    work: list[str],
    aws_args: list[str],
    deploy_environment: Any,
    env_name: str,
    capsys: Any,
    no_credentials: None,
) -> None:
    deploy_environment(env_name)  # created before the credentials disappear
    assert main([work[0], *aws_args, "--env", env_name, *work[1:]]) == 1
    assert "no AWS credentials found" in one_error_line(capsys)


@pytest.mark.parametrize("work", COMMANDS)
def test_missing_stack(work: list[str], aws_args: list[str], env_name: str, capsys: Any) -> None:
    assert main([work[0], *aws_args, "--env", env_name, *work[1:]]) == 1
    line = one_error_line(capsys)
    assert f"error: stack QueueWorker-{env_name}-" in line
    assert "does not exist in ap-northeast-1 (deploy it first)" in line


@pytest.mark.parametrize("work", COMMANDS)
def test_unknown_environment(work: list[str], aws_args: list[str], capsys: Any) -> None:
    assert main([work[0], *aws_args, "--env", "nope", *work[1:]]) == 1
    assert "error: unknown environment 'nope' (environments in " in one_error_line(capsys)


@pytest.mark.parametrize("work", COMMANDS)
def test_endpoint_down(
    work: list[str],
    aws_args: list[str],
    env_name: str,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing listens on the endpoint (one attempt instead of boto3's retries, for speed)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    down = f"http://127.0.0.1:{free_port()}"
    assert main([work[0], *aws_args, "--env", env_name, *work[1:], "--endpoint-url", down]) == 1
    assert f"error: cannot reach the AWS endpoint: {down}/" in one_error_line(capsys)


@pytest.mark.parametrize("work", QUEUE_COMMANDS)
def test_missing_queue(work: list[str], aws_args: list[str], capsys: Any) -> None:
    assert main([work[0], *aws_args, "--queue", "no-such-queue", *work[1:]]) == 1
    assert one_error_line(capsys) == "error: queue does not exist: no-such-queue"


def test_missing_stack_output(
    aws_args: list[str], deploy_queue_stack: Any, env_name: str, capsys: Any
) -> None:
    template = {"Resources": {"OnlyAQueue": {"Type": "AWS::SQS::Queue"}}}
    deploy_queue_stack(env_name, template)
    assert main(["dlq", *aws_args, "--env", env_name]) == 1
    assert "has no output DeadLetterQueueUrl (outputs: none)" in one_error_line(capsys)


def test_queue_without_redrive_policy_has_no_dlq(
    aws_args: list[str], sqs_client: Any, capsys: Any
) -> None:
    url = sqs_client.create_queue(QueueName="lonely-queue")["QueueUrl"]
    assert main(["dlq", *aws_args, "--queue", url]) == 1
    assert "lonely-queue has no redrive policy" in one_error_line(capsys)


@pytest.mark.parametrize("work", QUEUE_COMMANDS)
def test_queue_target_is_required(work: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        main(work)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"python -m scripts {work[0]}: error: one of the arguments --env --queue/--queue-url "
        "is required (see --help)\n"
    )


@pytest.mark.parametrize("work", COMMANDS)
def test_runs_as_typed(work: list[str], moto_endpoint: str) -> None:
    """`python -m scripts VERB` (as help shows it) and `python -m scripts.MODULE` both run:
    --help works, and a missing environment is one line, exit 1, no traceback."""
    module = VERBS[work[0]].__name__  # e.g. scripts.operate.status
    for command in ([sys.executable, "-m", "scripts", work[0]], [sys.executable, "-m", module]):
        helped = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True)
        assert helped.returncode == 0
        prog = " ".join(["python", *command[1:]])
        assert helped.stdout.startswith(f"usage: {prog} ")
        failed = subprocess.run(
            [*command, "--env", "nope", "--endpoint-url", moto_endpoint, *work[1:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert failed.returncode == 1
        assert failed.stderr.startswith("error: unknown environment 'nope'")
        assert failed.stderr.count("\n") == 1


def test_region_from_aws_region_or_a_clear_error(
    make_queue_pair: Any, moto_endpoint: str, monkeypatch: Any, tmp_path: Path, capsys: Any
) -> None:
    pair = make_queue_pair()
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setattr("boto3.DEFAULT_SESSION", None)
    argv = ["dlq", "--endpoint-url", moto_endpoint, "--queue", pair.url, "--samples", "0"]
    assert main(argv) == 0  # AWS_REGION alone is enough
    monkeypatch.delenv("AWS_REGION")
    assert main(argv) == 1
    assert "no AWS region: pass --region or set AWS_REGION" in one_error_line(capsys)


def test_a_closed_pipe_ends_quietly() -> None:
    """`plan --json | head -1`: no BrokenPipeError traceback; the reader chose to stop."""
    command = f"{sys.executable} -m scripts plan --messages 2000 --duration uniform:30:300 --json"
    done = subprocess.run(
        f"{command} | head -1; echo rc=${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.stdout == "{\nrc=0\n"
    assert done.stderr == ""


def test_unknown_option_names_the_verb(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--messages", "10", "--duration", "5", "--endpoint-url", "x"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "python -m scripts plan: error: unrecognized arguments: --endpoint-url x (see --help)\n"
    )
