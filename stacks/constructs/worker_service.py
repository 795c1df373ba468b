"""The Fargate service: task definition, container (the worker image), service."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping, Sequence

from aws_cdk import Annotations, ArnFormat, Duration, Size, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct
from worker import contract

from stacks.config import LOG_RETENTION_DAYS, EnvironmentConfig
from stacks.constructs.capacity import ON_DEMAND, capacity_strategies
from stacks.constructs.kit_key import encrypted_log_group
from stacks.constructs.network import Network
from stacks.constructs.work_queue import ConsumedQueue
from stacks.constructs.worker_image import worker_image
from stacks.nag import acknowledge, as_nag_resource

CONTAINER_NAME = "worker"
# The kit image's unprivileged user (worker_image/Dockerfile: USER 10001:10001).
IMAGE_USER = "10001:10001"
# The one writable path of the read-only container: supervisord's run dir (WORKER_RUN_DIR), the
# task-protection dir (WORKER_TASK_DIR), HOME and every temp file live under /tmp.
WRITABLE_PATH = "/tmp"
HEALTH_MODULE = "worker.health"
# The kit image's venv python, else the one the kit's install stage puts in a team's image.
HEALTH_CHECK = (
    "for py in /opt/venv/bin/python /opt/queue-worker-kit/venv/bin/python; do "
    f'if [ -x "$py" ]; then exec "$py" -m {HEALTH_MODULE}; fi; done; '
    'echo "no queue-worker-kit python found"; exit 1'
)
# On an existing queue's customer-managed key: Decrypt to receive, GenerateDataKey to send.
EXISTING_QUEUE_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
# What the worker runtime calls on the work queue (worker.loop, worker.app.check_queue); the
# batch calls (DeleteMessageBatch, ChangeMessageVisibilityBatch) need the single actions;
# ListQueueTags reads the pause flag (`queue-worker pause`, worker.contract.PAUSED_TAG).
CONSUME_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ListQueueTags",
)
# worker.idempotency: a conditional PutItem claims a key, UpdateItem marks it done,
# DeleteItem releases it; nothing reads, queries, scans or streams the table.
IDEMPOTENCY_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# Long enough for supervisord, N processes and a first long poll (up to 20 s).
HEALTH_START_PERIOD = Duration.seconds(60)
R = logs.RetentionDays
# config.LOG_RETENTION_DAYS, in the same order, as CDK's enum.
RETENTION = dict(
    zip(
        LOG_RETENTION_DAYS,
        (
            R.ONE_DAY,
            R.THREE_DAYS,
            R.FIVE_DAYS,
            R.ONE_WEEK,
            R.TWO_WEEKS,
            R.ONE_MONTH,
            R.TWO_MONTHS,
            R.THREE_MONTHS,
            R.FOUR_MONTHS,
            R.FIVE_MONTHS,
            R.SIX_MONTHS,
            R.ONE_YEAR,
            R.THIRTEEN_MONTHS,
            R.EIGHTEEN_MONTHS,
            R.TWO_YEARS,
            R.THREE_YEARS,
            R.FIVE_YEARS,
        ),
        strict=True,
    )
)


def consumer_mode_warnings(
    config: EnvironmentConfig, key: str = "worker", queues: Sequence[ConsumedQueue] = ()
) -> dict[str, str]:
    """Warning id -> message: what ``consumer`` mode gives up; none in the other modes.
    ``key``: where the worker's settings are in cdk.json (``workers.NAME.worker`` for one of
    several workers); ``queues``: the queues it consumes (default: ``config.queue``), of which
    the warning names the shortest visibility timeout by its key."""
    worker = config.worker
    if worker.handler_mode != "consumer":
        return {}
    shortest = min(queues, key=lambda q: q.config.visibility_timeout_seconds, default=None)
    visibility = (shortest.config if shortest else config.queue).visibility_timeout_seconds
    visibility_key = f"queues.{shortest.name}" if shortest and config.queues else "queue"
    warnings = {
        "consumer-mode": (
            f"{key}.handler_mode is 'consumer': the consumer {worker.handler!r} receives "
            "instead of the kit's loop (the kit only watches and recycles it by memory) and "
            "gives up the loop's guarantees: no visibility heartbeat (a job longer than "
            f"{visibility_key}.visibility_timeout_seconds {visibility} s runs "
            "twice); no task scale-in protection and no hand-back on SIGTERM (a scale-in or a "
            f"deploy kills every job running longer than stop_timeout_seconds "
            f"{worker.stop_timeout_seconds} s); no job log lines (the JobsProcessed and "
            "JobsFailed metrics and the error-rate alarm get no data). Recommended: "
            "handler_mode 'command' with the framework's runner (docs/frameworks.md)."
        )
    }
    if worker.job_timeout_seconds > worker.stop_grace_seconds:
        warnings["consumer-job-timeout"] = (
            f"{key}.job_timeout_seconds {worker.job_timeout_seconds} exceeds "
            f"{key}.stop_grace_seconds {worker.stop_grace_seconds} (stop_timeout_seconds - 20), "
            "what a stopping task waits for a running job: in consumer mode every scale-in and "
            "deploy kills the jobs that run longer, and each waits out its visibility timeout "
            "before it runs again. Use handler_mode 'command', or keep jobs and "
            f"job_timeout_seconds under {worker.stop_grace_seconds} s."
        )
    return warnings


def prefetch_seconds(configured: int, queues: Sequence[ConsumedQueue]) -> int:
    """``PREFETCH_SECONDS``: ``worker.prefetch_seconds``, or 0 (one message a receive) for a
    worker on any FIFO queue. A message the worker hands back behind its group's failing one
    has spent a receive: with several messages a receive, a later message of a group can reach
    ``max_receive_count`` and the DLQ without having run (docs/contract.md, "FIFO queues")."""
    return 0 if any(consumed.config.fifo for consumed in queues) else configured


class StartSecret(ecs.Secret):
    """``secret`` as ECS reads it at task start: the execution role may ``action`` on
    ``resource`` only."""

    def __init__(self, secret: ecs.Secret, action: str, resource: str) -> None:
        super().__init__()
        self._secret, self._action, self._resource = secret, action, resource

    @property
    def arn(self) -> str:
        return self._secret.arn

    @property
    def has_field(self) -> bool | None:
        return self._secret.has_field

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=[self._action], resource_arns=[self._resource]
        )


class WorkerService(Construct):
    """A Fargate service whose tasks each run a supervisord fleet of worker processes.

    Task shape, architecture, process count and worker timings come from ``config``; the image
    is the one ``worker.image`` selects (stacks/constructs/worker_image.py: the kit's
    ``worker_image/`` by default, the team's Dockerfile, or an ECR image). The worker consumes
    ``queues`` in priority order: one queue is given as ``QUEUE_URL`` and
    ``DEAD_LETTER_QUEUE_URL``, several as ``WORKER_QUEUES`` (docs/contract.md, "Several
    queues"). The task role may consume each queue, send to each one's DLQ (permanent
    failures), use the optional ``idempotency_table`` and set its own task's scale-in
    protection, nothing else; with a team image or in ``consumer`` mode it may also send to
    each queue: a framework's retry re-sends (Symfony Messenger) and jobs commonly dispatch
    further jobs (Laravel).
    ``consumer`` mode gives up the kit's guarantees; synth warns about it
    (:func:`consumer_mode_warnings`).
    Deployments roll back on failure (circuit breaker); tasks get an init process and the full
    stop timeout to drain. The container runs as the image's unprivileged user (``IMAGE_USER``)
    on a read-only root filesystem with one writable task volume at ``/tmp``, the task's memory
    as its hard limit, and a health check (``python -m worker.health``: supervisord runs, no
    program went FATAL, a worker made progress recently). Its log group is encrypted with
    ``key`` unless ``worker.encrypt_logs`` is false, and retained on delete with
    ``retain_data`` only, as the key is. With ``worker.ecs_exec`` the service
    allows ECS Exec, the task role may open SSM Session Manager channels, nothing more, and the
    root filesystem stays writable (the SSM agent writes to it).

    The service runs on ``worker.capacity``'s strategy (on-demand base, on-demand and Spot
    weights); with Spot and its fallback, ``fallback_service`` is an on-demand service of the
    same task definition that :class:`~stacks.constructs.capacity.SpotFallback` scales.

    ``settings_key`` (default ``worker``) is where ``config.worker`` is written in cdk.json, as
    the synth warnings name it (``workers.NAME.worker`` for one of several workers).

    Attributes: ``task_definition``, ``container``, ``service``, ``fallback_service`` (or None),
    ``log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: EnvironmentConfig,
        cluster: ecs.ICluster,
        network: Network,
        key: kms.IKey,
        queues: Sequence[ConsumedQueue],
        idempotency_table: dynamodb.ITableV2 | None = None,
        settings_key: str = "worker",
    ) -> None:
        super().__init__(scope, id_)
        worker = config.worker
        arm = worker.architecture == "arm64"
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=worker.cpu,
            memory_limit_mib=worker.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.log_group = encrypted_log_group(
            self,
            "Logs",
            RETENTION[worker.log_retention_days],
            key if worker.encrypt_logs else None,
            retain=config.retain_data,
        )
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            image=worker_image(self, worker.image, worker.architecture),
            environment=self._environment(config, queues, idempotency_table),
            secrets=self._secrets(worker.secrets),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="worker",
                log_group=self.log_group,
                # Never block the workers on CloudWatch; 25 MiB of buffer per task.
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=Size.mebibytes(25),
            ),
            # tini as PID 1 forwards SIGTERM to supervisord and reaps zombies.
            linux_parameters=ecs.LinuxParameters(
                self, "LinuxParameters", init_process_enabled=True
            ),
            stop_timeout=Duration.seconds(worker.stop_timeout_seconds),
            user=(worker.image and worker.image.user) or IMAGE_USER,
            # ECS Exec's SSM agent writes to the root filesystem: AWS does not support ECS Exec
            # with a read-only one (docs/operations.md).
            readonly_root_filesystem=not worker.ecs_exec,
            # The task's memory as the container's hard limit: one container per task.
            memory_limit_mib=worker.memory_mib,
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", HEALTH_CHECK],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(10),
                retries=3,
                start_period=HEALTH_START_PERIOD,
            ),
        )
        self.task_definition.add_volume(name="tmp")
        self.container.add_mount_points(
            ecs.MountPoint(container_path=WRITABLE_PATH, source_volume="tmp", read_only=False)
        )
        task_role = self.task_definition.task_role
        for consumed in queues:
            self._allow_queue(
                consumed,
                task_role,
                sends=worker.image is not None or worker.handler_mode == "consumer",
            )
        for warning_id, message in consumer_mode_warnings(config, settings_key, queues).items():
            Annotations.of(self).add_warning_v2(f"queue-worker-kit:{warning_id}", message)
        if idempotency_table is not None:  # worker.idempotency's conditional writes
            idempotency_table.grant(task_role, *IDEMPOTENCY_ACTIONS)
        self._allow_task_protection(cluster)
        self._allow_secret_keys(worker.secrets_kms_key_arns, worker.secrets.values())
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "Plain environment variables carry only non-secret worker settings (queue URLs, "
            "timings); secrets come from SSM or Secrets Manager through `secrets`.",
        )
        execution_policy = self.task_definition.obtain_execution_role().node.find_child(
            "DefaultPolicy"
        )
        acknowledge(
            execution_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; the image pull and "
            "log actions beside it are scoped to the image's repository and the log group.",
        )

        self.service = self._service(
            "Service", config, cluster, network, capacity_strategies(worker.capacity)
        )
        # With Spot, an on-demand twin that runs what Spot cannot place (SpotFallback scales it).
        self.fallback_service = (
            self._service(
                "FallbackService",
                config,
                cluster,
                network,
                [ecs.CapacityProviderStrategy(capacity_provider=ON_DEMAND, weight=1)],
            )
            if worker.capacity.fallback
            else None
        )
        if worker.ecs_exec:
            self._allow_ecs_exec(cluster, settings_key)

    @staticmethod
    def _allow_queue(consumed: ConsumedQueue, task_role: iam.IRole, *, sends: bool) -> None:
        """What the runtime calls (tests/infra/test_iam_calls.py compares them): consume the
        queue (GetQueueAttributes: the start-up check), send failures to its DLQ; ``sends``:
        send to the queue too."""
        queue = consumed.queue
        queue.grant(task_role, *CONSUME_ACTIONS)
        consumed.dead_letter_queue.grant(task_role, "sqs:SendMessage")
        # An existing queue's customer-managed key: read the queue, send to it and its DLQ.
        if queue_key := queue.encryption_master_key:
            queue_key.grant(task_role, *EXISTING_QUEUE_KEY_ACTIONS)
        if sends:
            queue.grant_send_messages(task_role)

    def _service(
        self,
        id_: str,
        config: EnvironmentConfig,
        cluster: ecs.ICluster,
        network: Network,
        strategies: list[ecs.CapacityProviderStrategy],
    ) -> ecs.FargateService:
        return ecs.FargateService(
            self,
            id_,
            cluster=cluster,
            task_definition=self.task_definition,
            # No DesiredCount in the template: CloudFormation would pass it to every service
            # update and reset the fleet autoscaling built (docs/architecture.md, "Deploys").
            desired_count=None,
            vpc_subnets=network.subnets,
            assign_public_ip=network.assign_public_ip,
            security_groups=[network.security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            # New tasks start before old ones stop: no gap in consumption during a deploy.
            min_healthy_percent=100,
            max_healthy_percent=200,
            capacity_provider_strategies=strategies,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_execute_command=config.worker.ecs_exec or None,  # off: absent from template
        )

    def _environment(
        self,
        config: EnvironmentConfig,
        queues: Sequence[ConsumedQueue],
        idempotency_table: dynamodb.ITableV2 | None,
    ) -> dict[str, str]:
        """The worker runtime's settings (docs/contract.md), then the team's own variables."""
        worker, q = config.worker, config.queue
        return {
            **self._queue_variables(queues),
            "WORKER_PROCESSES": str(worker.processes),
            "WORKER_HANDLER_MODE": worker.handler_mode,
            "WORKER_HANDLER": worker.handler,
            "JOB_TIMEOUT_SECONDS": str(worker.job_timeout_seconds),
            "VISIBILITY_TIMEOUT_SECONDS": str(q.visibility_timeout_seconds),
            "HEARTBEAT_INTERVAL_SECONDS": str(q.heartbeat_interval_seconds),
            "RETRY_BACKOFF_BASE_SECONDS": str(q.retry_backoff_base_seconds),
            "RETRY_BACKOFF_MAX_SECONDS": str(q.retry_backoff_max_seconds),
            contract.MAX_RECEIVE_COUNT_VARIABLE: str(q.max_receive_count),
            "PREFETCH_SECONDS": str(prefetch_seconds(worker.prefetch_seconds, queues)),
            "MAX_JOBS_PER_PROCESS": str(worker.max_jobs_per_process),
            "MAX_MEMORY_MIB_PER_PROCESS": str(worker.max_memory_mib_per_process),
            "WORKER_STOP_GRACE_SECONDS": str(worker.stop_grace_seconds),
            "SUPERVISOR_STOPWAITSECS": str(worker.supervisor_stopwait_seconds),
            "TASK_PROTECTION": "on",
            **(
                {"IDEMPOTENCY_TABLE_NAME": idempotency_table.table_name}
                if idempotency_table
                else {}
            ),
            # What the worker masks in its log (worker.masking); ECS sets the values.
            **(
                {contract.SECRET_NAMES_VARIABLE: ",".join(sorted(worker.secrets))}
                if worker.secrets
                else {}
            ),
            **worker.environment,
        }

    def _queue_variables(self, queues: Sequence[ConsumedQueue]) -> dict[str, str]:
        """One queue: ``QUEUE_URL`` and ``DEAD_LETTER_QUEUE_URL``. Several: ``WORKER_QUEUES``,
        highest priority first, each with its DLQ and its ``max_receive_count`` (a JSON string
        of the queues' URL tokens, resolved by CloudFormation)."""
        if len(queues) == 1:
            (only,) = queues
            return {
                "QUEUE_URL": only.queue.queue_url,
                "DEAD_LETTER_QUEUE_URL": only.dead_letter_queue.queue_url,
            }
        entries = [
            {
                "name": consumed.name,
                "url": consumed.queue.queue_url,
                "dead_letter_queue_url": consumed.dead_letter_queue.queue_url,
                "max_receive_count": consumed.config.max_receive_count,
            }
            for consumed in queues
        ]
        return {contract.QUEUES_VARIABLE: Stack.of(self).to_json_string(entries)}

    def _secrets(self, refs: Mapping[str, str]) -> dict[str, ecs.Secret]:
        """``ssm:/name`` -> SSM parameter; ``secretsmanager:name[:key]`` -> Secrets Manager. The
        execution role may read each with the one action ECS calls at task start
        (``ssm:GetParameters``, ``secretsmanager:GetSecretValue``), not CDK's read grants
        (``GetParameterHistory``, ``DescribeParameters``, ``DescribeSecret``)."""
        secrets: dict[str, ecs.Secret] = {}
        for name, ref in refs.items():
            kind, _, rest = ref.partition(":")
            if kind == "ssm":
                parameter = ssm.StringParameter.from_string_parameter_name(
                    self, f"Parameter{name}", rest
                )
                secrets[name] = StartSecret(
                    ecs.Secret.from_ssm_parameter(parameter),
                    "ssm:GetParameters",
                    parameter.parameter_arn,
                )
            else:
                secret_name, _, json_key = rest.partition(":")
                secret = secretsmanager.Secret.from_secret_name_v2(
                    self, f"Secret{name}", secret_name
                )
                secrets[name] = StartSecret(
                    ecs.Secret.from_secrets_manager(secret, json_key or None),
                    "secretsmanager:GetSecretValue",
                    # A secret's ARN ends in 6 random characters (what CDK's grant matches too).
                    f"{secret.secret_arn}-??????",
                )
        return secrets

    def _allow_secret_keys(self, key_arns: Sequence[str], refs: Iterable[str]) -> None:
        """The execution role may decrypt with ``key_arns`` (``worker.secrets_kms_key_arns``,
        the customer-managed keys of ``worker.secrets``): ``kms:Decrypt`` only, on those keys
        only, and only through the services the secrets come from (``kms:ViaService``)."""
        if not key_arns:
            return
        region = Stack.of(self).region
        services = sorted({f"{ref.partition(':')[0]}.{region}.amazonaws.com" for ref in refs})
        self.task_definition.obtain_execution_role().add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=list(key_arns),
                conditions={"StringEquals": {"kms:ViaService": services}},
            )
        )

    def _allow_ecs_exec(self, cluster: ecs.ICluster, settings_key: str) -> None:
        """ECS Exec: CDK grants the task role the four ssmmessages channel actions and, for the
        session log (the cluster's execute command configuration), logs:DescribeLogGroups and
        the writes to the sessions' log group."""
        policy = self.task_definition.task_role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ECS Exec: the ssmmessages channel actions (Create/Open Control/Data Channel) and "
            "logs:DescribeLogGroups (the SSM agent checks the session log group's encryption) "
            "have no resource-level permissions; who may open a session is decided by "
            "ecs:ExecuteCommand on the caller's side.",
        )
        exec_config = cluster.execute_command_configuration
        sessions = exec_config and exec_config.log_configuration
        if sessions and sessions.cloud_watch_log_group:
            group = typing.cast("logs.ILogGroup", sessions.cloud_watch_log_group)
            streams = Stack.of(self).format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{group.log_group_name}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{as_nag_resource(Stack.of(self), streams)}]",
                "ECS Exec: the SSM agent writes each session's transcript to a new stream of "
                "the sessions' log group; stream names exist only at run time.",
            )
        Annotations.of(self).add_warning_v2(
            "queue-worker-kit:ecsExec",
            f"{settings_key}.ecs_exec is on: anyone allowed ecs:ExecuteCommand on this cluster "
            "gets a root shell in the worker container, and the container keeps a writable root "
            "filesystem because the SSM agent writes to it (docs/operations.md).",
        )

    def _allow_task_protection(self, cluster: ecs.ICluster) -> None:
        """The worker protects its own task from scale-in while busy (ECS agent endpoint)."""
        stack = Stack.of(self)
        tasks_of_cluster = stack.format_arn(
            service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*"
        )
        self.task_definition.add_to_task_role_policy(
            iam.PolicyStatement(actions=["ecs:UpdateTaskProtection"], resources=[tasks_of_cluster])
        )
        acknowledge(
            self.task_definition.task_role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::{as_nag_resource(stack, tasks_of_cluster)}]",
            "A task sets its own scale-in protection; task ids are only known at run time, so "
            "the resource is narrowed to the tasks of this cluster.",
        )
