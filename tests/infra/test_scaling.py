"""Queue-depth step scaling, the batch window and the deadline alarm."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from stacks.constructs.queue_scaling import MAX_STEPS, step_sizes
from tests.infra.conftest import Synthesized, synthesize


def alarm_expression(s: Synthesized, policy_id_part: str) -> dict[str, Any]:
    (alarm,) = [
        a["Properties"]
        for a in s.worker.find_resources("AWS::CloudWatch::Alarm").values()
        if policy_id_part in str(a["Properties"].get("AlarmActions"))
    ]
    return dict(alarm)


def policy(s: Synthesized, name_part: str) -> dict[str, Any]:
    (found,) = [
        p["Properties"]
        for key, p in s.worker.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").items()
        if name_part in key
    ]
    return dict(found)


def test_scalable_target_bounds_come_from_config(prod: Synthesized) -> None:
    prod.worker.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": prod.config.scaling.min_tasks,
            "MaxCapacity": prod.config.scaling.max_tasks,
            "ScalableDimension": "ecs:service:DesiredCount",
        },
    )


def test_no_cpu_target_tracking_fights_queue_scaling(prod: Synthesized) -> None:
    prod.worker.resource_properties_count_is(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"PolicyType": "TargetTrackingScaling"}, 0
    )
    prod.worker.resource_properties_count_is(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"PolicyType": "StepScaling"}, 2
    )


def test_scale_out_counts_missing_tasks_from_backlog_per_task(prod: Synthesized) -> None:
    per_task = prod.config.scaling.target_backlog_per_process * prod.config.worker.processes
    alarm = alarm_expression(prod, "ScaleOutPolicy")
    (expression,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert expression["Expression"] == f"CEIL(visible / {per_task}) - FILL(desired, 0)"
    ids = {m["Id"]: m for m in alarm["Metrics"]}
    assert (
        ids["visible"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    )
    assert ids["desired"]["MetricStat"]["Metric"]["Namespace"] == "ECS/ContainerInsights"
    assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (1, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_scale_out_steps_add_the_missing_tasks(prod: Synthesized) -> None:
    config = policy(prod, "ScaleOutPolicy")["StepScalingPolicyConfiguration"]
    assert config["AdjustmentType"] == "ChangeInCapacity"
    assert config["Cooldown"] == prod.config.scaling.scale_out_cooldown_seconds
    steps = config["StepAdjustments"]
    # A deficit of d tasks (metric = d, threshold 1) falls in the step that adds about d.
    assert steps[0] == {
        "MetricIntervalLowerBound": 0,
        "MetricIntervalUpperBound": 1,
        "ScalingAdjustment": 1,
    }
    for step in steps:
        assert step["ScalingAdjustment"] == step["MetricIntervalLowerBound"] + 1
    assert "MetricIntervalUpperBound" not in steps[-1]
    assert len(steps) <= MAX_STEPS


def test_scale_in_counts_in_flight_messages_and_waits(prod: Synthesized) -> None:
    alarm = alarm_expression(prod, "ScaleInPolicy")
    (expression,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    processes = prod.config.worker.processes
    assert expression["Expression"] == f"FILL(desired, 0) - (visible + in_flight) / {processes}"
    ids = {m["Id"]: m for m in alarm["Metrics"]}
    assert (
        ids["in_flight"]["MetricStat"]["Metric"]["MetricName"]
        == "ApproximateNumberOfMessagesNotVisible"
    )
    minutes = prod.config.scaling.scale_in_after_minutes
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (minutes, minutes)


def test_scale_in_steps_remove_the_surplus(prod: Synthesized) -> None:
    config = policy(prod, "ScaleInPolicy")["StepScalingPolicyConfiguration"]
    assert config["Cooldown"] == prod.config.scaling.scale_in_cooldown_seconds
    for step in config["StepAdjustments"]:
        assert step["ScalingAdjustment"] == -(step["MetricIntervalLowerBound"] + 1)


def test_step_sizes_reach_max_tasks_within_the_step_limit() -> None:
    for max_tasks in (1, 2, 12, 60, 500):
        sizes = step_sizes(max_tasks)
        assert sizes[0] == 1 and len(sizes) <= MAX_STEPS
        assert max(sizes) <= max(max_tasks, 1)
        assert sizes == sorted(set(sizes))
    assert step_sizes(60)[-1] >= 40


def test_batch_window_raises_and_releases_the_floor_in_its_time_zone(prod: Synthesized) -> None:
    window = prod.config.batch_windows[0]
    prod.worker.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ScheduledActions": [
                {
                    "ScalableTargetAction": {"MinCapacity": window.min_tasks},
                    "Schedule": "cron(0 4 * * ? *)",
                    "ScheduledActionName": "RaiseFloor0400To0900",
                    "Timezone": "Asia/Tokyo",
                },
                {
                    "ScalableTargetAction": {"MinCapacity": prod.config.scaling.min_tasks},
                    "Schedule": "cron(30 4 * * ? *)",
                    "ScheduledActionName": "ReleaseFloor0400To0900",
                    "Timezone": "Asia/Tokyo",
                },
            ]
        },
    )


def test_several_windows_each_get_a_pair_of_actions() -> None:
    windows = [
        {"start": "04:00", "end": "09:00", "timezone": "Asia/Tokyo", "min_tasks": 4},
        {
            "start": "13:00",
            "end": "15:00",
            "timezone": "Europe/Paris",
            "min_tasks": 2,
            "hold_minutes": 120,
        },
    ]
    s = synthesize("prod", batch_windows=windows, batch_window=None)
    (target,) = s.worker.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    actions = {a["ScheduledActionName"]: a for a in target["Properties"]["ScheduledActions"]}
    assert set(actions) == {
        "RaiseFloor0400To0900",
        "ReleaseFloor0400To0900",
        "RaiseFloor1300To1500",
        "ReleaseFloor1300To1500",
    }
    assert actions["ReleaseFloor1300To1500"]["Schedule"] == "cron(0 15 * * ? *)"
    assert actions["RaiseFloor1300To1500"]["Timezone"] == "Europe/Paris"


def test_no_scheduled_actions_without_a_window(dev: Synthesized) -> None:
    dev.worker.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"ScheduledActions": Match.absent()}
    )


def test_deadline_alarm_fires_when_the_oldest_message_cannot_finish_by_the_end(
    prod: Synthesized,
) -> None:
    window = prod.config.batch_windows[0]
    length = (
        window.end.hour * 60 + window.end.minute - window.start.hour * 60 - window.start.minute
    ) * 60
    prod.worker.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Namespace": "AWS/SQS",
            "Threshold": length - prod.config.worker.job_timeout_seconds,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmDescription": Match.string_like_regexp("miss 09:00 Asia/Tokyo"),
        },
    )


def test_backlog_beyond_max_tasks_warns_the_topic(prod: Synthesized) -> None:
    per_task = prod.config.scaling.target_backlog_per_process * prod.config.worker.processes
    (alarm,) = [
        a["Properties"]
        for key, a in prod.worker.find_resources("AWS::CloudWatch::Alarm").items()
        if key.startswith("ScalingBacklogBeyondMaxTasksAlarm")
    ]
    (expression,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert expression["Expression"] == f"CEIL(visible / {per_task})"
    assert alarm["Threshold"] == prod.config.scaling.max_tasks
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (5, 5)
    (topic,) = prod.worker.find_resources("AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic}]
