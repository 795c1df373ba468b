"""Step scaling on queue depth, counted in tasks."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import BatchWindow, ScalingConfig
from stacks.constructs.batch_window import DAY_MINUTES, window_clock
from stacks.constructs.work_queue import across_queues

MINUTE = Duration.minutes(1)
# Step scaling policies take at most 20 step adjustments.
MAX_STEPS = 20
# CloudWatch takes at most 10 metrics and 10 expressions in one alarm.
ALARM_LIMIT = 10
# Minutes the backlog must need more than max_tasks before that alarm fires.
BACKLOG_BEYOND_MAX_MINUTES = 5
# Seconds of the time left that deadline-aware scaling keeps in hand: the alarm's newest
# datapoint is one to two minutes old and a new task needs about a minute to start.
REACTION_SECONDS = 180
# How many jobs the configured mean_job_seconds weighs in the measured mean: with about 30 jobs
# finishing a minute in prod's batch the measured value leads; with none, the configured one.
PRIOR_JOBS = 10


def deadline_tasks_expression(
    window: BatchWindow, *, processes: int, headroom_percent: int = 0, year: int | None = None
) -> str:
    """Tasks that finish the work left by ``window``'s deadline; 0 outside the window.

    ``ceil(work / (processes x time_left))`` with the expression ids ``work`` (visible plus
    in-flight messages times the mean job), ``mean_job`` (seconds) and ``utc_minute`` (the
    datapoint's UTC minute of the day). ``time_left`` = seconds to the deadline minus one mean
    job (the last job must start one job before the deadline) and REACTION_SECONDS, less
    ``headroom_percent`` of it (kept in reserve for work nobody announced: a later batch,
    longer jobs, retries), never less than one mean job: a job cannot be split, so the rule
    never asks for more than one process per message.
    """
    clock = window_clock(window, year)
    # Minutes since the window opened, on the UTC clock (a window may cross UTC midnight).
    since = (
        f"IF(utc_minute < {clock.start_utc}, utc_minute + {DAY_MINUTES - clock.start_utc}, "
        f"utc_minute - {clock.start_utc})"
    )
    left = f"(({clock.deadline} - {since}) * 60 - mean_job - {REACTION_SECONDS})"
    if headroom_percent:
        left = f"({left} * {(100 - headroom_percent) / 100:g})"
    time_left = f"IF({left} > mean_job, {left}, mean_job)"
    return f"IF({since} < {clock.span}, CEIL(work / ({processes} * {time_left})), 0)"


def fleet_size_alarm_size(queues: int, windows: int) -> tuple[int, int]:
    """The metrics and the expressions of the fleet-size alarm of a worker on ``queues``
    queues with ``windows`` batch windows (each at most ALARM_LIMIT): two SQS metrics a queue,
    the job metric twice with windows; the rules' expressions, one a window, and with several
    queues the two sums."""
    metrics = 2 * queues + (2 if windows else 0)
    expressions = (5 + windows if windows else 2) + (2 if queues > 1 else 0)
    return metrics, expressions


def repeat(metric_id: str) -> str:
    """The metric's value, else its newest earlier one in the alarm's range, else 0: a minute
    in which no job finished, or whose datapoint is late, keeps the last measured jobs."""
    return f"FILL(FILL({metric_id}, REPEAT), 0)"


def capacity_steps(max_tasks: int) -> list[int]:
    """The task counts the scaling policy can set, 0 first: one by one while the 20 step
    adjustments a policy takes allow it, then growing by the smallest ratio that still reaches
    ``max_tasks`` (for 40: 0..12, then 14, 17, 20, 24, 29, 34, 40)."""
    top = max(max_tasks, 1)
    if top < MAX_STEPS:
        return list(range(top + 1))
    ratio = 1.0
    while True:
        ratio += 0.01
        sizes = [0]
        while sizes[-1] < top:
            sizes.append(min(top, max(sizes[-1] + 1, math.ceil(sizes[-1] * ratio))))
        if len(sizes) <= MAX_STEPS:
            return sizes


class QueueScaling(Construct):
    """Sets the worker service's task count from the queues each minute, between ``min_tasks``
    and ``max_tasks``, with no task count read back from CloudWatch. ``visible`` and
    ``in_flight`` below are the sums over every queue of ``queues`` (the worker's, in priority
    order; :func:`across_queues`).

    One step policy of type ``ExactCapacity`` sets the desired count to ``fleet_size`` (rounded
    up to :func:`capacity_steps`), the larger of:

    * the backlog rule ``CEIL(visible / (target_backlog_per_process x processes))``;
    * inside each batch window, the deadline rule ``CEIL((visible + in_flight) x mean_job /
      (processes x time_left))`` (:func:`deadline_tasks_expression`: ``time_left`` keeps
      ``deadline_headroom_percent`` of the time in reserve), where ``mean_job`` is the
      measured mean job duration (the kit's ``JobDuration`` metric, from the ``job`` log
      lines) weighed against ``mean_job_seconds`` as PRIOR_JOBS jobs: the configured value
      until jobs finish, the measured one once many have (a minute without a datapoint keeps
      the newest measured one, :func:`repeat`);
    * the busy floor ``CEIL(in_flight / processes)``: the tasks the messages being worked need,
      so a queue that looks empty while 5-minute jobs run keeps its tasks.

    Every input is an SQS metric (or the job metric, where missing means "no job finished"
    or "late": the estimate keeps the newest measured jobs, else the prior). A late or missing
    queue datapoint therefore leaves the alarm on its newest complete datapoint (CloudWatch
    evaluates the most recent real datapoints) or, with none, in OK: the count stays as it
    is, it never grows because a metric is late.
    Setting an exact count is idempotent, so the policy needs no cooldown to avoid adding the
    same tasks twice; the alarm stays in ALARM while the queue publishes (threshold 0), which
    is how Application Auto Scaling applies the policy each minute. Scaling in lowers the
    count only: ECS stops only tasks whose workers cleared task scale-in protection, so a
    busy task is never stopped. No CPU target tracking: the jobs are I/O bound.

    A second alarm, ``backlog_beyond_max_alarm``, warns (no scaling action) when the rules
    without the headroom (``beyond_max_metric``: the deadline rule with the whole time left)
    ask for more than ``max_tasks`` for 5 minutes: the deadline will be missed unless the
    limits rise. The headroom is a reserve the scaling keeps, not a need: a day that starts
    above ``max_tasks`` only because of it is done in time and wakes nobody.
    Attributes: ``scalable_target``, ``needed_metric``, ``beyond_max_metric``,
    ``mean_job_metric``, ``fleet_size_metric``, ``fleet_size_alarm``,
    ``backlog_beyond_max_alarm``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        service: ecs.FargateService,
        cluster: ecs.ICluster,
        queues: Sequence[sqs.IQueue],
        job_duration: cloudwatch.Metric,
        processes: int,
        config: ScalingConfig,
        windows: tuple[BatchWindow, ...] = (),
    ) -> None:
        super().__init__(scope, id_)
        self.scalable_target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.ECS,
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{cluster.cluster_name}/{service.service_name}",
            min_capacity=config.min_tasks,
            max_capacity=config.max_tasks,
        )
        visible = across_queues(
            queues,
            lambda queue: queue.metric_approximate_number_of_messages_visible(
                period=MINUTE, statistic="Maximum"
            ),
            function="SUM",
            id_="visible",
            label="Messages visible in the worker's queues",
        )
        in_flight = across_queues(
            queues,
            lambda queue: queue.metric_approximate_number_of_messages_not_visible(
                period=MINUTE, statistic="Maximum"
            ),
            function="SUM",
            id_="in_flight",
            label="Messages in flight from the worker's queues",
        )
        self.mean_job_metric = cloudwatch.MathExpression(
            expression=(
                f"({PRIOR_JOBS} * {config.mean_job_seconds} + {repeat('job_seconds')}) "
                f"/ ({PRIOR_JOBS} + {repeat('jobs')})"
            ),
            using_metrics={
                "job_seconds": job_duration.with_(statistic="Sum", period=MINUTE),
                "jobs": job_duration.with_(statistic="SampleCount", period=MINUTE),
            },
            label="Mean job seconds (measured, the configured value as the prior)",
            period=MINUTE,
        )
        per_task = config.target_backlog_per_process * processes
        rules = functools.partial(
            self._needed,
            f"CEIL(visible / {per_task})",
            metrics={"visible": visible, "in_flight": in_flight, "mean_job": self.mean_job_metric},
            processes=processes,
            windows=windows,
        )
        self.needed_metric = rules(headroom_percent=config.deadline_headroom_percent)
        self.beyond_max_metric = rules(headroom_percent=0)
        busy = f"CEIL(in_flight / {processes})"
        self.fleet_size_metric = cloudwatch.MathExpression(
            # IF, not MAX([..]): MAX skips a missing value, IF keeps the minute missing.
            expression=f"IF(needed > {busy}, needed, {busy})",
            using_metrics={"needed": self.needed_metric, "in_flight": in_flight},
            label="Tasks for the backlog, the deadline and the jobs running",
            period=MINUTE,
        )
        self.backlog_beyond_max_alarm = cloudwatch.Alarm(
            self,
            "BacklogBeyondMaxTasksAlarm",
            metric=self.beyond_max_metric,
            threshold=config.max_tasks,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=BACKLOG_BEYOND_MAX_MINUTES,
            datapoints_to_alarm=BACKLOG_BEYOND_MAX_MINUTES,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=(
                f"The backlog needs more than scaling.max_tasks ({config.max_tasks}) tasks at "
                f"{config.target_backlog_per_process} waiting messages per process, or to finish "
                "by a batch window's deadline with all the time left: it will not be worked off "
                "in time. Raise "
                "scaling.max_tasks (and max_total_processes) as scripts/capacity/plan says."
            ),
        )
        self.fleet_size_alarm = exact_capacity_policy(
            self,
            "FleetSize",
            target=self.scalable_target,
            metric=self.fleet_size_metric,
            max_tasks=config.max_tasks,
            cooldown_seconds=config.scale_in_cooldown_seconds,
        )

    @staticmethod
    def _needed(
        backlog: str,
        *,
        metrics: dict[str, cloudwatch.IMetric],
        processes: int,
        headroom_percent: int,
        windows: tuple[BatchWindow, ...],
    ) -> cloudwatch.MathExpression:
        """Tasks the backlog rule and every window's deadline rule ask for, the larger."""
        if not windows:
            return cloudwatch.MathExpression(
                expression=backlog,
                using_metrics={"visible": metrics["visible"]},
                label="Tasks the backlog needs at the target pace",
                period=MINUTE,
            )
        using: dict[str, cloudwatch.IMetric] = {
            "visible": metrics["visible"],
            "utc_minute": cloudwatch.MathExpression(
                expression="HOUR(visible) * 60 + MINUTE(visible)",
                using_metrics={"visible": metrics["visible"]},
                label="UTC minute of the day",
                period=MINUTE,
            ),
            "mean_job": metrics["mean_job"],
            "work": cloudwatch.MathExpression(
                expression="(visible + in_flight) * mean_job",
                using_metrics={k: metrics[k] for k in ("visible", "in_flight", "mean_job")},
                label="Work left, job-seconds",
                period=MINUTE,
            ),
        }
        for index, window in enumerate(windows):
            using[f"window{index}"] = cloudwatch.MathExpression(
                expression=deadline_tasks_expression(
                    window, processes=processes, headroom_percent=headroom_percent
                ),
                using_metrics={k: using[k] for k in ("utc_minute", "work", "mean_job")},
                label=f"Tasks to finish by {window.deadline:%H:%M} {window.timezone}",
                period=MINUTE,
            )
        rules = ", ".join([backlog, *(f"window{i}" for i in range(len(windows)))])
        return cloudwatch.MathExpression(
            expression=f"MAX([{rules}])",
            using_metrics=using,
            label="Tasks the backlog and the deadline need",
            period=MINUTE,
        )


def exact_capacity_policy(
    scope: Construct,
    id_: str,
    *,
    target: appscaling.ScalableTarget,
    metric: cloudwatch.IMetric,
    max_tasks: int,
    cooldown_seconds: int,
    minutes: int = 1,
    threshold: int = 0,
) -> cloudwatch.Alarm:
    """An alarm at ``metric >= threshold`` for ``minutes`` minutes driving an ``ExactCapacity``
    step policy of ``target``: the count becomes ``metric`` rounded up to the next of
    :func:`capacity_steps` (steps are relative to the threshold, as in AWS)."""
    action = appscaling.StepScalingAction(
        scope,
        f"{id_}Policy",
        scaling_target=target,
        adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
        cooldown=Duration.seconds(cooldown_seconds),
        metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
    )
    sizes = [size for size in capacity_steps(max_tasks) if size >= threshold]
    lower = 0
    for size, next_size in zip(sizes, [*sizes[1:], None], strict=True):
        action.add_adjustment(
            adjustment=size,
            lower_bound=lower,
            upper_bound=None if next_size is None else size + 1 - threshold,
        )
        lower = size + 1 - threshold
    alarm = cloudwatch.Alarm(
        scope,
        f"{id_}Alarm",
        metric=metric,
        threshold=threshold,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=minutes,
        datapoints_to_alarm=minutes,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(action))
    return alarm
