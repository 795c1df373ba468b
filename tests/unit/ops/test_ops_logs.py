"""`python -m scripts logs`: the worker's JSON lines from CloudWatch Logs (moto), readable.

The lines are written by the worker's own EventLog (worker.logs), so the field names the
command reads are the ones the worker writes.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from worker.logs import EventLog

from scripts.__main__ import main
from tests.conftest import REGION

ROOT = Path(__file__).resolve().parents[3]

STREAM = "worker/worker/task-1"


def worker_lines(process: str, *events: tuple[str, str, dict[str, Any]]) -> list[str]:
    """JSON lines as the worker's EventLog writes them for `process`."""
    out = io.StringIO()
    log = EventLog(process, out)
    for level, event, fields in events:
        log.emit(level, event, **fields)
    return out.getvalue().splitlines()


def put(logs: Any, group: str, lines: list[str]) -> None:
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=STREAM,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


@pytest.fixture
def deployed(deploy_environment: Any, env_name: str, moto_endpoint: str) -> Any:
    """A deployed environment whose log group holds a few worker lines and one plain line."""
    env = deploy_environment(env_name)
    logs = boto3.client("logs", region_name=REGION, endpoint_url=moto_endpoint)
    logs.create_log_stream(logGroupName=env.log_group, logStreamName=STREAM)
    lines = worker_lines(
        "worker_00",
        ("info", "worker_started", {}),
        ("info", "job", {"message_id": "m-1", "duration_seconds": 1.5, "outcome": "done"}),
    ) + worker_lines(
        "worker_03",
        (
            "warning",
            "job",
            {"message_id": "m-2", "duration_seconds": 0.2, "outcome": "retry", "error": "boom"},
        ),
    )
    put(logs, env.log_group, [*lines, "supervisord: a line that is not JSON"])
    return env, logs


def run_logs(args: list[str], capsys: Any) -> list[str]:
    capsys.readouterr()
    assert main(["logs", *args]) == 0
    return list(capsys.readouterr().out.splitlines())


def test_lines_rendered_readably(deployed: Any, aws_args: list[str], capsys: Any) -> None:
    env, _ = deployed
    lines = run_logs([*aws_args, "--env", env.env], capsys)
    assert len(lines) == 4
    assert lines[0].endswith("  worker_00  worker_started")
    assert lines[1].endswith("  worker_00  job  message m-1  done  1.5 s")
    assert lines[2].endswith("  worker_03  job  message m-2  retry  0.2 s  error: boom")
    assert lines[3].endswith("Z  supervisord: a line that is not JSON")
    assert lines[0][:4].isdigit() and lines[0][10] == "T"  # the worker's ISO time first


@pytest.mark.parametrize(
    ("option", "value", "ids"),
    [
        ("--process", "worker_03", ["m-2"]),
        ("--message-id", "m-1", ["m-1"]),
        ("--outcome", "retry", ["m-2"]),
    ],
)
def test_filters(
    deployed: Any, aws_args: list[str], capsys: Any, option: str, value: str, ids: list[str]
) -> None:
    env, _ = deployed
    lines = run_logs([*aws_args, "--env", env.env, option, value, "--json"], capsys)
    assert [json.loads(line)["message_id"] for line in lines] == ids


def test_json_prints_the_lines_as_written(deployed: Any, aws_args: list[str], capsys: Any) -> None:
    env, _ = deployed
    lines = run_logs([*aws_args, "--env", env.env, "--json", "--process", "worker_00"], capsys)
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["worker_started", "job"]
    assert {"time", "level", "event", "process", "pid"} <= set(records[0])


def test_follow_shows_new_lines_once(deployed: Any, aws_args: list[str], capsys: Any) -> None:
    """--follow polls (here every 0.2 s, stopped by --max-polls) and shows each line once."""
    env, logs = deployed
    capsys.readouterr()
    argv = [*aws_args, "--env", env.env, "--follow", "--poll-seconds", "0.2", "--json"]
    follower = threading.Thread(target=main, args=(["logs", *argv, "--max-polls", "15"],))
    follower.start()
    time.sleep(1)
    later = ("info", "job", {"message_id": "m-3", "duration_seconds": 2, "outcome": "done"})
    put(logs, env.log_group, worker_lines("worker_01", later))
    follower.join(timeout=30)
    assert not follower.is_alive()
    out = capsys.readouterr().out.splitlines()
    ids = [json.loads(line).get("message_id") for line in out if line.startswith("{")]
    assert ids == [None, "m-1", "m-2", "m-3"]


def test_follow_ends_when_the_reader_of_the_pipe_goes_away(
    deployed: Any, aws_args: list[str]
) -> None:
    """`logs --follow | head -1`: no new line ever comes, yet the command ends (exit 0, no
    traceback) soon after head has gone, instead of polling forever."""
    env, _ = deployed
    argv = [sys.executable, "-m", "scripts", "logs", *aws_args, "--env", env.env, "--follow"]
    started = time.monotonic()
    done = subprocess.run(
        f"{shlex.join(argv)} | head -1; echo rc=${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.splitlines()[-1] == "rc=0"
    assert "worker_started" in done.stdout.splitlines()[0]
    assert done.stderr == ""
    assert time.monotonic() - started < 20  # one poll (2 s) and a check every 0.5 s


def test_since_must_be_a_duration_or_a_time(aws_args: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["logs", *aws_args, "--env", "x", "--since", "yesterday"])
    assert exited.value.code == 2
    assert "--since 'yesterday': use 30s, 10m, 2h, 1d or an ISO 8601 time" in (
        capsys.readouterr().err
    )


def test_missing_log_group(deployed: Any, aws_args: list[str], capsys: Any) -> None:
    env, _ = deployed
    assert main(["logs", *aws_args, "--env", env.env, "--log-group", "/nope"]) == 1
    assert capsys.readouterr().err == "error: log group /nope does not exist\n"
