"""A worker that consumes several queues in priority order (issue 20): its container's
WORKER_QUEUES, its grants, its scaling and deadline alarms over every queue, its per-queue
alarms; beside it, a worker on one queue as before."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from worker import contract
from worker.settings import Settings

from stacks.app_builder import build
from stacks.config import MAX_BATCH_WINDOWS, ConfigError, EnvironmentConfig, load_config
from stacks.constructs.queue_scaling import ALARM_LIMIT, fleet_size_alarm_size
from stacks.constructs.worker_service import CONSUME_ACTIONS
from tests.infra.conftest import ENVIRONMENTS, FEATURE_FLAGS, REGION, ROOT, variant

# The queue stack's outputs of each queue of the variant, by what CDK puts in their names.
HIGH, DEFAULT = "WorkQueuehighWorkQueue", "WorkQueue6DFDCC48"
HIGH_DLQ, DEFAULT_DLQ = "WorkQueuehighDeadLetterQueue", "WorkQueueDeadLetterQueue"


@pytest.fixture(scope="module")
def several() -> dict[str, Any]:
    return variant("prod-worker-on-two-queues").worker_json


def of_worker(template: dict[str, Any], kind: str, prefix: str) -> dict[str, Any]:
    """The one resource of ``kind`` whose logical id starts with ``prefix``."""
    (found,) = (
        r["Properties"]
        for logical_id, r in template["Resources"].items()
        if r["Type"] == kind and logical_id.startswith(prefix)
    )
    return found


def environment(template: dict[str, Any], worker: str) -> dict[str, Any]:
    task = of_worker(template, "AWS::ECS::TaskDefinition", f"Worker{worker}")
    (container,) = task["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def output_name(value: dict[str, Any]) -> str:
    """The queue stack's output a cross-stack reference reads."""
    return str(value["Fn::GetStackOutput"]["OutputName"])


def resolved(value: dict[str, Any]) -> Any:
    """A JSON string CDK built with Fn::Join, parsed with each reference replaced by the
    queue stack output it reads."""
    separator, parts = value["Fn::Join"]
    assert separator == ""
    text = "".join(p if isinstance(p, str) else output_name(p) for p in parts)
    return json.loads(text)


def test_worker_queues_names_each_queue_with_its_dlq_in_priority_order(
    several: dict[str, Any],
) -> None:
    env = environment(several, "batch")
    assert "QUEUE_URL" not in env
    assert "DEAD_LETTER_QUEUE_URL" not in env
    queues = resolved(env[contract.QUEUES_VARIABLE])
    assert [q["name"] for q in queues] == ["high", "default"]
    assert all(set(q) == set(contract.QUEUE_KEYS) for q in queues)
    high, default = queues
    assert f"Ref{HIGH}" in high["url"]
    assert f"Ref{HIGH_DLQ}" in high["dead_letter_queue_url"]
    assert f"Ref{DEFAULT}" in default["url"]
    assert f"Ref{DEFAULT_DLQ}" in default["dead_letter_queue_url"]
    assert [q["max_receive_count"] for q in queues] == [2, 5]
    # The runners' default tries: the first queue's, replaced per queue by the entries'.
    assert env[contract.MAX_RECEIVE_COUNT_VARIABLE] == "2"


def test_the_workers_own_settings_read_the_synthesized_worker_queues(
    several: dict[str, Any],
) -> None:
    """Both sides of the contract: the container's environment as synthesized, each queue
    stack reference replaced by a URL as CloudFormation resolves it, parsed by the runtime's
    Settings.from_env: the queues, their DLQs and receive counts in priority order."""
    env = environment(several, "batch")

    def url(reference: dict[str, Any]) -> str:
        return f"https://sqs.{REGION}.amazonaws.com/123456789012/{output_name(reference)}"

    separator, parts = env[contract.QUEUES_VARIABLE]["Fn::Join"]
    queues = separator.join(p if isinstance(p, str) else url(p) for p in parts)
    plain = {name: value for name, value in env.items() if isinstance(value, str)}

    settings = Settings.from_env({**plain, contract.QUEUES_VARIABLE: queues})

    read = [(q.name, q.url, q.dead_letter_queue_url, q.max_receive_count) for q in settings.queues]
    assert [(name, count) for name, _, _, count in read] == [("high", 2), ("default", 5)]
    (high_url, high_dlq), (default_url, default_dlq) = ((u, d) for _, u, d, _ in read)
    assert HIGH in high_url and HIGH_DLQ in str(high_dlq)
    assert DEFAULT in default_url and DEFAULT_DLQ in str(default_dlq)
    assert settings.queue_url == high_url


def test_a_worker_on_one_queue_keeps_queue_url_beside_it(several: dict[str, Any]) -> None:
    env = environment(several, "mails")
    assert contract.QUEUES_VARIABLE not in env
    assert "RefWorkQueuemailsWorkQueue" in output_name(env["QUEUE_URL"])
    assert "RefWorkQueuemailsDeadLetterQueue" in output_name(env["DEAD_LETTER_QUEUE_URL"])


def test_the_task_role_consumes_each_queue_and_sends_to_each_dlq_only(
    several: dict[str, Any],
) -> None:
    policy = of_worker(several, "AWS::IAM::Policy", "WorkerbatchTaskDefinitionTaskRole")
    sqs_statements = {
        json.dumps(s["Action"]): sorted(output_name(r) for r in s["Resource"])
        for s in policy["PolicyDocument"]["Statement"]
        if "sqs:" in json.dumps(s["Action"])
    }
    assert list(sqs_statements) == [json.dumps(sorted(CONSUME_ACTIONS)), '"sqs:SendMessage"']
    consumed, dead_letters = sqs_statements.values()
    assert [HIGH in name for name in consumed].count(True) == 1
    assert [DEFAULT in name for name in consumed].count(True) == 1
    assert [HIGH_DLQ in name for name in dead_letters].count(True) == 1
    assert [DEFAULT_DLQ in name for name in dead_letters].count(True) == 1


def metrics_of(template: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    alarm = of_worker(template, "AWS::CloudWatch::Alarm", prefix)
    return {m["Id"]: m for m in alarm["Metrics"]}


def queue_of(metric: dict[str, Any]) -> str:
    (dimension,) = metric["MetricStat"]["Metric"]["Dimensions"]
    return output_name(dimension["Value"])


@pytest.mark.parametrize("alarm", ["ScalingbatchFleetSize", "ScalingbatchBacklogBeyondMax"])
def test_scaling_follows_the_backlog_of_every_queue(several: dict[str, Any], alarm: str) -> None:
    metrics = metrics_of(several, alarm)
    for total, name in (
        ("visible", "ApproximateNumberOfMessagesVisible"),
        ("in_flight", "ApproximateNumberOfMessagesNotVisible"),
    ):
        assert metrics[total]["Expression"] == f"SUM([{total}0, {total}1])"
        for index, queue in enumerate((HIGH, DEFAULT)):
            metric = metrics[f"{total}{index}"]
            assert metric["MetricStat"]["Metric"]["MetricName"] == name
            assert queue in queue_of(metric)
    assert "(visible + in_flight) * mean_job" in {m.get("Expression") for m in metrics.values()}


def test_the_deadline_alarm_watches_the_oldest_message_of_every_queue(
    several: dict[str, Any],
) -> None:
    metrics = metrics_of(several, "BatchWindowsbatchDeadline0400To0900")
    assert {m.get("Expression") for m in metrics.values()} >= {"MAX([oldest0, oldest1])"}
    assert HIGH in queue_of(metrics["oldest0"])
    assert DEFAULT in queue_of(metrics["oldest1"])


def test_each_queue_has_its_dlq_and_oldest_message_alarms(several: dict[str, Any]) -> None:
    template = Template.from_json(several)
    for name, metric, queue in (
        (
            "QueueWorker-prod-batch-dlq-messages-high",
            "ApproximateNumberOfMessagesVisible",
            HIGH_DLQ,
        ),
        ("QueueWorker-prod-batch-dlq-messages", "ApproximateNumberOfMessagesVisible", DEFAULT_DLQ),
        ("QueueWorker-prod-batch-oldest-message-age-high", "ApproximateAgeOfOldestMessage", HIGH),
        ("QueueWorker-prod-batch-oldest-message-age", "ApproximateAgeOfOldestMessage", DEFAULT),
        ("QueueWorker-prod-mails-dlq-messages", "ApproximateNumberOfMessagesVisible", "mailsDead"),
    ):
        (alarm,) = template.find_resources(
            "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": name, "MetricName": metric}}
        ).values()
        (dimension,) = alarm["Properties"]["Dimensions"]
        assert queue in output_name(dimension["Value"]), name
        assert "docs/operations.md#" in alarm["Properties"]["AlarmDescription"]
    names = [
        r["Properties"].get("AlarmName", "")
        for r in several["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert sum(n.startswith("QueueWorker-prod-batch-dlq-messages") for n in names) == 2
    assert sum(n.startswith("QueueWorker-prod-mails-dlq-messages") for n in names) == 1


def test_the_dashboard_shows_each_queue_by_name(several: dict[str, Any]) -> None:
    (dashboard,) = Template.from_json(several).find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for label in ("high visible", "default in flight", "high oldest", "default in DLQ"):
        assert label in body


def prod_config(**changes: Any) -> EnvironmentConfig:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"] |= changes
    return load_config(environments, "prod", project_dir=ROOT)


def test_a_worker_on_more_queues_than_its_fleet_size_alarm_reads_is_refused() -> None:
    config = prod_config(
        batch_window=None,
        queues={f"q{index}": {} for index in range(6)},
        workers={"batch": {"queues": [f"q{index}" for index in range(6)]}},
    )
    with pytest.raises(ConfigError) as caught:
        build(App(context=FEATURE_FLAGS), config)
    assert caught.value.problems == [
        "environments.prod.workers.batch.queues: 6 queues with 0 batch windows need 12 metrics "
        "and 4 expressions in the worker's fleet-size alarm; CloudWatch takes 10 of each; "
        "allowed: fewer queues for this worker (a worker of its own for some) or fewer windows"
    ]


def windows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "start": f"{4 * i:02d}:00",
            "end": f"{4 * i + 2:02d}:00",
            "timezone": "UTC",
            "min_tasks": 1,
        }
        for i in range(count)
    ]


@pytest.mark.parametrize(("queues", "windows_"), [(1, MAX_BATCH_WINDOWS), (2, 1), (4, 3), (5, 0)])
def test_the_fleet_size_alarm_reads_what_the_refusal_counts(queues: int, windows_: int) -> None:
    """The largest layouts synth allows fit CloudWatch's 10 metrics and 10 expressions."""
    names = [f"q{index}" for index in range(queues)]
    config = prod_config(
        batch_window=None,
        queues={name: {} for name in names},
        workers={"batch": {"queues": names, "batch_windows": windows(windows_)}},
    )
    _, worker_stack = build(App(context=FEATURE_FLAGS), config)
    metrics = metrics_of(Template.from_stack(worker_stack).to_json(), "ScalingbatchFleetSize")
    counted = (
        sum("MetricStat" in m for m in metrics.values()),
        sum("Expression" in m for m in metrics.values()),
    )
    assert counted == fleet_size_alarm_size(queues, windows_)
    assert max(counted) <= ALARM_LIMIT
