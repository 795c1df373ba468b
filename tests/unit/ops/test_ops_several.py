"""The operator commands in an environment with several queues and workers (moto): `--queue`
and `--worker` choose one, by the outputs the stacks give each (scripts._aws.output_key, checked
against a synthesized queue stack in tests/infra/test_output_keys.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from worker.contract import JOBS_PROCESSED, PAUSED_TAG

from scripts.__main__ import main
from scripts._aws import (
    CLUSTER_OUTPUT,
    DLQ_ARN_OUTPUT,
    DLQ_URL_OUTPUT,
    LOG_GROUP_OUTPUT,
    QUEUE_ARN_OUTPUT,
    QUEUE_URL_OUTPUT,
    SERVICE_OUTPUT,
    output_key,
)
from stacks.naming import job_metric_namespace
from tests.conftest import REGION
from tests.unit.ops.ops_helpers import send
from tests.unit.ops.test_ops_errors import QUEUE_COMMANDS

# Worker `mail` consumes `mails`; worker `default` consumes `reports-daily`, then `default`.
WORKERS = {"mail": ["mails"], "default": ["reports-daily", "default"]}
QUEUES = ["mails", "reports-daily", "default"]


@dataclass(frozen=True)
class Several:
    """An environment of QUEUES and WORKERS in moto, and the options that point at it."""

    env: str
    args: list[str]
    queue_urls: dict[str, str]
    dlq_urls: dict[str, str]
    cluster: str
    services: dict[str, str]
    log_groups: dict[str, str]


def queue_stack_template() -> dict[str, Any]:
    """A queue and its DLQ for each of QUEUES, with the outputs the queue stack gives each."""
    resources: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for index, name in enumerate(QUEUES):
        queue, dlq = f"WorkQueue{index}", f"DeadLetterQueue{index}"
        resources[dlq] = {"Type": "AWS::SQS::Queue"}
        resources[queue] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                    "maxReceiveCount": 3,
                }
            },
        }
        for base, value in {
            QUEUE_URL_OUTPUT: {"Ref": queue},
            QUEUE_ARN_OUTPUT: {"Fn::GetAtt": [queue, "Arn"]},
            DLQ_URL_OUTPUT: {"Ref": dlq},
            DLQ_ARN_OUTPUT: {"Fn::GetAtt": [dlq, "Arn"]},
        }.items():
            outputs[output_key(base, name)] = {"Value": value}
    return {"Resources": resources, "Outputs": outputs}


@pytest.fixture
def several(moto_endpoint: str, env_name: str, tmp_path: Path) -> Several:
    """Both stacks of an environment of QUEUES and WORKERS; each worker's service (desired 1)
    and log group created directly under the names its outputs give."""
    client = {
        name: boto3.client(name, region_name=REGION, endpoint_url=moto_endpoint)
        for name in ("cloudformation", "ecs", "logs")
    }
    environment = {
        "region": REGION,
        "queues": {name: {} for name in QUEUES},
        "workers": {name: {"queues": queues} for name, queues in WORKERS.items()},
    }
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"environments": {env_name: environment}}}))

    stack = f"QueueWorker-{env_name}-Queue"
    template = json.dumps(queue_stack_template())
    client["cloudformation"].create_stack(StackName=stack, TemplateBody=template)
    [described] = client["cloudformation"].describe_stacks(StackName=stack)["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]}

    cluster = f"cluster-{env_name}"
    client["ecs"].create_cluster(clusterName=cluster)
    client["ecs"].register_task_definition(
        family=f"worker-{env_name}",
        containerDefinitions=[{"name": "worker", "image": "worker", "memory": 512}],
    )
    services = {name: f"service-{name}-{env_name}" for name in WORKERS}
    log_groups = {name: f"/queue-worker/{env_name}/{name}" for name in WORKERS}
    worker_outputs = {CLUSTER_OUTPUT: cluster}
    for name in WORKERS:
        client["ecs"].create_service(
            cluster=cluster,
            serviceName=services[name],
            taskDefinition=f"worker-{env_name}",
            desiredCount=1,
        )
        client["logs"].create_log_group(logGroupName=log_groups[name])
        worker_outputs[output_key(SERVICE_OUTPUT, name)] = services[name]
        worker_outputs[output_key(LOG_GROUP_OUTPUT, name)] = log_groups[name]
    client["cloudformation"].create_stack(
        StackName=f"QueueWorker-{env_name}-Worker",
        TemplateBody=json.dumps(
            {
                "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {key: {"Value": value} for key, value in worker_outputs.items()},
            }
        ),
    )
    return Several(
        env=env_name,
        args=[
            "--env",
            env_name,
            "--endpoint-url",
            moto_endpoint,
            "--region",
            REGION,
            "--cdk-json",
            str(cdk_json),
        ],
        queue_urls={name: outputs[output_key(QUEUE_URL_OUTPUT, name)] for name in QUEUES},
        dlq_urls={name: outputs[output_key(DLQ_URL_OUTPUT, name)] for name in QUEUES},
        cluster=cluster,
        services=services,
        log_groups=log_groups,
    )


def run_json(capsys: Any, *argv: str) -> Any:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def usage_error(capsys: Any, *argv: str) -> str:
    """The one line of a command that exits 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    return line


def visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_queue_commands_act_on_the_named_queue(
    several: Several, sqs_client: Any, capsys: Any
) -> None:
    assert main(["enqueue", *several.args, "--queue", "reports-daily", "--count", "3"]) == 0
    counts = {name: visible(sqs_client, url) for name, url in several.queue_urls.items()}
    assert counts == {"mails": 0, "reports-daily": 3, "default": 0}

    send(sqs_client, several.dlq_urls["mails"], ["a failed mail"])
    report = run_json(capsys, "dlq", *several.args, "--queue", "mails", "--json")
    assert report["queue_url"] == several.dlq_urls["mails"]
    assert report["visible"] == 1
    default_dlq = run_json(capsys, "dlq", *several.args, "--queue", "default", "--json")
    assert (default_dlq["queue_url"], default_dlq["visible"]) == (several.dlq_urls["default"], 0)


@pytest.mark.parametrize("work", QUEUE_COMMANDS[:-2])  # pause and continue take a worker
def test_a_queue_command_without_queue_names_the_queues_to_choose_from(
    several: Several, work: list[str], capsys: Any
) -> None:
    line = usage_error(capsys, *work, *several.args)
    assert line.endswith(
        f"error: environment {several.env} has 3 queues: pass --queue NAME, one of mails, "
        "reports-daily, default (see --help)"
    )


def test_an_unknown_queue_or_worker_is_a_usage_error_with_the_names_allowed(
    several: Several, capsys: Any
) -> None:
    line = usage_error(capsys, "dlq", *several.args, "--queue", "emails")
    assert line.endswith(
        f"error: --queue: 'emails' is not a queue of environment {several.env}; allowed: "
        "mails, reports-daily, default (see --help)"
    )
    line = usage_error(capsys, "logs", *several.args, "--worker", "mails")
    assert line.endswith(
        f"error: --worker: 'mails' is not a worker of environment {several.env}; allowed: "
        "mail, default (see --help)"
    )


def test_worker_without_env_is_a_usage_error(capsys: Any) -> None:
    line = usage_error(capsys, "pause", "--queue", "some-queue", "--worker", "mail")
    assert line.endswith(
        "error: --worker NAME names a worker of an environment: pass --env too (see --help)"
    )


def test_logs_read_the_named_workers_log_group(
    several: Several, moto_endpoint: str, capsys: Any
) -> None:
    logs = boto3.client("logs", region_name=REGION, endpoint_url=moto_endpoint)
    for name, group in several.log_groups.items():
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": name}],
        )
    capsys.readouterr()
    assert main(["logs", *several.args, "--worker", "mail", "--json"]) == 0
    assert capsys.readouterr().out.splitlines() == ["mail"]
    line = usage_error(capsys, "logs", *several.args)
    assert line.endswith(
        f"error: environment {several.env} has 2 workers: pass --worker NAME, one of mail, "
        "default (see --help)"
    )


def test_a_workers_batch_counts_its_own_jobs_only(
    several: Several, moto_endpoint: str, capsys: Any
) -> None:
    """Each worker's jobs are in its own metric namespace (stacks.naming, what its log metric
    filters write): the batch line of worker `mail` counts its 5 jobs a minute, not the
    default worker's 100."""
    cdk_json = Path(several.args[several.args.index("--cdk-json") + 1])
    context = json.loads(cdk_json.read_text())
    window = {"start": "04:00", "end": "09:00", "timezone": "Asia/Tokyo", "min_tasks": 1}
    context["context"]["environments"][several.env]["workers"]["mail"]["batch_windows"] = [window]
    cdk_json.write_text(json.dumps(context))
    now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 05:00 in Tokyo
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=moto_endpoint)
    for worker, value in {"mail": 5.0, "default": 100.0}.items():
        cloudwatch.put_metric_data(
            Namespace=job_metric_namespace(several.env, worker),
            MetricData=[
                {
                    "MetricName": JOBS_PROCESSED,
                    "Value": value,
                    "Timestamp": now - timedelta(minutes=m),
                }
                for m in range(1, 11)
            ],
        )
    report = run_json(capsys, "status", *several.args, "--json", "--now", now.isoformat())
    batch = {worker["name"]: worker["batch"] for worker in report["workers"]}
    assert batch["default"] is None  # no window of its own
    assert batch["mail"]["processed_since_start"] == 50
    assert batch["mail"]["per_minute"] == round(50 / 15, 1)


def test_status_shows_every_worker_and_every_queue(
    several: Several, sqs_client: Any, capsys: Any
) -> None:
    send(sqs_client, several.queue_urls["mails"], ["m1", "m2"])
    send(sqs_client, several.dlq_urls["default"], ["d1"])
    report = run_json(capsys, "status", *several.args, "--json")
    assert set(report) == {"environment", "region", "time", "workers", "queues", "alarms"}
    workers = {worker["name"]: worker for worker in report["workers"]}
    assert {name: worker["queues"] for name, worker in workers.items()} == WORKERS
    assert workers["mail"]["tasks"]["desired"] == 1
    assert workers["default"]["batch"] is None
    queues = {queue["name"]: queue for queue in report["queues"]}
    assert list(queues) == ["mails", "reports-daily", "default"]  # the workers' order
    assert queues["mails"]["queue"]["visible"] == 2
    assert queues["default"]["dead_letter_queue"]["visible"] == 1
    assert queues["mails"]["paused"] is None

    capsys.readouterr()
    assert main(["status", *several.args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        f"QueueWorker-{several.env}",
        "  worker mail: consumes mails",
        "    tasks   running 0 / desired 1 / pending 1; 0 of 0 protected from scale-in",
        "    batch   no batch window now",
    ]
    assert lines[4] == "  worker default: consumes reports-daily, default"
    assert lines[7] == "  queue mails"
    assert lines[8].startswith("    queue   2 visible, 0 in flight, ")
    assert lines[9].startswith("    dlq     0 messages (")
    assert lines[-1] == "  alarms  0 in ALARM (none)"

    one = run_json(capsys, "status", *several.args, "--worker", "default", "--json")
    assert [worker["name"] for worker in one["workers"]] == ["default"]
    assert [queue["name"] for queue in one["queues"]] == ["reports-daily", "default"]


def test_pause_and_continue_act_on_a_worker_and_each_queue_it_consumes(
    several: Several, sqs_client: Any, moto_endpoint: str, capsys: Any
) -> None:
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto_endpoint)

    def desired(worker: str) -> int:
        [service] = ecs.describe_services(
            cluster=several.cluster, services=[several.services[worker]]
        )["services"]
        return int(service["desiredCount"])

    def paused() -> dict[str, bool]:
        return {
            name: PAUSED_TAG in sqs_client.list_queue_tags(QueueUrl=url).get("Tags", {})
            for name, url in several.queue_urls.items()
        }

    line = usage_error(capsys, "pause", *several.args)
    assert "has 2 workers: pass --worker NAME, one of mail, default" in line
    line = usage_error(capsys, "pause", *several.args, "--queue", "mails")
    assert line.endswith(
        "error: --queue: with --env, pause acts on a worker and every queue it consumes; pass "
        "--worker NAME (workers: mail, default) (see --help)"
    )

    report = run_json(capsys, "pause", *several.args, "--worker", "default", "--json")
    assert set(report["queues"]) == {
        several.queue_urls[name].rsplit("/", 1)[-1] for name in WORKERS["default"]
    }
    assert report["desired_count"] == {"before": 1, "after": 0}
    assert paused() == {"mails": False, "reports-daily": True, "default": True}
    assert (desired("default"), desired("mail")) == (0, 1)
    status = run_json(capsys, "status", *several.args, "--json")
    assert [queue["paused"] is not None for queue in status["queues"]] == [False, True, True]

    report = run_json(capsys, "continue", *several.args, "--worker", "default", "--json")
    assert all(queue["was_paused"] for queue in report["queues"].values())
    assert report["desired_count"] == {"before": 0, "after": 1}
    assert paused() == {"mails": False, "reports-daily": False, "default": False}
    assert desired("default") == 1

    report = run_json(capsys, "pause", *several.args, "--worker", "mail", "--json")
    assert report["queue"] == several.queue_urls["mails"].rsplit("/", 1)[-1]  # one queue
    assert paused() == {"mails": True, "reports-daily": False, "default": False}
