"""STATELESS: network, cluster, and each worker's service, scaling, batch windows and monitoring."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct
from worker import contract

from stacks.checkov import skip
from stacks.config import ConfigError, EnvironmentConfig
from stacks.constructs.batch_window import BatchWindowSchedule
from stacks.constructs.capacity import SpotFallback
from stacks.constructs.kit_key import KitKey, encrypted_log_group
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.network import Network
from stacks.constructs.queue_scaling import ALARM_LIMIT, QueueScaling, fleet_size_alarm_size
from stacks.constructs.work_queue import ConsumedQueue, WorkQueue
from stacks.constructs.worker_service import RETENTION, WorkerService
from stacks.nag import acknowledge
from stacks.naming import job_metric_namespace, scoped_id

CONTAINER_INSIGHTS_OFF = (
    "Container Insights costs 3-5 USD a month per environment (custom metrics and performance "
    "logs; scripts/capacity/bill.py), more than the compute of a small one: it is on where a "
    "feature needs it (the Spot fallback) or monitoring.container_insights is set; the kit's "
    "alarms and EventBridge rules do without it"
)


TOO_BIG_AN_ALARM = (
    "environments.{name}.{key}: {queues} queues with {windows} batch windows need {metrics} "
    "metrics and {expressions} expressions in the worker's fleet-size alarm; CloudWatch takes "
    "{limit} of each; allowed: fewer queues for this worker (a worker of its own for some) or "
    "fewer windows"
)


def unsupported_layouts(config: EnvironmentConfig) -> list[str]:
    """What the worker stack cannot run: a worker on more queues and windows than its
    fleet-size alarm can read."""
    problems = []
    for worker, fleet in config.fleets.items():
        queues, windows = len(fleet.queues), len(fleet.batch_windows)
        metrics, expressions = fleet_size_alarm_size(queues, windows)
        if queues > 1 and max(metrics, expressions) > ALARM_LIMIT:
            problems.append(
                TOO_BIG_AN_ALARM.format(
                    name=config.name,
                    key=f"workers.{worker}.queues" if config.workers else "queues",
                    queues=queues,
                    windows=windows,
                    metrics=metrics,
                    expressions=expressions,
                    limit=ALARM_LIMIT,
                )
            )
    return problems


@dataclass(frozen=True)
class WorkerFleet:
    """One worker's constructs: ``queues`` (the queues it consumes, highest priority first),
    ``service`` (WorkerService), ``scaling``, ``spot_fallback`` (or None), ``batch_windows``.
    Its alarms, rules, job metrics and queries: ``WorkerStack.monitoring.fleets[name]``."""

    queues: tuple[ConsumedQueue, ...]
    service: WorkerService
    scaling: QueueScaling
    spot_fallback: SpotFallback | None
    batch_windows: BatchWindowSchedule


class WorkerStack(Stack):
    """Everything that can be destroyed and recreated without losing a message.

    One fleet for each of ``config.fleets``, each on its queues of ``work_queues`` (the queue
    stack's WorkQueues by name) in priority order, sharing the key, network, cluster, alarm
    topic and dashboard. The ``default`` worker keeps the construct ids, names and outputs of
    the time there was one (``Worker``, ``Scaling``, ``ServiceName``...); another worker's
    carry its name (``Worker-NAME``, output ``ServiceName-NAME``: :func:`~stacks.naming.scoped_id`).
    Settings shared by the fleets follow all of them: logs are encrypted, ECS Exec allowed
    and secret endpoints made when any worker needs it.

    Attributes: ``key`` (the stack's KMS key: alarm topic and log groups), ``network``,
    ``cluster``, ``exec_log_group`` (ECS Exec sessions; None unless a worker sets
    ``worker.ecs_exec``),
    ``fleets`` (WorkerFleet by worker name), ``monitoring`` (the topic, the dashboard and
    each worker's alarms).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: EnvironmentConfig,
        work_queues: Mapping[str, WorkQueue],
        idempotency_table: dynamodb.ITableV2 | None = None,
        **kwargs: Any,
    ) -> None:
        if problems := unsupported_layouts(config):
            raise ConfigError(problems)
        super().__init__(scope, id_, **kwargs)
        self._network_config = config.network
        workers = [fleet.worker for fleet in config.fleets.values()]
        encrypt_logs = any(worker.encrypt_logs for worker in workers)
        ecs_exec = any(worker.ecs_exec for worker in workers)
        # The key and the log groups it encrypts are retained together (retain_data) or not.
        self.key = KitKey(
            self,
            "Key",
            prefix=config.stack_prefix,
            encrypt_logs=encrypt_logs,
            retain=config.retain_data,
        ).key
        self.network = Network(
            self,
            "Network",
            config=config.network,
            log_key=self.key if encrypt_logs else None,
            log_retention=RETENTION[config.worker.log_retention_days],
            retain_logs=config.retain_data,
            secret_kinds=frozenset(
                ref.partition(":")[0] for worker in workers for ref in worker.secrets.values()
            ),
            dynamodb=idempotency_table is not None,
            ecs_exec=ecs_exec,
        )
        self.exec_log_group: logs.LogGroup | None = None
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.network.vpc,
            # Only where a chosen feature needs it (the Spot fallback) or the team opts in:
            # about 3-5 USD a month of custom metrics and performance logs (capacity/bill.py).
            container_insights_v2=(
                ecs.ContainerInsights.ENABLED
                if config.container_insights
                else ecs.ContainerInsights.DISABLED
            ),
            enable_fargate_capacity_providers=True,
            execute_command_configuration=(
                self._exec_sessions_logging(config, encrypt_logs) if ecs_exec else None
            ),
        )
        if not config.container_insights:
            skip(self.cluster, "CKV_AWS_65", CONTAINER_INSIGHTS_OFF)
            acknowledge(
                typing.cast("ecs.CfnCluster", self.cluster.node.default_child),
                "AwsSolutions-ECS4",
                CONTAINER_INSIGHTS_OFF,
            )
        views = {name: config.of_fleet(name) for name in config.fleets}
        self.fleets = {
            name: self._fleet(name, view, work_queues, idempotency_table)
            for name, view in views.items()
        }
        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        for name, fleet in self.fleets.items():
            CfnOutput(
                self, scoped_id("ServiceName", name), value=fleet.service.service.service_name
            )
            CfnOutput(
                self, scoped_id("LogGroupName", name), value=fleet.service.log_group.log_group_name
            )
        if self.exec_log_group is not None:
            CfnOutput(self, "ExecSessionLogGroupName", value=self.exec_log_group.log_group_name)
        self.monitoring = Monitoring(self, "Monitoring", config=config, key=self.key)
        for name, fleet in self.fleets.items():
            self.monitoring.watch(
                name,
                config=views[name],
                queues=fleet.queues,
                cluster=self.cluster,
                service=fleet.service.service,
                log_group=fleet.service.log_group,
                deadline_alarms=[
                    *fleet.batch_windows.deadline_alarms,
                    fleet.scaling.backlog_beyond_max_alarm,
                ],
                scaling_alarms=[fleet.scaling.fleet_size_alarm],
            )

    def _fleet(
        self,
        name: str,
        config: EnvironmentConfig,
        work_queues: Mapping[str, WorkQueue],
        idempotency_table: dynamodb.ITableV2 | None,
    ) -> WorkerFleet:
        """The worker ``name`` (``config``: the environment as it sees it) on its queues:
        its service, queue scaling, Spot fallback (or None) and batch windows."""
        consumed = tuple(
            ConsumedQueue(queue, config.work_queues[queue], work_queues[queue])
            for queue in config.fleets[name].queues
        )
        queues = [each.queue for each in consumed]
        service = WorkerService(
            self,
            scoped_id("Worker", name),
            config=config,
            cluster=self.cluster,
            network=self.network,
            key=self.key,
            queues=consumed,
            idempotency_table=idempotency_table,
            settings_key=f"workers.{name}.worker" if config.workers else "worker",
        )
        scaling = QueueScaling(
            self,
            scoped_id("Scaling", name),
            service=service.service,
            cluster=self.cluster,
            queues=queues,
            job_duration=cloudwatch.Metric(
                namespace=job_metric_namespace(config.name, name),
                metric_name=contract.JOB_DURATION,
            ),
            processes=config.worker.processes,
            config=config.scaling,
            windows=config.batch_windows,
        )
        spot_fallback = (
            SpotFallback(
                self,
                scoped_id("SpotFallback", name),
                cluster=self.cluster,
                service=service.service,
                fallback=service.fallback_service,
                max_tasks=config.worker.capacity.fallback_max_tasks(config.scaling.max_tasks),
                after_minutes=typing.cast("int", config.worker.capacity.fallback_after_minutes),
                scaling=config.scaling,
            )
            if service.fallback_service
            else None
        )
        batch_windows = BatchWindowSchedule(
            self,
            scoped_id("BatchWindows", name),
            scalable_target=scaling.scalable_target,
            queues=queues,
            windows=config.batch_windows,
            floor_tasks=config.scaling.min_tasks,
            job_timeout_seconds=config.worker.job_timeout_seconds,
            worker=name,
        )
        return WorkerFleet(consumed, service, scaling, spot_fallback, batch_windows)

    def _exec_sessions_logging(
        self, config: EnvironmentConfig, encrypt: bool
    ) -> ecs.ExecuteCommandConfiguration:
        """ECS Exec sessions (who opened them: CloudTrail's ExecuteCommand) are recorded in a
        log group of their own, encrypted with the kit's key as the worker's log is, kept as
        long: a shell transcript never mixes into the worker's JSON log. CDK grants the task
        role what the SSM agent needs to write it (``WorkerService._allow_ecs_exec``)."""
        self.exec_log_group = group = encrypted_log_group(
            self,
            "ExecSessionLogs",
            RETENTION[config.worker.log_retention_days],
            self.key if encrypt else None,
            retain=config.retain_data,
        )
        return ecs.ExecuteCommandConfiguration(
            logging=ecs.ExecuteCommandLogging.OVERRIDE,
            log_configuration=ecs.ExecuteCommandLogConfiguration(
                cloud_watch_log_group=group,
                cloud_watch_encryption_enabled=encrypt,
            ),
        )

    @property
    def availability_zones(self) -> list[str]:
        """The zones of the VPC: an existing VPC's ``network.availability_zones``, else the
        first ``network.max_azs`` (default 2) zones of the region, resolved at deploy time
        (``Fn::GetAZs``). The CDK's default looks the zones up at synth when ``account`` is set
        (a call to AWS, or dummy zones offline): the kit never does."""
        network = self._network_config
        if network.availability_zones:
            return list(network.availability_zones)
        return [Fn.select(index, Fn.get_azs()) for index in range(network.max_azs)]
