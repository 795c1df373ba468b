"""Errors every operator script reports as one line with exit code 2 (no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scripts import dlq, enqueue, purge, redrive
from scripts._sqs import run

ROOT = Path(__file__).resolve().parents[3]
# Each script with the arguments that make it do its main work.
SCRIPTS = [
    pytest.param(enqueue, ["--count", "1"], id="enqueue"),
    pytest.param(dlq, [], id="dlq"),
    pytest.param(redrive, ["--method", "copy"], id="redrive"),
    pytest.param(purge, ["--yes"], id="purge"),
]


def one_error_line(capsys: Any) -> str:
    """The single stderr line of a failed run."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return str(lines[0])


@pytest.mark.parametrize(("script", "work"), SCRIPTS)
def test_missing_queue(
    script: ModuleType, work: list[str], aws_args: list[str], moto_endpoint: str, capsys: Any
) -> None:
    missing = f"{moto_endpoint}/123456789012/no-such-queue"
    assert run(script.main, [*aws_args, "--queue-url", missing, *work]) == 2
    assert f"queue does not exist: {missing}" in one_error_line(capsys)


@pytest.mark.parametrize(("script", "work"), SCRIPTS)
def test_no_credentials(
    script: ModuleType,
    work: list[str],
    aws_args: list[str],
    make_queue_pair: Any,
    capsys: Any,
    no_credentials: None,
) -> None:
    pair = make_queue_pair()  # created before the credentials disappear
    assert run(script.main, [*aws_args, "--queue-url", pair.url, *work]) == 2
    assert "no AWS credentials" in one_error_line(capsys)


@pytest.mark.parametrize(("script", "work"), SCRIPTS)
def test_missing_stack(
    script: ModuleType, work: list[str], aws_args: list[str], env_name: str, capsys: Any
) -> None:
    assert run(script.main, [*aws_args, "--env", env_name, *work]) == 2
    line = one_error_line(capsys)
    assert f"stack QueueWorker-{env_name}-Queue does not exist in ap-northeast-1" in line


def test_missing_stack_output(
    aws_args: list[str], deploy_queue_stack: Any, env_name: str, capsys: Any
) -> None:
    template = {"Resources": {"OnlyAQueue": {"Type": "AWS::SQS::Queue"}}}
    deploy_queue_stack(env_name, template)
    assert run(dlq.main, [*aws_args, "--env", env_name]) == 2
    assert "has no output DeadLetterQueueUrl (outputs: none)" in one_error_line(capsys)


def test_queue_without_redrive_policy_has_no_dlq(
    aws_args: list[str], sqs_client: Any, capsys: Any
) -> None:
    url = sqs_client.create_queue(QueueName="lonely-queue")["QueueUrl"]
    assert run(dlq.main, [*aws_args, "--queue-url", url]) == 2
    assert "lonely-queue has no redrive policy" in one_error_line(capsys)


@pytest.mark.parametrize(("script", "work"), SCRIPTS)
def test_queue_target_is_required(script: ModuleType, work: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        script.main(work)
    assert exited.value.code == 2
    assert "one of the arguments --queue-url --env is required" in capsys.readouterr().err


@pytest.mark.parametrize(("script", "work"), SCRIPTS)
def test_runs_as_a_module(script: ModuleType, work: list[str], moto_endpoint: str) -> None:
    """`python -m scripts.NAME` has --help, and fails on a missing queue without a traceback."""
    command = [sys.executable, "-m", script.__name__]
    helped = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert helped.returncode == 0
    assert "--queue-url" in helped.stdout
    missing = f"{moto_endpoint}/123456789012/no-such-queue"
    target = ["--queue-url", missing, "--endpoint-url", moto_endpoint]
    failed = subprocess.run([*command, *target, *work], cwd=ROOT, capture_output=True, text=True)
    assert failed.returncode == 2
    assert failed.stderr == f"error: queue does not exist: {missing}\n"


def test_region_from_aws_region_or_a_clear_error(
    make_queue_pair: Any, moto_endpoint: str, monkeypatch: Any, tmp_path: Path, capsys: Any
) -> None:
    pair = make_queue_pair()
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setattr("boto3.DEFAULT_SESSION", None)
    argv = ["--endpoint-url", moto_endpoint, "--queue-url", pair.url, "--samples", "0"]
    assert run(dlq.main, argv) == 0  # AWS_REGION alone is enough
    monkeypatch.delenv("AWS_REGION")
    assert run(dlq.main, argv) == 2
    assert "no AWS region: pass --region or set AWS_REGION" in one_error_line(capsys)
