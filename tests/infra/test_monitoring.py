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

# prod's level is full, without Container Insights (no tasks-missing alarm: an EventBridge rule).
ALARM_NAMES = ("dlq-messages", "oldest-message-age", "memory-high", "error-rate")
WITH_DASHBOARD = {"monitoring": {"dashboard": True}}
WITH_INSIGHTS = {"monitoring": {"level": "full", "container_insights": True}}


def alarm(s: Synthesized, name: str) -> dict[str, Any]:
    (found,) = s.worker.find_resources(
        "AWS::CloudWatch::Alarm",
        {"Properties": {"AlarmName": f"{s.config.stack_prefix}-{name}"}},
    ).values()
    return dict(found["Properties"])


def topic_ref(s: Synthesized) -> dict[str, str]:
    (logical_id,) = s.worker.find_resources("AWS::SNS::Topic")
    return {"Ref": logical_id}


def alarm_names(s: Synthesized) -> set[str]:
    prefix = f"{s.config.stack_prefix}-"
    return {
        a["Properties"]["AlarmName"].removeprefix(prefix)
        for a in s.worker.find_resources("AWS::CloudWatch::Alarm").values()
        if isinstance(a["Properties"].get("AlarmName"), str)
    }


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


def test_essential_level_keeps_the_alarms_an_operator_acts_on(dev: Synthesized) -> None:
    assert dev.config.monitoring.level == "essential"
    assert alarm_names(dev) == {"dlq-messages", "oldest-message-age", "error-rate"}


def test_full_level_adds_the_memory_alarm(prod: Synthesized) -> None:
    assert prod.config.monitoring.level == "full"
    assert alarm_names(prod) == set(ALARM_NAMES)


def test_tasks_that_cannot_start_go_to_the_topic_without_container_insights(
    prod: Synthesized,
) -> None:
    (service_id,) = prod.worker.find_resources("AWS::ECS::Service")
    prod.worker.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Service Action"],
                "detail": {
                    "eventName": [
                        "SERVICE_TASK_START_IMPAIRED",
                        "SERVICE_TASK_CONFIGURATION_FAILURE",
                        "SERVICE_TASK_PLACEMENT_FAILURE",
                    ]
                },
                "resources": [{"Ref": service_id}],
            },
            "Targets": [Match.object_like({"Arn": topic_ref(prod)})],
        },
    )


def test_spot_placement_failures_are_left_to_the_fallback() -> None:
    s = synthesize(
        "prod",
        worker={"capacity": {"spot_weight": 1, "on_demand_weight": 0}},
        scaling={"max_tasks": 6},
    )
    (rule,) = s.worker.find_resources(
        "AWS::Events::Rule",
        {"Properties": {"EventPattern": {"detail-type": ["ECS Service Action"]}}},
    ).values()
    names = rule["Properties"]["EventPattern"]["detail"]["eventName"]
    assert "SERVICE_TASK_START_IMPAIRED" in names
    assert "SERVICE_TASK_PLACEMENT_FAILURE" not in names


def test_tasks_missing_alarm_compares_running_with_desired_for_minutes() -> None:
    s = synthesize("dev", **WITH_INSIGHTS)
    properties = alarm(s, "tasks-missing")
    assert returned_expression(properties) == "FILL(desired, 0) - FILL(running, 0)"
    metrics = {
        m["Id"]: m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m
    }
    assert metrics["desired"]["MetricName"] == "DesiredTaskCount"
    assert metrics["running"]["MetricName"] == "RunningTaskCount"
    assert metrics["running"]["Namespace"] == "ECS/ContainerInsights"
    minutes = s.config.alarms.tasks_missing_minutes
    assert (properties["Threshold"], properties["EvaluationPeriods"]) == (1, minutes)
    assert properties["DatapointsToAlarm"] == minutes


def test_memory_alarm_watches_the_fullest_task(prod: Synthesized) -> None:
    properties = alarm(prod, "memory-high")
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/ECS", "MemoryUtilization")
    assert (properties["Statistic"], properties["Threshold"]) == ("Maximum", 90)
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"


def test_error_rate_alarm_reads_one_metric_the_share_of_failed_jobs() -> None:
    s = synthesize("dev", alarms={"worker_error_rate_percent": 35})
    properties = alarm(s, "error-rate")
    (query,) = properties["Metrics"]  # one metric read: no metric math
    assert query["MetricStat"]["Metric"] == {
        "MetricName": "JobFailurePercent",
        "Namespace": "QueueWorkerKit/dev",
    }
    assert (query["MetricStat"]["Stat"], properties["Threshold"]) == ("Average", 35)
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("outcomes", "value"),
    [
        ('($.outcome = "retry" || $.outcome = "dead_letter" || $.outcome = "timeout" '
         '|| $.outcome = "memory_exceeded")', "100"),
        ('$.outcome = "done"', "0"),
    ],
)  # fmt: skip
def test_failure_percent_is_100_for_a_failed_job_and_0_for_a_done_one(
    dev: Synthesized, outcomes: str, value: str
) -> None:
    dev.worker.has_resource_properties(
        "AWS::Logs::MetricFilter",
        {
            "FilterPattern": f'{{ $.event = "job" && {outcomes} }}',
            "MetricTransformations": [
                {
                    "MetricName": "JobFailurePercent",
                    "MetricNamespace": "QueueWorkerKit/dev",
                    "MetricValue": value,
                    "Unit": "Percent",
                }
            ],
        },
    )


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


def test_no_dashboard_unless_chosen(prod: Synthesized) -> None:
    prod.worker.resource_count_is("AWS::CloudWatch::Dashboard", 0)


def test_dashboard_is_named_per_environment() -> None:
    synthesize("dev", **WITH_DASHBOARD).worker.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": "QueueWorker-dev"}
    )


@pytest.mark.parametrize(
    "shown",
    [
        '"AWS/SQS","ApproximateNumberOfMessagesVisible"',
        '"AWS/SQS","ApproximateNumberOfMessagesNotVisible"',
        '"AWS/SQS","ApproximateNumberOfMessagesDelayed"',
        '"AWS/SQS","ApproximateAgeOfOldestMessage"',
        '"AWS/ECS","CPUUtilization"',
        '"stat":"SampleCount"',  # running tasks, without Container Insights
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
def test_dashboard_shows_the_key_metrics(shown: str) -> None:
    assert shown in dashboard_body(synthesize("prod", **WITH_DASHBOARD))


@pytest.mark.parametrize("name", ["RunningTaskCount", "DesiredTaskCount", "PendingTaskCount"])
def test_dashboard_shows_task_counts_with_container_insights(name: str) -> None:
    s = synthesize("prod", monitoring={**WITH_INSIGHTS["monitoring"], "dashboard": True})
    assert f'"ECS/ContainerInsights","{name}"' in dashboard_body(s)


def test_dashboard_shows_the_state_of_every_alarm_scaling_included() -> None:
    s = synthesize("prod", **WITH_DASHBOARD)
    (dashboard,) = s.worker.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for logical_id in s.worker.find_resources("AWS::CloudWatch::Alarm"):
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
