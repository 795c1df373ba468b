"""`queue-worker local-stack`: dev's synthesized stacks stood up in moto, the real fleet on them,
and the operator commands run from other processes as another terminal would run them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts._aws import QUEUE_STACK_OUTPUTS, WORKER_STACK_OUTPUTS
from scripts.devtools.local_run import CountingMoto
from scripts.devtools.local_stack import (
    DEPLOYED_BY_CLOUDFORMATION,
    Template,
    create_queues,
    stand_up,
)
from tests.conftest import free_port
from tests.infra.conftest import synthesize
from tests.integration.fleet import ROOT

ENV = "dev"
READY_END = "Ctrl-C here stops the fleet and the server."


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cdk.out whose dev assembly is dev as cdk.json has it, synthesized."""
    directory = tmp_path_factory.mktemp("cdk.out")
    (directory / ENV).symlink_to(synthesize(ENV).outdir)
    return directory


def local_stack(cdk_out: Path, run_dir: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m scripts local-stack --env dev ...` as typed in the first terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "scripts", "local-stack", "--env", ENV, "--cdk-out", str(cdk_out),
         "--run-dir", str(run_dir), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def other_terminal(exports: str) -> dict[str, str]:
    """The environment after the ready block's `export ...` line."""
    assert exports.startswith("export ")
    env = {**os.environ}
    env.pop("AWS_SESSION_TOKEN", None)
    for assignment in exports.removeprefix("export ").split():
        name, value = assignment.split("=", 1)
        env[name] = value
    return env


def operator(verb: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m scripts VERB --env dev ...` in the other terminal."""
    return subprocess.run(
        [sys.executable, "-m", "scripts", verb, "--env", ENV, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def until(check: Any, timeout: float = 60) -> Any:
    """Poll `check()` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
    return value


@pytest.fixture
def running(cdk_out: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """local-stack serving dev on a free port with a small batch: (process, its ready block)."""
    process = local_stack(
        cdk_out, tmp_path / "run", "--port", str(free_port()), "--messages", "3",
        "--duration", "0.2", "--poison", "1", "--malformed", "1", "--processes", "2",
    )  # fmt: skip
    assert process.stdout is not None
    block: list[str] = []
    for line in process.stdout:
        block.append(line.rstrip("\n"))
        if line.startswith(READY_END):
            break
    try:
        assert block and block[-1] == READY_END, (block, process.stderr and process.stderr.read())
        yield process, block
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_operator_commands_work_from_another_terminal_then_ctrl_c_stops_all(
    running: tuple[subprocess.Popen[str], list[str]],
) -> None:
    process, block = running
    assert block[0].startswith(f"local stack of {ENV} ready at http://127.0.0.1:")
    assert f"QueueWorker-{ENV}-Queue: {DEPLOYED_BY_CLOUDFORMATION}" in block[1]
    [exports] = [line.strip() for line in block if line.strip().startswith("export ")]
    assert [line.strip() for line in block if line.strip().startswith("queue-worker ")] == [
        f"queue-worker {verb} --env {ENV}" for verb in ("status", "logs", "dlq", "redrive")
    ]
    env = other_terminal(exports)

    def both_dead_lettered() -> dict[str, Any] | None:
        status = operator("status", env, "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        done = report["dead_letter_queue"]["visible"] == 2 and report["alarms"]
        return report if done else None

    report = until(both_dead_lettered)
    assert report["queue"]["name"] == f"QueueWorker-{ENV}-WorkQueue"
    assert report["dead_letter_queue"]["name"] == f"QueueWorker-{ENV}-DeadLetterQueue"
    assert (report["tasks"]["running"], report["tasks"]["desired"]) == (1, 1)
    assert [alarm["name"] for alarm in report["alarms"]] == [f"QueueWorker-{ENV}-dlq-messages"]
    screen = operator("status", env)
    assert "running 1 / desired 1" in screen.stdout and "1 in ALARM" in screen.stdout

    logs = operator("logs", env, "--json")
    assert logs.returncode == 0, logs.stderr
    jobs = [json.loads(line) for line in logs.stdout.splitlines() if '"event": "job"' in line]
    outcomes = {job["outcome"] for job in jobs}
    assert {"done", "retry", "dead_letter"} <= outcomes, logs.stdout
    assert len([job for job in jobs if job["outcome"] == "done"]) >= 3

    dlq = operator("dlq", env, "--json")
    assert dlq.returncode == 0, dlq.stderr
    reasons = sorted(sample["reason"] for sample in json.loads(dlq.stdout)["samples"])
    assert reasons[0].startswith("malformed body"), reasons  # the worker's reason
    assert "maxReceiveCount" in reasons[1], reasons  # the poison message, moved by SQS

    redrive = operator("redrive", env)
    assert redrive.returncode == 0, redrive.stderr
    assert re.search(
        rf"moved 2 messages from QueueWorker-{ENV}-DeadLetterQueue to QueueWorker-{ENV}-WorkQueue",
        redrive.stdout,
    ), redrive.stdout

    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors
    assert errors.rstrip().endswith("interrupted: the fleet and the embedded AWS are stopped")
    match = re.search(r"process group (\d+)", errors)
    assert match, errors
    with pytest.raises(ProcessLookupError):
        os.killpg(int(match.group(1)), 0)  # no fleet process outlives it


def test_a_port_in_use_is_one_error_line(cdk_out: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = local_stack(cdk_out, tmp_path, "--port", str(port))
        out, errors = process.communicate(timeout=60)
    assert process.returncode == 1, errors
    assert out == ""
    assert errors.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (another local-stack?): stop it or pass --port"
    ]


def test_missing_templates_say_to_synthesize(tmp_path: Path) -> None:
    process = local_stack(tmp_path, tmp_path / "run")
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 1
    assert errors.splitlines() == [
        f"error: no synthesized templates in {tmp_path / ENV}: run `make synth ENV={ENV}` first"
    ]


@pytest.mark.filterwarnings("ignore:Tried to parse")  # moto skips QueuePolicy, CDK metadata
def test_stand_up_against_a_running_endpoint_makes_what_the_outputs_name(cdk_out: Path) -> None:
    server = CountingMoto()
    try:
        made = stand_up(cdk_out, ENV, server.url)
        client = boto3.client("cloudformation", region_name=made.region, endpoint_url=server.url)
        for stack, keys in ((made.queue_stack, QUEUE_STACK_OUTPUTS),
                            (made.worker_stack, WORKER_STACK_OUTPUTS)):  # fmt: skip
            outputs = client.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
            assert set(keys) <= {output["OutputKey"] for output in outputs}
        assert made.queue_url.endswith(f"/QueueWorker-{ENV}-WorkQueue")
        assert made.worker_outputs["LogGroupName"] == f"QueueWorker-{ENV}-Worker-WorkerLogs4B5B6506"
        logs = boto3.client("logs", region_name=made.region, endpoint_url=server.url)
        [stream] = logs.describe_log_streams(logGroupName=made.log_group)["logStreams"]
        assert stream["logStreamName"] == made.log_stream
        assert made.log_stream.startswith("worker/worker/")
        assert f"QueueWorker-{ENV}-dlq-messages" in made.alarms
        with pytest.raises(Exception, match="already exists"):
            stand_up(cdk_out, ENV, server.url)
    finally:
        server.close()


def test_the_fallback_creates_the_queues_as_the_template_says(cdk_out: Path) -> None:
    """Without moto's CloudFormation: the same names and settings as the deployed template."""
    server = CountingMoto()
    try:
        sqs = boto3.client("sqs", region_name="ap-northeast-1", endpoint_url=server.url)
        path = cdk_out / ENV / f"QueueWorker-{ENV}-Queue.template.json"
        made = create_queues(sqs, Template(path, f"QueueWorker-{ENV}-Queue"))
        by_name = {queue["QueueName"]: queue for queue in made.values()}
        work = sqs.get_queue_attributes(
            QueueUrl=by_name[f"QueueWorker-{ENV}-WorkQueue"]["QueueUrl"], AttributeNames=["All"]
        )["Attributes"]
        [declared] = [
            resource["Properties"]
            for resource in json.loads(path.read_text())["Resources"].values()
            if "RedrivePolicy" in resource.get("Properties", {})
        ]
        for name in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
        ):
            assert work[name] == str(declared[name])
        policy = json.loads(work["RedrivePolicy"])
        assert policy["deadLetterTargetArn"] == by_name[f"QueueWorker-{ENV}-DeadLetterQueue"]["Arn"]
        assert int(policy["maxReceiveCount"]) == declared["RedrivePolicy"]["maxReceiveCount"]
    finally:
        server.close()


def test_json_prints_the_ready_block_as_one_document_and_sigterm_stops_it(
    cdk_out: Path, tmp_path: Path
) -> None:
    port = free_port()
    process = local_stack(
        cdk_out, tmp_path / "run", "--port", str(port), "--messages", "1", "--poison", "0",
        "--malformed", "0", "--processes", "1", "--json",
    )  # fmt: skip
    assert process.stdout is not None
    text = ""
    for line in process.stdout:
        text += line
        if line == "}\n":
            break
    ready = json.loads(text)
    assert ready["endpoint_url"] == f"http://127.0.0.1:{port}"
    assert ready["queue_outputs"]["QueueUrl"].endswith(f"/QueueWorker-{ENV}-WorkQueue")
    assert ready["exports"].startswith(f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port} ")
    assert ready["commands"] == ["status", "logs", "dlq", "redrive"]
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors
