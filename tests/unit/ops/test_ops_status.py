"""`python -m scripts status`: one screen per environment, from the stacks' outputs (moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from ops_helpers import send
from worker.contract import JOBS_PROCESSED, metric_namespace

from scripts.__main__ import main
from scripts.operate import status
from tests.conftest import REGION

# 05:00 in Tokyo, inside the window 04:00-09:00 of the cdk.json written below.
NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def status_json(aws_args: list[str], env: str, capsys: Any, *extra: str) -> Any:
    capsys.readouterr()
    assert main(["status", *aws_args, "--env", env, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_counts_from_the_stacks_outputs(
    aws_args: list[str], deploy_environment: Any, env_name: str, sqs_client: Any, capsys: Any
) -> None:
    env = deploy_environment(env_name)
    send(sqs_client, env.queue_url, ["a", "b", "c"])
    send(sqs_client, env.dlq_url, ["dead"])
    report = status_json(aws_args, env_name, capsys)
    assert report["environment"] == env_name
    # moto's service launches no task: desired 2, both pending.
    assert report["tasks"] == {
        "running": 0,
        "desired": 2,
        "pending": 2,
        "protected": 0,
        "protection_note": "",
    }
    assert (report["queue"]["visible"], report["queue"]["in_flight"]) == (3, 0)
    assert report["queue"]["name"] == env.queue_url.rsplit("/", 1)[-1]
    assert report["queue"]["oldest_age_seconds"] is None  # no CloudWatch datapoint in moto
    assert report["dead_letter_queue"]["visible"] == 1
    assert report["alarms"] == []
    assert report["batch"] is None  # the environment has no batch window


def test_text_screen_with_alarms_and_age(
    aws_args: list[str],
    deploy_environment: Any,
    env_name: str,
    moto_endpoint: str,
    capsys: Any,
) -> None:
    env = deploy_environment(env_name)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=moto_endpoint)
    for name in (f"QueueWorker-{env_name}-dlq-messages", f"QueueWorker-{env_name}-tasks"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="m",
            Namespace="n",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
    cloudwatch.set_alarm_state(
        AlarmName=f"QueueWorker-{env_name}-dlq-messages", StateValue="ALARM", StateReason="1 > 0"
    )
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": env.queue_url.rsplit("/", 1)[-1]}],
                "Value": 300,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=2),
            }
        ],
    )
    capsys.readouterr()
    assert main(["status", *aws_args, "--env", env_name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"QueueWorker-{env_name}"
    assert lines[1] == (
        "  tasks   running 0 / desired 2 / pending 2; 0 of 0 protected from scale-in"
    )
    assert lines[2].startswith("  queue   0 visible, 0 in flight, oldest 5 min (")
    assert lines[4] == "  alarms  1 in ALARM"
    assert lines[5] == f"          QueueWorker-{env_name}-dlq-messages: 1 > 0"
    assert lines[6] == "  batch   no batch window now"


def test_protection_unknown_when_the_api_is_missing(
    aws_args: list[str], deploy_environment: Any, env_name: str, moto_endpoint: str, capsys: Any
) -> None:
    """moto has no GetTaskProtection: the screen says so instead of failing."""
    env = deploy_environment(env_name)
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto_endpoint)
    ecs.run_task(
        cluster=env.cluster, taskDefinition=f"worker-{env_name}", launchType="FARGATE", count=2
    )
    report = status_json(aws_args, env_name, capsys)
    assert report["tasks"]["protected"] is None
    assert report["tasks"]["protection_note"].startswith("GetTaskProtection failed")
    assert main(["status", *aws_args, "--env", env_name]) == 0
    tasks_line = capsys.readouterr().out.splitlines()[1]
    assert "; protection: unknown (GetTaskProtection failed: " in tasks_line


def test_protected_tasks_are_counted_ten_per_call() -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    stub = Stubber(ecs)
    arns = [f"arn:aws:ecs:{REGION}:123456789012:task/c/{n}" for n in range(12)]
    stub.add_response(
        "describe_services",
        {"services": [{"runningCount": 12, "desiredCount": 12, "pendingCount": 0}]},
    )
    stub.add_response("list_tasks", {"taskArns": arns})
    for batch, enabled in ((arns[:10], [True] * 7 + [False] * 3), (arns[10:], [True, False])):
        tasks = [
            {"taskArn": arn, "protectionEnabled": on}
            for arn, on in zip(batch, enabled, strict=True)
        ]
        stub.add_response(
            "get_task_protection", {"protectedTasks": tasks}, {"cluster": "c", "tasks": batch}
        )
    with stub:
        tasks = status.task_state(ecs, "c", "s")
    assert (tasks.running, tasks.desired, tasks.protected) == (12, 12, 8)


def batch_day(
    tmp_path: Path,
    window: dict[str, Any],
    env_name: str,
    points: list[tuple[datetime, float]],
    deploy_environment: Any,
    sqs_client: Any,
    moto_endpoint: str,
) -> Path:
    """A deployed environment with `window`, 60 jobs waiting and JobsProcessed `points`
    (time, count); returns the cdk.json that holds the window."""
    cdk_json = tmp_path / "window.json"
    environment = {"region": REGION, "batch_window": window}
    cdk_json.write_text(json.dumps({"context": {"environments": {env_name: environment}}}))
    env = deploy_environment(env_name)
    send(sqs_client, env.queue_url, [f"job {n}" for n in range(60)])
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=moto_endpoint)
    cloudwatch.put_metric_data(
        Namespace=metric_namespace(env_name),
        MetricData=[
            {"MetricName": JOBS_PROCESSED, "Value": value, "Timestamp": moment}
            for moment, value in points
        ],
    )
    return cdk_json


def test_batch_progress_and_estimated_finish(
    tmp_path: Path,
    aws_args: list[str],
    deploy_environment: Any,
    env_name: str,
    moto_endpoint: str,
    sqs_client: Any,
    capsys: Any,
) -> None:
    """Inside the window: processed since its start, and now + left / (rate of 15 min)."""
    window = {"start": "04:00", "end": "09:00", "timezone": "Asia/Tokyo", "min_tasks": 1}
    # 8 jobs a minute for the 50 minutes 04:10-04:59 (and one before the window: not counted).
    points = [(NOW - timedelta(minutes=m), 8.0) for m in range(1, 51)]
    points.append((NOW - timedelta(hours=2), 999.0))
    cdk_json = batch_day(
        tmp_path, window, env_name, points, deploy_environment, sqs_client, moto_endpoint
    )
    args = [*aws_args, "--cdk-json", str(cdk_json)]  # the later --cdk-json wins
    report = status_json(args, env_name, capsys, "--now", NOW.isoformat())
    assert report["batch"] == {
        "window": "04:00-09:00 Asia/Tokyo",
        "deadline": "2026-11-24T08:30+09:00",  # the end minus the default 30-minute margin
        "processed_since_start": 400,
        "left": 60,
        "per_minute": 8.0,
        "estimated_finish": "2026-11-24T05:08+09:00",  # ceil(60 / 8) = 8 minutes from 05:00
        "on_time": True,
    }
    assert main(["status", *args, "--env", env_name, "--now", NOW.isoformat()]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == (
        "  batch   window 04:00-09:00 Asia/Tokyo: 400 processed since its start, 60 left, "
        "8/min over the last 15 min"
    )
    assert lines[-1] == "          estimated finish 05:08, deadline 08:30: on time"


def test_a_finish_past_the_deadline_is_late(
    tmp_path: Path,
    aws_args: list[str],
    deploy_environment: Any,
    env_name: str,
    moto_endpoint: str,
    sqs_client: Any,
    capsys: Any,
) -> None:
    """The deadline is the window's end minus its margin: 05:30 - 25 min = 05:05 < 05:08."""
    window = {
        "start": "04:00",
        "end": "05:30",
        "timezone": "Asia/Tokyo",
        "min_tasks": 1,
        "deadline_margin_minutes": 25,
    }
    points = [(NOW - timedelta(minutes=m), 8.0) for m in range(1, 16)]
    cdk_json = batch_day(
        tmp_path, window, env_name, points, deploy_environment, sqs_client, moto_endpoint
    )
    args = [*aws_args, "--cdk-json", str(cdk_json)]  # the later --cdk-json wins
    capsys.readouterr()
    assert main(["status", *args, "--env", env_name, "--now", NOW.isoformat()]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "          estimated finish 05:08, deadline 05:05: LATE"
    )
    report = status_json(args, env_name, capsys, "--now", NOW.isoformat())
    assert (report["batch"]["deadline"], report["batch"]["on_time"]) == (
        "2026-11-24T05:05+09:00",
        False,
    )


def test_missing_worker_stack(
    aws_args: list[str], deploy_queue_stack: Any, env_name: str, capsys: Any
) -> None:
    deploy_queue_stack(env_name)  # the queue stack only
    assert main(["status", *aws_args, "--env", env_name]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: stack QueueWorker-{env_name}-Worker does not exist in {REGION} (deploy it first)\n"
    )


def test_missing_service(
    aws_args: list[str], deploy_environment: Any, env_name: str, moto_endpoint: str, capsys: Any
) -> None:
    env = deploy_environment(env_name)
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto_endpoint)
    ecs.delete_service(cluster=env.cluster, service=env.service, force=True)
    assert main(["status", *aws_args, "--env", env_name]) == 1
    assert capsys.readouterr().err == (
        f"error: ECS service {env.service} does not exist in cluster {env.cluster}\n"
    )


def test_now_that_is_not_a_time_says_what_to_write(capsys: Any) -> None:
    """`--now tomorrow`: one line naming the option, the value and the format, exit 2."""
    with pytest.raises(SystemExit) as exited:
        main(["status", "--env", "prod", "--now", "tomorrow"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "python -m scripts status: error: --now: 'tomorrow' is not an ISO 8601 time; use "
        "YYYY-MM-DDTHH:MM (UTC) or YYYY-MM-DDTHH:MM+HH:MM (see --help)\n"
    )
    assert "fromisoformat" not in err


def test_now_without_a_zone_is_utc() -> None:
    assert status.now_option("2026-11-23T20:00") == NOW
    assert status.now_option("2026-11-24T05:00+09:00") == NOW
