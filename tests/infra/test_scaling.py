"""Queue-depth step scaling, the batch window and the deadline alarm."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aws_cdk.assertions import Match

from scripts.sim.mathexpr import Expression
from stacks.config import BatchWindow
from stacks.constructs.batch_window import window_clock
from stacks.constructs.queue_scaling import MAX_STEPS, REACTION_SECONDS, step_sizes
from tests.infra.conftest import Synthesized, synthesize

NEW_YORK = {"start": "04:00", "end": "09:00", "timezone": "America/New_York", "min_tasks": 2}


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


def evaluate(alarm: dict[str, Any], moment: datetime, **metrics: float | None) -> float | None:
    """The alarm's returned value for one datapoint, through the simulator's metric math: the
    template's expressions as CloudWatch would compute them (time functions in UTC)."""
    values: dict[str, float | None] = {
        m["Id"]: metrics[m["Id"]] for m in alarm["Metrics"] if "MetricStat" in m
    }
    pending = {m["Id"]: Expression(m["Expression"]) for m in alarm["Metrics"] if "Expression" in m}
    while pending:
        ready = [i for i, e in pending.items() if e.ids <= values.keys()]
        assert ready, f"unresolvable expressions {sorted(pending)}"
        for query_id in ready:
            values[query_id] = pending.pop(query_id).evaluate(values, moment)
    (returned,) = [m["Id"] for m in alarm["Metrics"] if m.get("ReturnData", True)]
    return values[returned]


def expressions(alarm: dict[str, Any]) -> dict[str, str]:
    return {m["Id"]: m["Expression"] for m in alarm["Metrics"] if "Expression" in m}


def local(day: date, clock: str, zone: str) -> datetime:
    hours, minutes = map(int, clock.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=ZoneInfo(zone))


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


def test_outside_windows_scale_out_counts_missing_tasks_from_backlog_per_task(
    dev: Synthesized,
) -> None:
    per_task = dev.config.scaling.target_backlog_per_process * dev.config.worker.processes
    alarm = alarm_expression(dev, "ScaleOutPolicy")
    assert expressions(alarm) == {
        "needed": f"CEIL(visible / {per_task})",
        next(iter(set(expressions(alarm)) - {"needed"})): "needed - FILL(desired, 0)",
    }
    ids = {m["Id"]: m for m in alarm["Metrics"]}
    assert (
        ids["visible"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    )
    assert ids["desired"]["MetricStat"]["Metric"]["Namespace"] == "ECS/ContainerInsights"
    assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (1, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_inside_the_window_scale_out_follows_work_left_and_time_left(prod: Synthesized) -> None:
    """Tokyo 04:00-09:00, margin 30: the deadline is 08:30 JST = 23:30 UTC, 270 minutes after
    the window opens at 19:00 UTC; 165 s a job, 8 processes a task."""
    per_task = prod.config.scaling.target_backlog_per_process * prod.config.worker.processes
    alarm = alarm_expression(prod, "ScaleOutPolicy")
    found = expressions(alarm)
    assert found["needed"] == f"MAX([CEIL(visible / {per_task}), window0])"
    assert found["utc_minute"] == "HOUR(visible) * 60 + MINUTE(visible)"
    assert found["work"] == "(visible + in_flight) * 165"
    since = "IF(utc_minute < 1140, utc_minute + 300, utc_minute - 1140)"
    left = f"((270 - {since}) * 60 - {165 + REACTION_SECONDS})"
    assert found["window0"] == (
        f"IF({since} < 270, CEIL(work / (8 * IF({left} > 165, {left}, 165))), 0)"
    )
    ids = {m["Id"]: m for m in alarm["Metrics"]}
    assert (
        ids["in_flight"]["MetricStat"]["Metric"]["MetricName"]
        == "ApproximateNumberOfMessagesNotVisible"
    )


def test_the_deadline_rule_sizes_a_late_batch_and_stops_at_the_deadline(
    prod: Synthesized,
) -> None:
    alarm = alarm_expression(prod, "ScaleOutPolicy")
    day = date(2026, 11, 24)

    def missing(clock: str, visible: float, in_flight: float = 0, desired: float = 0) -> float:
        moment = local(day, clock, "Asia/Tokyo")
        value = evaluate(alarm, moment, visible=visible, in_flight=in_flight, desired=desired)
        assert value is not None
        return value

    # 1,000 messages at 07:30: an hour left, minus one job and the reaction time.
    assert missing("07:30", 1000) == math.ceil(1000 * 165 / (8 * (3600 - 165 - 180)))  # 7
    # The backlog rule alone would ask for 2 (1000 / 640): the larger rule wins.
    assert missing("07:30", 1000, desired=2) == 5
    # Past the time a job can still start: one process per message (never more).
    assert missing("08:27", 1000) == 1000 / 8
    # Outside the window (before it, after the deadline): the backlog rule only.
    assert missing("03:59", 1000) == missing("08:30", 1000) == 2
    # In-flight messages are work left too.
    assert missing("04:00", 0, in_flight=2000) == math.ceil(2000 * 165 / (8 * (16200 - 345)))


def test_the_policies_never_fight(prod: Synthesized) -> None:
    """Scale-out (needed - desired >= 1) and scale-in (desired - (visible + in_flight) /
    processes >= 1) never hold at once, whatever the queue, the fleet and the clock."""
    out_alarm = alarm_expression(prod, "ScaleOutPolicy")
    in_alarm = alarm_expression(prod, "ScaleInPolicy")
    rng = random.Random(7)
    start = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    for _ in range(3000):
        moment = start + timedelta(minutes=rng.randrange(8 * 60))  # around the Tokyo window
        values = {
            "visible": float(rng.choice([0, 1, 7, 63, 640, 2000, 20000, rng.randrange(5000)])),
            "in_flight": float(rng.choice([0, 1, 8, 96, rng.randrange(500)])),
            "desired": float(rng.randrange(0, 13)),
        }
        scale_out = evaluate(out_alarm, moment, **values)
        scale_in = evaluate(in_alarm, moment, **values)
        assert scale_out is not None and scale_in is not None
        assert not (scale_out >= 1 and scale_in >= 1), (moment, values, scale_out, scale_in)


@pytest.mark.parametrize(
    ("day", "offset_hours"),
    [
        (date(2026, 1, 15), -5),
        (date(2026, 7, 1), -4),
        (date(2026, 3, 8), -4),
        (date(2026, 11, 1), -5),
    ],
)
def test_a_daylight_saving_zone_keeps_its_window_in_both_seasons(
    day: date, offset_hours: int
) -> None:
    """America/New_York: the rule is on for every minute of 04:00-08:30 local, winter and
    summer (the switch days too), and never promises more time than is left."""
    s = synthesize("prod", batch_window=NEW_YORK)
    alarm = alarm_expression(s, "ScaleOutPolicy")
    assert local(day, "12:00", "America/New_York").utcoffset() == timedelta(hours=offset_hours)
    deadline = local(day, "08:30", "America/New_York")
    for minute in range(4 * 60, 8 * 60 + 30):
        moment = deadline.replace(hour=minute // 60, minute=minute % 60)
        visible = 10_000.0
        tasks = evaluate(alarm, moment, visible=visible, in_flight=0.0, desired=0.0)
        assert tasks is not None
        true_left = (deadline - moment).total_seconds() - 165 - REACTION_SECONDS
        honest = math.ceil(visible * 165 / (8 * max(true_left, 165)))
        assert tasks >= honest, (moment, tasks, honest)  # never too few for the deadline
        assert tasks <= visible / 8  # never more than one process per message


def test_window_clock_of_a_zone_without_daylight_saving_is_exact() -> None:
    window = BatchWindow(start=time(4), end=time(9), timezone="Asia/Tokyo", min_tasks=4)
    assert window_clock(window, 2026) == window_clock(window, 2030)
    clock = window_clock(window, 2026)
    assert (clock.start_utc, clock.deadline, clock.span) == (19 * 60, 270, 270)
    new_york = window_clock(
        BatchWindow(start=time(4), end=time(9), timezone="America/New_York", min_tasks=4), 2026
    )
    # Opens at 08:00 UTC (04:00 EDT), on until 13:30 UTC (08:30 EST).
    assert (new_york.start_utc, new_york.deadline, new_york.span) == (8 * 60, 270, 330)


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
    # 04:00 to the deadline 08:30 is 16,200 s, minus the 900 s job timeout.
    prod.worker.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Namespace": "AWS/SQS",
            "Threshold": 16200 - prod.config.worker.job_timeout_seconds,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmDescription": Match.string_like_regexp("miss 08:30 Asia/Tokyo"),
        },
    )


def test_the_deadline_is_in_the_template_metadata_for_the_simulator(prod: Synthesized) -> None:
    assert prod.worker_json["Metadata"]["Deadline0400To0900"] == "08:30"
    later = synthesize("prod", batch_window={"deadline_margin_minutes": 0})
    assert later.worker_json["Metadata"]["Deadline0400To0900"] == "09:00"


def test_mean_job_seconds_sets_the_work_left(prod: Synthesized) -> None:
    s = synthesize("prod", scaling={"mean_job_seconds": 60})
    assert expressions(alarm_expression(s, "ScaleOutPolicy"))["work"] == (
        "(visible + in_flight) * 60"
    )


def test_backlog_beyond_max_tasks_warns_the_topic(prod: Synthesized) -> None:
    (alarm,) = [
        a["Properties"]
        for key, a in prod.worker.find_resources("AWS::CloudWatch::Alarm").items()
        if key.startswith("ScalingBacklogBeyondMaxTasksAlarm")
    ]
    # The same tasks-needed expression as scale-out: the backlog and the deadline rules.
    (expression,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    scale_out = expressions(alarm_expression(prod, "ScaleOutPolicy"))
    assert expression["Expression"] == scale_out["needed"]
    assert {k: v for k, v in expressions(alarm).items() if k != expression["Id"]} == {
        k: v for k, v in scale_out.items() if k in ("utc_minute", "work", "window0")
    }
    assert alarm["Threshold"] == prod.config.scaling.max_tasks
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (5, 5)
    (topic,) = prod.worker.find_resources("AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic}]
