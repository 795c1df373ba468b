"""Monitoring: the alarm topic, alarms, job metrics, the dashboard and the saved log queries."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from worker.handlers import CommandRunner, JobContext
from worker.logs import EventLog

from stacks.constructs.monitoring import oldest_message_age_seconds
from tests.infra.conftest import Synthesized, synthesize

ALARM_NAMES = ("dlq-messages", "oldest-message-age", "tasks-missing", "memory-high", "error-rate")


def alarm(s: Synthesized, name: str) -> dict[str, Any]:
    (found,) = s.worker.find_resources(
        "AWS::CloudWatch::Alarm",
        {"Properties": {"AlarmName": f"{s.config.stack_prefix}-{name}"}},
    ).values()
    return dict(found["Properties"])


def topic_ref(s: Synthesized) -> dict[str, str]:
    (logical_id,) = s.worker.find_resources("AWS::SNS::Topic")
    return {"Ref": logical_id}


def dashboard_body(s: Synthesized) -> str:
    """The dashboard's JSON with every token part (Ref, GetStackOutput...) as a placeholder."""
    (dashboard,) = s.worker.find_resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "TOKEN" for p in parts)


def returned_expression(properties: dict[str, Any]) -> str:
    (expression,) = [m["Expression"] for m in properties["Metrics"] if m.get("ReturnData")]
    return str(expression)


def test_topic_is_encrypted_with_a_rotated_key_cloudwatch_and_eventbridge_may_use(
    prod: Synthesized,
) -> None:
    (key_id,) = prod.worker.find_resources(
        "AWS::KMS::Key", {"Properties": {"EnableKeyRotation": True}}
    )
    prod.worker.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
        prod.worker.has_resource_properties(
            "AWS::KMS::Key",
            {
                "KeyPolicy": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                                    "Effect": "Allow",
                                    "Principal": {"Service": service},
                                    "Condition": Match.object_like(
                                        {"StringEquals": {"aws:SourceAccount": Match.any_value()}}
                                    ),
                                }
                            )
                        ]
                    )
                }
            },
        )


def test_topic_policy_denies_publishing_without_tls(prod: Synthesized) -> None:
    prod.worker.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [topic_ref(prod)],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "sns:Publish",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_no_email_subscription_unless_configured(prod: Synthesized) -> None:
    prod.worker.resource_count_is("AWS::SNS::Subscription", 0)


def test_configured_email_is_subscribed_to_the_topic() -> None:
    s = synthesize("dev", alarms={"email": "oncall@example.com"})
    s.worker.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "oncall@example.com", "TopicArn": topic_ref(s)},
    )


@pytest.mark.parametrize("name", ALARM_NAMES)
def test_every_alarm_notifies_the_topic_on_alarm_and_ok(prod: Synthesized, name: str) -> None:
    properties = alarm(prod, name)
    assert properties["AlarmActions"] == [topic_ref(prod)]
    assert properties["OKActions"] == [topic_ref(prod)]
    assert f"docs/operations.md#{name}" in properties["AlarmDescription"]


def test_deadline_alarms_notify_the_topic(prod: Synthesized) -> None:
    prod.worker.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmDescription": Match.string_like_regexp("miss 08:30"),
            "AlarmActions": [topic_ref(prod)],
        },
    )


def test_dlq_alarm_fires_at_the_configured_depth() -> None:
    s = synthesize("dev", alarms={"dlq_messages_threshold": 3})
    properties = alarm(s, "dlq-messages")
    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert "DeadLetterQueue" in json.dumps(properties["Dimensions"])
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        3,
        "GreaterThanOrEqualToThreshold",
    )


def test_oldest_message_alarm_allows_a_wake_up_a_full_job_and_one_crash(dev: Synthesized) -> None:
    properties = alarm(dev, "oldest-message-age")
    assert properties["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert "WorkQueue" in json.dumps(properties["Dimensions"])
    # dev: no batch window; 20 min wake-up + 900 s job timeout + 60 s visibility.
    assert properties["Threshold"] == 20 * 60 + 900 + 60


def test_oldest_message_alarm_lets_a_batch_wait_for_its_window(prod: Synthesized) -> None:
    assert alarm(prod, "oldest-message-age")["Threshold"] == 5 * 3600
    assert oldest_message_age_seconds(prod.config) == 5 * 3600


def test_oldest_message_alarm_threshold_can_be_set() -> None:
    s = synthesize("prod", alarms={"oldest_message_age_minutes": 45})
    assert alarm(s, "oldest-message-age")["Threshold"] == 45 * 60


def test_tasks_missing_alarm_compares_running_with_desired_for_minutes(dev: Synthesized) -> None:
    properties = alarm(dev, "tasks-missing")
    assert returned_expression(properties) == "FILL(desired, 0) - FILL(running, 0)"
    metrics = {
        m["Id"]: m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m
    }
    assert metrics["desired"]["MetricName"] == "DesiredTaskCount"
    assert metrics["running"]["MetricName"] == "RunningTaskCount"
    assert metrics["running"]["Namespace"] == "ECS/ContainerInsights"
    minutes = dev.config.alarms.tasks_missing_minutes
    assert (properties["Threshold"], properties["EvaluationPeriods"]) == (1, minutes)
    assert properties["DatapointsToAlarm"] == minutes


def test_memory_alarm_watches_the_fullest_task(prod: Synthesized) -> None:
    properties = alarm(prod, "memory-high")
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/ECS", "MemoryUtilization")
    assert (properties["Statistic"], properties["Threshold"]) == ("Maximum", 90)
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"


def test_error_rate_alarm_counts_failed_over_all_jobs_only_when_jobs_ran() -> None:
    s = synthesize("dev", alarms={"worker_error_rate_percent": 35})
    properties = alarm(s, "error-rate")
    assert returned_expression(properties) == (
        "IF(processed + failed > 0, 100 * failed / (processed + failed), 0)"
    )
    metrics = {m["Id"]: m["MetricStat"] for m in properties["Metrics"] if "MetricStat" in m}
    assert metrics["processed"]["Metric"] == {
        "MetricName": "JobsProcessed",
        "Namespace": "QueueWorkerKit/dev",
    }
    assert metrics["failed"]["Metric"]["MetricName"] == "JobsFailed"
    assert metrics["failed"]["Stat"] == "Sum"
    assert properties["Threshold"] == 35
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("metric", "pattern"),
    [
        ("JobsProcessed", '{ $.event = "job" && $.outcome = "done" }'),
        (
            "JobsFailed",
            '{ $.event = "job" && ($.outcome = "retry" || $.outcome = "dead_letter" '
            '|| $.outcome = "timeout" || $.outcome = "memory_exceeded") }',
        ),
        ("JobsRetried", '{ $.event = "job" && $.outcome = "retry" }'),
    ],
)
def test_job_counts_come_from_the_worker_log_lines(
    prod: Synthesized, metric: str, pattern: str
) -> None:
    prod.worker.has_resource_properties(
        "AWS::Logs::MetricFilter",
        {
            "FilterPattern": pattern,
            "LogGroupName": {"Ref": Match.string_like_regexp("^WorkerLogs")},
            "MetricTransformations": [
                {
                    "MetricName": metric,
                    "MetricNamespace": "QueueWorkerKit/prod",
                    "MetricValue": "1",
                    "DefaultValue": 0,
                    "Unit": "Count",
                }
            ],
        },
    )


def test_job_duration_is_the_logged_seconds_of_done_jobs(prod: Synthesized) -> None:
    prod.worker.has_resource_properties(
        "AWS::Logs::MetricFilter",
        {
            "FilterPattern": '{ $.event = "job" && $.outcome = "done" }',
            "MetricTransformations": [
                {
                    "MetricName": "JobDuration",
                    "MetricNamespace": "QueueWorkerKit/prod",
                    "MetricValue": "$.duration_seconds",
                    "Unit": "Seconds",
                }
            ],
        },
    )


def test_deployment_failure_event_for_this_service_goes_to_the_topic(prod: Synthesized) -> None:
    (service_id,) = prod.worker.find_resources("AWS::ECS::Service")
    prod.worker.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Deployment State Change"],
                "detail": {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]},
                "resources": [{"Ref": service_id}],
            },
            "Targets": [Match.object_like({"Arn": topic_ref(prod)})],
        },
    )


def test_dashboard_is_named_per_environment(dev: Synthesized) -> None:
    dev.worker.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": "QueueWorker-dev"}
    )


@pytest.mark.parametrize(
    "shown",
    [
        '"AWS/SQS","ApproximateNumberOfMessagesVisible"',
        '"AWS/SQS","ApproximateNumberOfMessagesNotVisible"',
        '"AWS/SQS","ApproximateNumberOfMessagesDelayed"',
        '"AWS/SQS","ApproximateAgeOfOldestMessage"',
        '"ECS/ContainerInsights","RunningTaskCount"',
        '"ECS/ContainerInsights","DesiredTaskCount"',
        '"ECS/ContainerInsights","PendingTaskCount"',
        '"AWS/ECS","CPUUtilization"',
        '"AWS/ECS","MemoryUtilization"',
        '"QueueWorkerKit/prod","JobsProcessed"',
        '"QueueWorkerKit/prod","JobsFailed"',
        '"QueueWorkerKit/prod","JobsRetried"',
        '"QueueWorkerKit/prod","JobDuration"',
        '"stat":"p50"',
        '"stat":"p90"',
        '"stat":"p99"',
        '"type":"alarm"',
        '"type":"log"',
    ],
)
def test_dashboard_shows_the_key_metrics(prod: Synthesized, shown: str) -> None:
    assert shown in dashboard_body(prod)


def test_dashboard_shows_the_state_of_every_alarm_scaling_included(prod: Synthesized) -> None:
    (dashboard,) = prod.worker.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for logical_id in prod.worker.find_resources("AWS::CloudWatch::Alarm"):
        assert logical_id in body


@pytest.mark.parametrize(
    ("name", "contains"),
    [
        ("process-story", ['filter process = "worker_00"', "sort @timestamp asc"]),
        ("message-story", ['filter message_id = "MESSAGE-ID"', "sort @timestamp asc"]),
        ("slowest-jobs", ['filter event = "job"', "sort duration_seconds desc"]),
        (
            "errors",
            [
                'filter level = "error" or outcome in '
                '["retry", "dead_letter", "timeout", "memory_exceeded"]',
                "sort @timestamp desc",
            ],
        ),
    ],
)
def test_saved_queries_are_grouped_under_the_stack(
    prod: Synthesized, name: str, contains: list[str]
) -> None:
    (query,) = prod.worker.find_resources(
        "AWS::Logs::QueryDefinition", {"Properties": {"Name": f"QueueWorker-prod-Worker/{name}"}}
    ).values()
    (log_group,) = query["Properties"]["LogGroupNames"]
    assert log_group["Ref"].startswith("WorkerLogs")
    for text in contains:
        assert text in query["Properties"]["QueryString"]


def test_the_message_story_query_shows_what_a_command_printed(prod: Synthesized) -> None:
    """Across the worker and the stack: the fields of a real job_output line (a command run by
    the worker's CommandRunner) are among the message-story query's fields."""
    stream = io.StringIO()
    runner = CommandRunner("echo 'Uncaught RuntimeException'", EventLog("worker_00", stream))
    result = runner.run("", JobContext(message_id="m-1", receive_count=1), 10, lambda: False)
    assert result.outcome == "done"
    [output] = [
        line for line in map(json.loads, stream.getvalue().splitlines())
        if line["event"] == "job_output"
    ]  # fmt: skip
    (query,) = prod.worker.find_resources(
        "AWS::Logs::QueryDefinition",
        {"Properties": {"Name": "QueueWorker-prod-Worker/message-story"}},
    ).values()
    fields = query["Properties"]["QueryString"].split("\n")[0].removeprefix("fields ").split(", ")
    assert set(output) - {"time", "level"} <= set(fields), (sorted(output), fields)
