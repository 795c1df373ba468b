"""Step scaling on queue depth, counted in tasks."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import ScalingConfig

MINUTE = Duration.minutes(1)
# Step scaling policies take at most 20 step adjustments.
MAX_STEPS = 20


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

    * Scale out when tasks are missing: ``CEIL(visible / (target_backlog_per_process x
      processes)) - desired >= 1``, checked every minute (SQS publishes once a minute), adding
      about the missing count in one step; cooldown ``scale_out_cooldown_seconds`` (120 s: a
      task takes about a minute to start and the next datapoint to show it).
    * Scale in when tasks are surplus: ``desired - (visible + in_flight) / processes >= 1``
      for ``scale_in_after_minutes`` (3) minutes in a row. In-flight messages count, so a
      queue that looks empty while 5-minute jobs run keeps its tasks; when the queue and
      in-flight are both empty the service goes down to its floor. ECS stops only tasks
      whose workers cleared task scale-in protection, so a busy task is never stopped.
    * No CPU target tracking: the jobs are I/O bound, CPU says nothing about the backlog and
      such a policy would fight this one.

    The two conditions cannot hold at once (the first needs more than ``desired x
    processes`` visible messages, the second fewer), so the policies never fight each other.
    Attributes: ``scalable_task_count``, ``scale_out_metric``, ``scale_in_metric``.
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
    ) -> None:
        super().__init__(scope, id_)
        self.scalable_task_count = service.auto_scale_task_count(
            min_capacity=config.min_tasks, max_capacity=config.max_tasks
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
        self.scale_out_metric = cloudwatch.MathExpression(
            expression=f"CEIL(visible / {per_task}) - FILL(desired, 0)",
            using_metrics={k: metrics[k] for k in ("visible", "desired")},
            label="Tasks missing for the backlog",
            period=MINUTE,
        )
        self.scale_in_metric = cloudwatch.MathExpression(
            expression=f"(visible + in_flight) / {processes} - FILL(desired, 0)",
            using_metrics=metrics,
            label="Work in tasks minus desired tasks (negative: surplus)",
            period=MINUTE,
        )
        sizes = step_sizes(config.max_tasks)
        self.scalable_task_count.scale_on_metric(
            "ScaleOutOnBacklog",
            metric=self.scale_out_metric,
            scaling_steps=[
                appscaling.ScalingInterval(lower=size, upper=upper, change=size)
                for size, upper in zip(sizes, [*sizes[1:], None], strict=True)
            ],
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.seconds(config.scale_out_cooldown_seconds),
            evaluation_periods=1,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        self.scalable_task_count.scale_on_metric(
            "ScaleInOnSurplus",
            metric=self.scale_in_metric,
            scaling_steps=[
                appscaling.ScalingInterval(upper=-size, lower=lower, change=-size)
                for size, lower in zip(sizes, [*(-s for s in sizes[1:]), None], strict=True)
            ],
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.seconds(config.scale_in_cooldown_seconds),
            evaluation_periods=config.scale_in_after_minutes,
            datapoints_to_alarm=config.scale_in_after_minutes,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
