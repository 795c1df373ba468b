"""The work queue and its dead-letter queue, with secure defaults."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import QueueConfig

DLQ_RETENTION = Duration.days(14)


class WorkQueue(Construct):
    """An SQS queue with a DLQ: SSE-SQS encryption, TLS-only policy, redrive after N receives.

    Attributes: ``queue`` (the work queue), ``dead_letter_queue`` (keeps messages 14 days, the
    SQS maximum).
    """

    def __init__(
        self, scope: Construct, id_: str, *, config: QueueConfig, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, id_)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        self.queue = sqs.Queue(
            self,
            "WorkQueue",
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
