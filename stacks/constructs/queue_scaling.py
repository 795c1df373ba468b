"""Step scaling on queue depth, counted in tasks."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import BatchWindow, ScalingConfig
from stacks.constructs.batch_window import DAY_MINUTES, window_clock

MINUTE = Duration.minutes(1)
# Step scaling policies take at most 20 step adjustments.
MAX_STEPS = 20
# Minutes the backlog must need more than max_tasks before that alarm fires.
BACKLOG_BEYOND_MAX_MINUTES = 5
# Seconds of the time left that deadline-aware scaling keeps in hand: the alarm's newest
# datapoint is one to two minutes old and a new task needs about a minute to start.
REACTION_SECONDS = 180


def deadline_tasks_expression(
    window: BatchWindow, *, processes: int, mean_job_seconds: int, year: int | None = None
) -> str:
    """Tasks that finish the work left by ``window``'s deadline; 0 outside the window.

    ``ceil(work / (processes x time_left))`` with ``work`` (an expression id: visible plus
    in-flight messages times the mean job seconds) and ``utc_minute`` (the datapoint's UTC
    minute of the day). ``time_left`` = seconds to the deadline minus one mean job (the last
    job must start one job before the deadline) and REACTION_SECONDS, never less than one mean
    job: a job cannot be split, so the rule never asks for more than one process per message.
    """
    clock = window_clock(window, year)
    # Minutes since the window opened, on the UTC clock (a window may cross UTC midnight).
    since = (
        f"IF(utc_minute < {clock.start_utc}, utc_minute + {DAY_MINUTES - clock.start_utc}, "
        f"utc_minute - {clock.start_utc})"
    )
    reserve = mean_job_seconds + REACTION_SECONDS
    left = f"(({clock.deadline} - {since}) * 60 - {reserve})"
    time_left = f"IF({left} > {mean_job_seconds}, {left}, {mean_job_seconds})"
    return f"IF({since} < {clock.span}, CEIL(work / ({processes} * {time_left})), 0)"


def step_sizes(max_tasks: int) -> list[int]:
    """Task counts a step may add or remove: 1..6 one by one, then about x1.5 up to max_tasks.

    Each step covers the gap up to the next size, so one step adds (or removes) at least two
    thirds of what is missing; the next evaluation corrects the rest.
    """
    sizes = [1, 2, 3, 4, 5, 6]
    while sizes[-1] < max_tasks and len(sizes) < MAX_STEPS:
        sizes.append(sizes[-1] * 3 // 2)
    return [size for size in sizes if size <= max(max_tasks, 1)]


class QueueScaling(Construct):
    """Scales the worker service between ``min_tasks`` and ``max_tasks`` on queue depth.

    * Scale out when tasks are missing: ``needed - desired >= 1``, checked every minute (SQS
      publishes once a minute), adding about the missing count in one step; cooldown
      ``scale_out_cooldown_seconds`` (120 s: a task takes about a minute to start and the
      next datapoint to show it). ``needed`` is the backlog rule ``CEIL(visible /
      (target_backlog_per_process x processes))`` and, inside each batch window, the larger
      deadline rule ``CEIL((visible + in_flight) x mean_job_seconds / (processes x
      time_left))`` (:func:`deadline_tasks_expression`): a late or larger batch gets the
      tasks that finish it by the deadline, up to ``max_tasks`` (the scalable target's bound).
    * Scale in when tasks are surplus: ``desired - (visible + in_flight) / processes >= 1``
      for ``scale_in_after_minutes`` (3) minutes in a row. In-flight messages count, so a
      queue that looks empty while 5-minute jobs run keeps its tasks; when the queue and
      in-flight are both empty the service goes down to its floor. ECS stops only tasks
      whose workers cleared task scale-in protection, so a busy task is never stopped.
    * No CPU target tracking: the jobs are I/O bound, CPU says nothing about the backlog and
      such a policy would fight this one.

    A third alarm, ``backlog_beyond_max_alarm``, warns (no scaling action) when ``needed``
    exceeds ``max_tasks`` for 5 minutes: the deadline will be missed unless the limits rise.

    The two policies never fight: with ``n = (visible + in_flight) / processes``, scale-in
    needs ``desired >= n + 1`` and scale-out ``desired <= needed - 1``, so both at once need
    ``needed >= n + 2``. Yet the backlog rule is at most ``ceil(visible / processes) < n + 1``
    (target >= 1) and the deadline rule at most ``ceil(n) < n + 1`` (``time_left`` is never
    below one mean job), so ``needed < n + 1``.
    Attributes: ``scalable_target``, ``needed_metric``, ``scale_out_metric``/
    ``scale_out_alarm``, ``scale_in_metric``/``scale_in_alarm``, ``backlog_beyond_max_alarm``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        service: ecs.FargateService,
        cluster: ecs.ICluster,
        queue: sqs.IQueue,
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
        metrics = {
            "visible": queue.metric_approximate_number_of_messages_visible(
                period=MINUTE, statistic="Maximum"
            ),
            "in_flight": queue.metric_approximate_number_of_messages_not_visible(
                period=MINUTE, statistic="Maximum"
            ),
            "desired": cloudwatch.Metric(
                namespace="ECS/ContainerInsights",
                metric_name="DesiredTaskCount",
                dimensions_map={
                    "ClusterName": cluster.cluster_name,
                    "ServiceName": service.service_name,
                },
                period=MINUTE,
                statistic="Maximum",
            ),
        }
        per_task = config.target_backlog_per_process * processes
        backlog = f"CEIL(visible / {per_task})"
        self.needed_metric = self._needed(
            backlog, metrics=metrics, processes=processes, config=config, windows=windows
        )
        self.scale_out_metric = cloudwatch.MathExpression(
            expression="needed - FILL(desired, 0)",
            using_metrics={"needed": self.needed_metric, "desired": metrics["desired"]},
            label="Tasks missing for the backlog and the deadline",
            period=MINUTE,
        )
        self.scale_in_metric = cloudwatch.MathExpression(
            expression=f"FILL(desired, 0) - (visible + in_flight) / {processes}",
            using_metrics=metrics,
            label="Tasks beyond the queued and in-flight work",
            period=MINUTE,
        )
        self.backlog_beyond_max_alarm = cloudwatch.Alarm(
            self,
            "BacklogBeyondMaxTasksAlarm",
            metric=self.needed_metric,
            threshold=config.max_tasks,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=BACKLOG_BEYOND_MAX_MINUTES,
            datapoints_to_alarm=BACKLOG_BEYOND_MAX_MINUTES,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=(
                f"The backlog needs more than scaling.max_tasks ({config.max_tasks}) tasks at "
                f"{config.target_backlog_per_process} waiting messages per process, or to finish "
                "by a batch window's deadline: it will not be worked off in time. Raise "
                "scaling.max_tasks (and max_total_processes) as scripts/plan says."
            ),
        )
        self.scale_out_alarm = step_policy(
            self,
            "ScaleOut",
            target=self.scalable_target,
            metric=self.scale_out_metric,
            direction=+1,
            max_tasks=config.max_tasks,
            cooldown_seconds=config.scale_out_cooldown_seconds,
            minutes=1,
        )
        self.scale_in_alarm = step_policy(
            self,
            "ScaleIn",
            target=self.scalable_target,
            metric=self.scale_in_metric,
            direction=-1,
            max_tasks=config.max_tasks,
            cooldown_seconds=config.scale_in_cooldown_seconds,
            minutes=config.scale_in_after_minutes,
        )

    @staticmethod
    def _needed(
        backlog: str,
        *,
        metrics: dict[str, cloudwatch.Metric],
        processes: int,
        config: ScalingConfig,
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
            "work": cloudwatch.MathExpression(
                expression=f"(visible + in_flight) * {config.mean_job_seconds}",
                using_metrics={k: metrics[k] for k in ("visible", "in_flight")},
                label="Work left, job-seconds",
                period=MINUTE,
            ),
        }
        for index, window in enumerate(windows):
            using[f"window{index}"] = cloudwatch.MathExpression(
                expression=deadline_tasks_expression(
                    window, processes=processes, mean_job_seconds=config.mean_job_seconds
                ),
                using_metrics={k: using[k] for k in ("utc_minute", "work")},
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


def step_policy(
    scope: Construct,
    id_: str,
    *,
    target: appscaling.ScalableTarget,
    metric: cloudwatch.IMetric,
    direction: int,
    max_tasks: int,
    cooldown_seconds: int,
    minutes: int,
) -> cloudwatch.Alarm:
    """An alarm at ``metric >= 1`` for ``minutes`` minutes driving a step policy of ``target``.

    The metric counts tasks, so each step adds (``direction`` +1) or removes (-1) about as many
    tasks as the metric says; bounds are relative to the threshold of 1.
    """
    action = appscaling.StepScalingAction(
        scope,
        f"{id_}Policy",
        scaling_target=target,
        adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        cooldown=Duration.seconds(cooldown_seconds),
        metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
    )
    sizes = step_sizes(max_tasks)
    for size, next_size in zip(sizes, [*sizes[1:], None], strict=True):
        action.add_adjustment(
            adjustment=direction * size,
            lower_bound=size - 1,
            upper_bound=None if next_size is None else next_size - 1,
        )
    alarm = cloudwatch.Alarm(
        scope,
        f"{id_}Alarm",
        metric=metric,
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=minutes,
        datapoints_to_alarm=minutes,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(action))
    return alarm
