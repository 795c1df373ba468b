"""The work queue and its dead-letter queue, with secure defaults."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import skip
from stacks.config import QueueConfig

DLQ_RETENTION = Duration.days(14)


class WorkQueue(Construct):
    """An SQS queue with a DLQ: SSE-SQS encryption, TLS-only policy, redrive after N receives.

    Named ``<name_prefix>-WorkQueue`` and ``<name_prefix>-DeadLetterQueue`` (stable names the
    operator scripts and docs use). Attributes: ``queue`` (the work queue),
    ``dead_letter_queue`` (keeps messages 14 days, the SQS maximum; its redrive-allow policy
    admits the work queue only).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: QueueConfig,
        name_prefix: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        work_queue_name = f"{name_prefix}-WorkQueue"
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=f"{name_prefix}-DeadLetterQueue",
            # Only the work queue may use it as its DLQ (by name: a reference to the work
            # queue's ARN would make the two queues depend on each other).
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[
                    sqs.Queue.from_queue_arn(
                        self,
                        "WorkQueueByName",
                        Stack.of(self).format_arn(service="sqs", resource=work_queue_name),
                    )
                ],
            ),
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        self.queue = sqs.Queue(
            self,
            "WorkQueue",
            queue_name=work_queue_name,
            # The worker's heartbeat extends this while a job runs; kept short so that a
            # crashed process's message comes back within minutes.
            visibility_timeout=Duration.seconds(config.visibility_timeout_seconds),
            retention_period=Duration.days(config.retention_days),
            receive_message_wait_time=Duration.seconds(20),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=config.max_receive_count
            ),
            removal_policy=removal_policy,
        )
        for queue in (self.queue, self.dead_letter_queue):
            skip(
                queue,
                "CKV_AWS_27",
                "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled); checkov only counts a KMS "
                "key. A customer-managed key would charge KMS requests on every send/receive "
                "and make every producer need kms:GenerateDataKey on it.",
            )
