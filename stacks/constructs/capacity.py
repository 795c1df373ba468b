"""Fargate Spot with an on-demand fallback: the capacity provider strategy and the fallback.

ECS places a service's tasks by its capacity provider strategy: the first ``base`` tasks on the
provider that has one, the rest split by weight. When FARGATE_SPOT has no capacity, ECS does not
place the Spot share elsewhere: those tasks are simply not started (the service reports that it
was unable to place a task) and the service stays short until Spot capacity returns
(docs/architecture.md, "Spot and its fallback", with sources). The kit therefore adds, with Spot,
a second service of the same task definition on FARGATE only, scaled by Application Auto
Scaling to the number of tasks the worker service could not place: CloudWatch is the source and
Application Auto Scaling the actuator, as for the queue; nothing runs when Spot is fine.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from stacks.config import CapacityConfig, ScalingConfig
from stacks.constructs.queue_scaling import MINUTE, exact_capacity_policy

ON_DEMAND = "FARGATE"
SPOT = "FARGATE_SPOT"


def capacity_strategies(capacity: CapacityConfig) -> list[ecs.CapacityProviderStrategy]:
    """The worker service's strategy: on-demand base and weight, Spot weight; a provider with
    nothing to run (weight 0, no base) is left out."""
    strategies = []
    if capacity.on_demand_weight or capacity.on_demand_base:
        strategies.append(
            ecs.CapacityProviderStrategy(
                capacity_provider=ON_DEMAND,
                base=capacity.on_demand_base or None,
                weight=capacity.on_demand_weight,
            )
        )
    if capacity.spot:
        strategies.append(
            ecs.CapacityProviderStrategy(capacity_provider=SPOT, weight=capacity.spot_weight)
        )
    return strategies


def _task_count(cluster: ecs.ICluster, service: ecs.FargateService, name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="ECS/ContainerInsights",
        metric_name=f"{name.capitalize()}TaskCount",
        dimensions_map={"ClusterName": cluster.cluster_name, "ServiceName": service.service_name},
        period=MINUTE,
        statistic="Maximum",
    )


class SpotFallback(Construct):
    """Sets ``fallback`` (an on-demand service of the worker's task definition) to the tasks
    ``service`` wants but could not place.

    ``unplaced`` = desired - running - pending of ``service`` (Container Insights, each minute,
    no FILL: when any of the three is missing the minute is missing, never 0): a task waiting
    for a start is pending, one ECS could not place is in none of them. Two ``ExactCapacity``
    step policies on the fallback's scalable target (0 to ``max_tasks``):

    * when ``unplaced >= 1`` for ``fallback_after_minutes`` minutes in a row (3: longer than a
      normal start), the fallback runs ``unplaced`` tasks (rounded up to the policy's steps);
    * when ``unplaced <= 0`` for ``scale_in_after_minutes`` minutes (Spot is back, the worker
      service's tasks start again), or Container Insights says nothing for that long, the
      fallback goes to 0: a late or missing count can only stop the fallback, never grow it.
      Fallback tasks keep task scale-in protection while busy, so no job is killed.

    The worker service's own scaling does not see the fallback: its desired count (the work's
    need) is unchanged, the fallback only runs what Spot could not. Attributes:
    ``scalable_target``, ``unplaced_metric``, ``scale_out_alarm``, ``scale_in_alarm``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: ecs.ICluster,
        service: ecs.FargateService,
        fallback: ecs.FargateService,
        max_tasks: int,
        after_minutes: int,
        scaling: ScalingConfig,
    ) -> None:
        super().__init__(scope, id_)
        self.scalable_target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.ECS,
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{cluster.cluster_name}/{fallback.service_name}",
            min_capacity=0,
            max_capacity=max_tasks,
        )
        self.unplaced_metric = cloudwatch.MathExpression(
            expression="desired - running - pending",
            using_metrics={
                name: _task_count(cluster, service, name)
                for name in ("desired", "running", "pending")
            },
            label="Worker tasks not placed (no Spot capacity)",
            period=MINUTE,
        )
        self.scale_out_alarm = exact_capacity_policy(
            self,
            "ScaleOut",
            target=self.scalable_target,
            metric=self.unplaced_metric,
            max_tasks=max_tasks,
            cooldown_seconds=scaling.scale_out_cooldown_seconds,
            minutes=after_minutes,
            threshold=1,
        )
        back = appscaling.StepScalingAction(
            self,
            "ScaleInPolicy",
            scaling_target=self.scalable_target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            cooldown=Duration.seconds(scaling.scale_in_cooldown_seconds),
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        back.add_adjustment(adjustment=0, upper_bound=0)
        self.scale_in_alarm = cloudwatch.Alarm(
            self,
            "ScaleInAlarm",
            metric=self.unplaced_metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=scaling.scale_in_after_minutes,
            datapoints_to_alarm=scaling.scale_in_after_minutes,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self.scale_in_alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(back))
