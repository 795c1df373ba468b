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

from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from stacks.config import CapacityConfig, ScalingConfig
from stacks.constructs.queue_scaling import MINUTE, step_policy

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
    """Scales ``fallback`` (an on-demand service of the worker's task definition) to the tasks
    ``service`` wants but could not place.

    ``unplaced`` = desired - running - pending of ``service`` (Container Insights, each minute):
    a task waiting for a start is pending, one ECS could not place is in none of them. Two step
    policies on the fallback's scalable target (0 to ``max_tasks``), built like the queue's:

    * scale out by ``unplaced - fallback desired`` when it is 1 or more for
      ``fallback_after_minutes`` minutes in a row (3: longer than a normal start);
    * scale in by ``fallback desired - unplaced`` when it is 1 or more for
      ``scale_in_after_minutes`` minutes: Spot is back, the worker service's tasks start again.
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
        counts = {
            name: _task_count(cluster, service, name) for name in ("desired", "running", "pending")
        }
        self.unplaced_metric = cloudwatch.MathExpression(
            expression="FILL(desired, 0) - FILL(running, 0) - FILL(pending, 0)",
            using_metrics=counts,
            label="Worker tasks not placed (no Spot capacity)",
            period=MINUTE,
        )
        using: dict[str, cloudwatch.IMetric] = {
            "unplaced": self.unplaced_metric,
            "fallback": _task_count(cluster, fallback, "desired"),
        }
        self.scale_out_alarm = step_policy(
            self,
            "ScaleOut",
            target=self.scalable_target,
            metric=cloudwatch.MathExpression(
                expression="unplaced - FILL(fallback, 0)",
                using_metrics=using,
                label="Unplaced worker tasks the fallback does not run yet",
                period=MINUTE,
            ),
            direction=+1,
            max_tasks=max_tasks,
            cooldown_seconds=scaling.scale_out_cooldown_seconds,
            minutes=after_minutes,
        )
        self.scale_in_alarm = step_policy(
            self,
            "ScaleIn",
            target=self.scalable_target,
            metric=cloudwatch.MathExpression(
                expression="FILL(fallback, 0) - unplaced",
                using_metrics=using,
                label="Fallback tasks beyond the unplaced worker tasks",
                period=MINUTE,
            ),
            direction=-1,
            max_tasks=max_tasks,
            cooldown_seconds=scaling.scale_in_cooldown_seconds,
            minutes=scaling.scale_in_after_minutes,
        )
