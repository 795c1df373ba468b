"""STATELESS: network, cluster, worker service, scaling, batch windows and monitoring."""

from __future__ import annotations

import typing
from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from worker import contract

from stacks.checkov import skip
from stacks.config import ConfigError, EnvironmentConfig
from stacks.constructs.batch_window import BatchWindowSchedule
from stacks.constructs.capacity import SpotFallback
from stacks.constructs.kit_key import KitKey, encrypted_log_group
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.network import Network
from stacks.constructs.queue_scaling import QueueScaling
from stacks.constructs.worker_service import RETENTION, WorkerService
from stacks.nag import acknowledge

CONTAINER_INSIGHTS_OFF = (
    "Container Insights costs 3-5 USD a month per environment (custom metrics and performance "
    "logs; scripts/capacity/bill.py), more than the compute of a small one: it is on where a "
    "feature needs it (the Spot fallback) or monitoring.container_insights is set; the kit's "
    "alarms and EventBridge rules do without it"
)


SEVERAL_NOT_YET = (
    "environments.{name}.queues: several queues and workers are validated and the queue stack "
    "deploys every queue, but the worker stack still runs one worker on one queue (the runtime "
    "that consumes several in priority order comes next); allowed: one queue and one worker"
)

FIFO_NOT_YET = (
    "environments.{name}.queue.fifo: true is validated and the queue stack deploys the FIFO "
    "queue and DLQ, but the worker does not yet keep a message group's order when a job fails "
    "(it would run the group's next message while the failed one waits); allowed: false"
)


class WorkerStack(Stack):
    """Everything that can be destroyed and recreated without losing a message.

    Takes the queues from the queue stack. Attributes: ``key`` (the stack's KMS key: alarm
    topic and log groups), ``network``, ``cluster``, ``exec_log_group`` (ECS Exec sessions;
    None without ``worker.ecs_exec``), ``worker``, ``scaling``, ``spot_fallback`` (or None),
    ``batch_windows``, ``monitoring``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: EnvironmentConfig,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        idempotency_table: dynamodb.ITableV2 | None = None,
        **kwargs: Any,
    ) -> None:
        if len(config.work_queues) > 1 or len(config.fleets) > 1:
            raise ConfigError([SEVERAL_NOT_YET.format(name=config.name)])
        if any(queue.fifo for queue in config.work_queues.values()):
            raise ConfigError([FIFO_NOT_YET.format(name=config.name)])
        super().__init__(scope, id_, **kwargs)
        self._network_config = config.network
        # The key and the log groups it encrypts are retained together (retain_data) or not.
        self.key = KitKey(
            self,
            "Key",
            prefix=config.stack_prefix,
            encrypt_logs=config.worker.encrypt_logs,
            retain=config.retain_data,
        ).key
        self.network = Network(
            self,
            "Network",
            config=config.network,
            log_key=self.key if config.worker.encrypt_logs else None,
            log_retention=RETENTION[config.worker.log_retention_days],
            retain_logs=config.retain_data,
            secret_kinds=frozenset(ref.partition(":")[0] for ref in config.worker.secrets.values()),
            dynamodb=idempotency_table is not None,
            ecs_exec=config.worker.ecs_exec,
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
                self._exec_sessions_logging(config) if config.worker.ecs_exec else None
            ),
        )
        if not config.container_insights:
            skip(self.cluster, "CKV_AWS_65", CONTAINER_INSIGHTS_OFF)
            acknowledge(
                typing.cast("ecs.CfnCluster", self.cluster.node.default_child),
                "AwsSolutions-ECS4",
                CONTAINER_INSIGHTS_OFF,
            )
        self.worker = WorkerService(
            self,
            "Worker",
            config=config,
            cluster=self.cluster,
            network=self.network,
            key=self.key,
            queue=queue,
            dead_letter_queue=dead_letter_queue,
            idempotency_table=idempotency_table,
        )
        self.scaling = QueueScaling(
            self,
            "Scaling",
            service=self.worker.service,
            cluster=self.cluster,
            queue=queue,
            job_duration=cloudwatch.Metric(
                namespace=contract.metric_namespace(config.name), metric_name=contract.JOB_DURATION
            ),
            processes=config.worker.processes,
            config=config.scaling,
            windows=config.batch_windows,
        )
        self.spot_fallback = (
            SpotFallback(
                self,
                "SpotFallback",
                cluster=self.cluster,
                service=self.worker.service,
                fallback=self.worker.fallback_service,
                max_tasks=config.worker.capacity.fallback_max_tasks(config.scaling.max_tasks),
                after_minutes=typing.cast("int", config.worker.capacity.fallback_after_minutes),
                scaling=config.scaling,
            )
            if self.worker.fallback_service
            else None
        )
        self.batch_windows = BatchWindowSchedule(
            self,
            "BatchWindows",
            scalable_target=self.scaling.scalable_target,
            queue=queue,
            windows=config.batch_windows,
            floor_tasks=config.scaling.min_tasks,
            job_timeout_seconds=config.worker.job_timeout_seconds,
        )
        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        CfnOutput(self, "ServiceName", value=self.worker.service.service_name)
        CfnOutput(self, "LogGroupName", value=self.worker.log_group.log_group_name)
        if self.exec_log_group is not None:
            CfnOutput(self, "ExecSessionLogGroupName", value=self.exec_log_group.log_group_name)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            queue=queue,
            dead_letter_queue=dead_letter_queue,
            cluster=self.cluster,
            service=self.worker.service,
            log_group=self.worker.log_group,
            key=self.key,
            deadline_alarms=[
                *self.batch_windows.deadline_alarms,
                self.scaling.backlog_beyond_max_alarm,
            ],
            scaling_alarms=[self.scaling.fleet_size_alarm],
        )

    def _exec_sessions_logging(self, config: EnvironmentConfig) -> ecs.ExecuteCommandConfiguration:
        """ECS Exec sessions (who opened them: CloudTrail's ExecuteCommand) are recorded in a
        log group of their own, encrypted with the kit's key as the worker's log is, kept as
        long: a shell transcript never mixes into the worker's JSON log. CDK grants the task
        role what the SSM agent needs to write it (``WorkerService._allow_ecs_exec``)."""
        encrypt = config.worker.encrypt_logs
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
