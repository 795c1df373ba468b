"""scripts.devtools.local_run: reads synthesized templates, runs the real fleet on moto, reports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts.devtools.local_run import QueueSpec, read_templates
from tests.integration.fleet import ROOT


def write_templates(cdk_out: Path, env: str, environment: dict[str, str]) -> None:
    """Fixture templates of the shape the stacks synthesize (docs/contract.md)."""
    assembly = cdk_out / env
    assembly.mkdir(parents=True)
    queue = {
        "Resources": {
            "WorkQueueDLQ": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "WorkQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 5,
                    "MessageRetentionPeriod": 3600,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["WorkQueueDLQ", "Arn"]},
                        "maxReceiveCount": 2,
                    },
                },
            },
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        }
    }
    env_list = [
        {"Name": "QUEUE_URL", "Value": {"Fn::GetStackOutput": {"OutputName": "QueueUrl"}}},
        *({"Name": k, "Value": v} for k, v in environment.items()),
    ]
    worker = {
        "Resources": {
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "ContainerDefinitions": [{"Name": "worker", "Environment": env_list}]
                },
            }
        }
    }
    (assembly / f"QueueWorker-{env}-Queue.template.json").write_text(json.dumps(queue))
    (assembly / f"QueueWorker-{env}-Worker.template.json").write_text(json.dumps(worker))


ENVIRONMENT = {
    "WORKER_PROCESSES": "3",
    "VISIBILITY_TIMEOUT_SECONDS": "5",
    "HEARTBEAT_INTERVAL_SECONDS": "1",
    "PREFETCH_SECONDS": "2",
    "SUPERVISOR_STOPWAITSECS": "10",
    "WORKER_STOP_GRACE_SECONDS": "5",
    "WORKER_HANDLER": "app.jobs:handle",  # the team's handler: replaced by the demo's
}


def test_templates_are_read_like_the_stacks_write_them(tmp_path: Path) -> None:
    write_templates(tmp_path, "t", ENVIRONMENT)
    spec, environment = read_templates(tmp_path / "t", "t")
    assert spec == QueueSpec(visibility_timeout=5, retention_seconds=3600, max_receive_count=2)
    assert environment == ENVIRONMENT  # the CloudFormation expression (QUEUE_URL) is left out


def local_run(cdk_out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scripts", "local-run", "--env", "t", "--cdk-out", str(cdk_out),
         "--run-dir", str(cdk_out / "run"), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_a_local_run_processes_everything_and_reports_zero_lost(tmp_path: Path) -> None:
    write_templates(tmp_path, "t", ENVIRONMENT)
    process = local_run(
        tmp_path, "--messages", "12", "--duration", "0.2", "--poison", "1", "--malformed", "1"
    )
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    report = dict(re.findall(r"^(\w[\w -]*?)\s{2,}(\S+)", out, re.MULTILINE))
    assert report["enqueued"] == "14"
    assert report["processed"] == "12"
    assert re.search(
        r"^dead-lettered   2: 1 by the worker with a reason \(malformed body 1\), 1 moved by SQS "
        r"after 2 receives \(max_receive_count\)$",
        out,
        re.MULTILINE,
    ), out
    assert not re.search(r"^job runs .*\{", out, re.MULTILINE)  # words, not a raw dict
    assert report["lost"] == "0"
    assert report["duplicates"] == "0"
    assert "fleet: 3 processes" in out and "maxReceiveCount 2" in out
    assert "RETRY_BACKOFF_BASE_SECONDS=1" in out  # the demo says what it overrides
    assert re.search(r"SQS requests\s+\d+ by the workers = \d+\.\d\d per processed message", out)
    assert _group_gone(out)


def test_json_stdout_is_the_report_alone(tmp_path: Path) -> None:
    """--json: stdout is the JSON document alone; the settings and progress go to stderr."""
    write_templates(tmp_path, "t", ENVIRONMENT)
    done = subprocess.run(
        [sys.executable, "-m", "scripts", "local-run", "--env", "t", "--cdk-out", str(tmp_path),
         "--run-dir", str(tmp_path / "run"), "--messages", "3", "--duration", "0.1",
         "--poison", "0", "--malformed", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["processed"], report["lost"]) == (3, 0)
    assert (report["dead_lettered_by_worker"], report["dead_lettered_by_sqs"]) == (1, 0)
    assert "fleet: 3 processes" in done.stderr and "enqueued 4 messages" in done.stderr


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    write_templates(tmp_path, "t", ENVIRONMENT)
    process = local_run(tmp_path, "--messages", "40", "--duration", "5", "--processes", "2")
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("enqueued"):
            break
    process.send_signal(signal.SIGINT)
    out = "".join(lines) + process.communicate(timeout=60)[0]
    assert process.returncode == 130, out
    # What was done so far: 40 good + 2 poison + 2 malformed were sent.
    assert re.search(
        r"^interrupted: settled \d+ of 44; the fleet and the embedded SQS are stopped$", out, re.M
    ), out
    assert "settled:" not in out  # no progress bar off a terminal
    assert _group_gone(out)


def _group_gone(out: str) -> bool:
    """The fleet's process group (pid printed by local_run) has no process left."""
    match = re.search(r"process group (\d+)", out)
    assert match, out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(int(match.group(1)), 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
