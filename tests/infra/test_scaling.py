"""Queue-depth step scaling, the batch window and the deadline alarm."""

from __future__ import annotations

import itertools
import math
import random
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aws_cdk.assertions import Match

from scripts.capacity.sim.mathexpr import Expression
from stacks.config import BatchWindow
from stacks.constructs.batch_window import window_clock
from stacks.constructs.queue_scaling import (
    MAX_STEPS,
    PRIOR_JOBS,
    REACTION_SECONDS,
    capacity_steps,
    deadline_tasks_expression,
)
from tests.infra.conftest import Synthesized, synthesize

NEW_YORK = {"start": "04:00", "end": "09:00", "timezone": "America/New_York", "min_tasks": 2}


def alarm_expression(s: Synthesized, policy_id_part: str) -> dict[str, Any]:
    (alarm,) = [
        a["Properties"]
        for a in s.worker.find_resources("AWS::CloudWatch::Alarm").values()
        if policy_id_part in str(a["Properties"].get("AlarmActions"))
    ]
    return dict(alarm)


def needed_by_the_rules(s: Synthesized) -> dict[str, Any]:
    """The scale-out alarm returning ``needed``: what the rules ask for, before the busy
    floor."""
    alarm = alarm_expression(s, "FleetSizePolicy")
    metrics = [{**m, "ReturnData": m["Id"] == "needed"} for m in alarm["Metrics"]]
    return {**alarm, "Metrics": metrics}


def beyond_max_alarm(s: Synthesized) -> dict[str, Any]:
    (alarm,) = [
        a["Properties"]
        for key, a in s.worker.find_resources("AWS::CloudWatch::Alarm").items()
        if key.startswith("ScalingBacklogBeyondMaxTasksAlarm")
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
    template's expressions as CloudWatch would compute them (time functions in UTC). A metric
    not given is missing (the job metric when no job finished)."""
    values: dict[str, float | None] = {
        m["Id"]: metrics.get(m["Id"]) for m in alarm["Metrics"] if "MetricStat" in m
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
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"PolicyType": "StepScaling"}, 1
    )


def test_outside_windows_the_fleet_is_the_backlog_rule_or_the_busy_floor(
    dev: Synthesized,
) -> None:
    per_task = dev.config.scaling.target_backlog_per_process * dev.config.worker.processes
    processes = dev.config.worker.processes
    alarm = alarm_expression(dev, "FleetSizePolicy")
    found = expressions(alarm)
    assert found.pop("needed") == f"CEIL(visible / {per_task})"
    busy = f"CEIL(in_flight / {processes})"
    assert list(found.values()) == [f"IF(needed > {busy}, needed, {busy})"]
    ids = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert ids["visible"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert ids["in_flight"]["MetricName"] == "ApproximateNumberOfMessagesNotVisible"
    assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (0, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_scaling_reads_no_task_count_and_fills_only_the_job_metric(env: str) -> None:
    """A late ECS datapoint cannot become capacity: the scaling alarms read the queue and the
    kit's job metric only, and FILL stands only for "no job finished" (the prior then)."""
    spot = {"capacity": {"spot_weight": 3, "on_demand_base": 1}}
    s = synthesize(env, worker=spot, scaling={"max_tasks": 2 if env == "dev" else 6})
    worker = s.worker.find_resources("AWS::CloudWatch::Alarm")
    for key, resource in worker.items():
        if not key.startswith("Scaling"):
            continue
        alarm = resource["Properties"]
        namespaces = {
            m["MetricStat"]["Metric"]["Namespace"] for m in alarm["Metrics"] if "MetricStat" in m
        }
        assert namespaces <= {"AWS/SQS", f"QueueWorkerKit/{env}"}, key
        for expression in expressions(alarm).values():
            for filled in re.findall(r"FILL\((?:FILL\()?(\w+)", expression):
                assert filled in ("job_seconds", "jobs"), (key, expression)


def test_inside_the_window_the_deadline_rule_follows_work_left_and_time_left(
    prod: Synthesized,
) -> None:
    """Tokyo 04:00-09:00, margin 30: the deadline is 08:30 JST = 23:30 UTC, 270 minutes after
    the window opens at 19:00 UTC; 8 processes a task; the mean job is measured; half the time
    left is kept in reserve (deadline_headroom_percent 50, the default)."""
    per_task = prod.config.scaling.target_backlog_per_process * prod.config.worker.processes
    alarm = alarm_expression(prod, "FleetSizePolicy")
    found = expressions(alarm)
    assert found["needed"] == f"MAX([CEIL(visible / {per_task}), window0])"
    assert found["utc_minute"] == "HOUR(visible) * 60 + MINUTE(visible)"
    assert found["work"] == "(visible + in_flight) * mean_job"
    assert found["mean_job"] == (
        f"({PRIOR_JOBS} * 165 + FILL(FILL(job_seconds, REPEAT), 0)) "
        f"/ ({PRIOR_JOBS} + FILL(FILL(jobs, REPEAT), 0))"
    )
    since = "IF(utc_minute < 1140, utc_minute + 300, utc_minute - 1140)"
    left = f"((270 - {since}) * 60 - mean_job - {REACTION_SECONDS})"
    headroom = prod.config.scaling.deadline_headroom_percent
    assert headroom == 50
    left = f"({left} * 0.5)"
    assert found["window0"] == (
        f"IF({since} < 270, CEIL(work / (8 * IF({left} > mean_job, {left}, mean_job))), 0)"
    )
    ids = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert ids["job_seconds"]["Metric"]["Namespace"] == "QueueWorkerKit/prod"
    assert ids["job_seconds"]["Metric"]["MetricName"] == ids["jobs"]["Metric"]["MetricName"]
    assert (ids["job_seconds"]["Stat"], ids["jobs"]["Stat"]) == ("Sum", "SampleCount")


def test_the_job_metric_is_the_one_the_log_filter_writes(prod: Synthesized) -> None:
    """The scaling reads the metric the monitoring's metric filter makes of `job` lines."""
    alarm = alarm_expression(prod, "FleetSizePolicy")
    ids = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    filters = prod.worker.find_resources("AWS::Logs::MetricFilter")
    written = {
        (t["MetricNamespace"], t["MetricName"], t["MetricValue"])
        for f in filters.values()
        for t in f["Properties"]["MetricTransformations"]
    }
    read = (ids["jobs"]["Namespace"], ids["jobs"]["MetricName"])
    assert [w for w in written if w[:2] == read and w[2].startswith("$.")], written


def test_the_deadline_rule_sizes_a_late_batch_and_stops_at_the_deadline(
    prod: Synthesized,
) -> None:
    alarm = needed_by_the_rules(prod)
    day = date(2026, 11, 24)

    def tasks(clock: str, visible: float, in_flight: float = 0, **jobs: float) -> float:
        moment = local(day, clock, "Asia/Tokyo")
        value = evaluate(alarm, moment, visible=visible, in_flight=in_flight, **jobs)
        assert value is not None
        return value

    # Half of the time left is kept in reserve (deadline_headroom_percent 50).
    assert prod.config.scaling.deadline_headroom_percent == 50

    def expected(messages: float, mean: float, seconds_to_deadline: float) -> int:
        time_left = max((seconds_to_deadline - mean - 180) * 0.5, mean)
        return math.ceil(messages * mean / (8 * time_left))

    # 1,000 messages at 07:30, no job finished yet: the configured 165 s a job.
    assert tasks("07:30", 1000) == expected(1000, 165, 3600) == 13
    # Jobs measured at 330 s (30 done in the minute): the prior weighs 10 of 40.
    mean = (PRIOR_JOBS * 165 + 30 * 330) / (PRIOR_JOBS + 30)
    measured = tasks("07:30", 1000, job_seconds=30 * 330, jobs=30)
    assert measured == expected(1000, mean, 3600) == 24  # > 12: beyond max_tasks
    # Past the time a job can still start: one process per message (never more).
    assert tasks("08:27", 1000) == 1000 / 8
    # Outside the window (before it, after the deadline): the backlog rule only.
    assert tasks("03:59", 1000) == tasks("08:30", 1000) == 2
    # In-flight messages are work left too.
    assert tasks("04:00", 0, in_flight=2000) == expected(2000, 165, 16200)


def test_a_late_queue_datapoint_changes_nothing(prod: Synthesized) -> None:
    """Missing visible or in-flight: the minute is missing (the alarm, notBreaching, then
    keeps to its newest complete datapoint or goes OK), never a count built on a zero."""
    alarm = alarm_expression(prod, "FleetSizePolicy")
    moment = local(date(2026, 11, 24), "05:00", "Asia/Tokyo")
    assert evaluate(alarm, moment, visible=None, in_flight=40) is None
    assert evaluate(alarm, moment, visible=400, in_flight=None) is None


def test_the_fleet_is_never_below_the_busy_tasks_nor_above_one_process_a_message(
    prod: Synthesized,
) -> None:
    """Whatever the queue, the measured jobs and the clock: ceil(in_flight / processes) <=
    fleet size <= ceil((visible + in_flight) / processes). No task that runs a job is asked
    away, and no task is asked for that would find nothing to do."""
    alarm = alarm_expression(prod, "FleetSizePolicy")
    processes = prod.config.worker.processes
    rng = random.Random(7)
    start = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    for _ in range(3000):
        moment = start + timedelta(minutes=rng.randrange(8 * 60))  # around the Tokyo window
        visible = float(rng.choice([0, 1, 7, 63, 640, 2000, 20000, rng.randrange(5000)]))
        in_flight = float(rng.choice([0, 1, 8, 96, rng.randrange(500)]))
        jobs = rng.choice([{}, {"jobs": 5.0, "job_seconds": 5.0 * rng.randrange(1, 3000)}])
        size = evaluate(alarm, moment, visible=visible, in_flight=in_flight, **jobs)
        assert size is not None
        low = math.ceil(in_flight / processes)
        high = math.ceil((visible + in_flight) / processes)
        assert low <= size <= max(high, low), (moment, visible, in_flight, jobs, size)


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
    alarm = alarm_expression(s, "FleetSizePolicy")
    assert local(day, "12:00", "America/New_York").utcoffset() == timedelta(hours=offset_hours)
    deadline = local(day, "08:30", "America/New_York")
    for minute in range(4 * 60, 8 * 60 + 30):
        moment = deadline.replace(hour=minute // 60, minute=minute % 60)
        visible = 10_000.0
        tasks = evaluate(alarm, moment, visible=visible, in_flight=0.0)
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


def test_the_policy_sets_the_fleet_size_rounded_up_to_its_steps(prod: Synthesized) -> None:
    config = policy(prod, "FleetSizePolicy")["StepScalingPolicyConfiguration"]
    assert config["AdjustmentType"] == "ExactCapacity"
    assert config["Cooldown"] == prod.config.scaling.scale_in_cooldown_seconds
    steps = config["StepAdjustments"]
    assert len(steps) <= MAX_STEPS
    assert steps[0]["MetricIntervalLowerBound"] == 0
    for step, following in itertools.pairwise(steps):
        # Contiguous intervals [lower, upper) of the fleet size (threshold 0); every size in
        # one gets at least that many tasks.
        assert step["MetricIntervalUpperBound"] == following["MetricIntervalLowerBound"]
        assert step["ScalingAdjustment"] >= step["MetricIntervalUpperBound"] - 1
    assert "MetricIntervalUpperBound" not in steps[-1]
    assert steps[-1]["ScalingAdjustment"] == prod.config.scaling.max_tasks


def test_capacity_steps_reach_max_tasks_within_the_step_limit() -> None:
    assert capacity_steps(12) == list(range(13))
    for max_tasks in (1, 2, 12, 19, 20, 40, 60, 500):
        sizes = capacity_steps(max_tasks)
        assert sizes[0] == 0 and sizes[-1] == max_tasks and len(sizes) <= MAX_STEPS
        assert sizes == sorted(set(sizes))
        if max_tasks <= 60:  # rounding up asks for at most a quarter more than the rules
            assert all(b <= 1.25 * (a + 1) for a, b in itertools.pairwise(sizes))


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


def test_backlog_beyond_max_tasks_counts_the_whole_time_left_not_the_headroom(
    prod: Synthesized,
) -> None:
    """The headroom is a reserve the scaling keeps, not a need: 10x at 04:00 (20,000 jobs of
    165 s) asks the scaling for 53 tasks, half the time kept in reserve, yet 27 do it with the
    whole time left, and the backlog rule asks for 32 (80 a process). With max_tasks 32 that
    day is done in time: no warning. With prod's 12, or when half the volume again arrives
    at 07:00, it is not: the alarm's value is above max_tasks."""
    alarm, needed = beyond_max_alarm(prod), needed_by_the_rules(prod)
    day = date(2026, 11, 24)

    def tasks(of: dict[str, Any], clock: str, visible: float) -> float | None:
        return evaluate(of, local(day, clock, "Asia/Tokyo"), visible=visible, in_flight=0)

    whole_time = math.ceil(20000 * 165 / (8 * (16200 - 345)))
    assert tasks(needed, "04:00", 20000) == math.ceil(20000 * 165 / (8 * (16200 - 345) * 0.5))
    assert tasks(needed, "04:00", 20000) == 53
    assert tasks(alarm, "04:00", 20000) == max(whole_time, math.ceil(20000 / 640)) == 32
    assert tasks(alarm, "04:00", 20000) > prod.config.scaling.max_tasks  # 12: it fires
    assert tasks(alarm, "07:00", 10000) == math.ceil(10000 * 165 / (8 * (5400 - 345))) == 41


def test_mean_job_seconds_is_the_prior_of_the_measured_mean(prod: Synthesized) -> None:
    s = synthesize("prod", scaling={"mean_job_seconds": 60})
    assert expressions(alarm_expression(s, "FleetSizePolicy"))["mean_job"].startswith(
        f"({PRIOR_JOBS} * 60 + "
    )


def test_backlog_beyond_max_tasks_warns_the_topic(prod: Synthesized) -> None:
    alarm = beyond_max_alarm(prod)
    # The scale-out rules (the backlog and the deadline), the deadline without the headroom.
    (expression,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    scale_out = expressions(alarm_expression(prod, "FleetSizePolicy"))
    assert expression["Expression"] == scale_out["needed"]
    ours = {k: v for k, v in expressions(alarm).items() if k != expression["Id"]}
    assert ours.pop("window0") == deadline_tasks_expression(
        prod.config.batch_windows[0], processes=prod.config.worker.processes
    )
    assert ours == {k: v for k, v in scale_out.items() if k in ("utc_minute", "mean_job", "work")}
    assert alarm["Threshold"] == prod.config.scaling.max_tasks
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (5, 5)
    (topic,) = prod.worker.find_resources("AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic}]
