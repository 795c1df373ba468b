"""The work queue and its dead-letter queue, with secure defaults; or an existing pair."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import skip
from stacks.config import QueueConfig, Subscription
from stacks.nag import acknowledge

DLQ_RETENTION = Duration.days(14)


class WorkQueue(Construct):
    """An SQS queue with a DLQ: SSE-SQS encryption, TLS-only policy, redrive after N receives.

    Named ``<name_prefix>-WorkQueue`` and ``<name_prefix>-DeadLetterQueue`` (stable names the
    operator scripts and docs use). Attributes: ``queue`` (the work queue),
    ``dead_letter_queue`` (keeps messages 14 days, the SQS maximum; its redrive-allow policy
    admits the work queue only). With ``config.arn`` the work queue is the existing one, imported
    (with its key, if ``kms_key_arn``) and left as it is; so is its DLQ
    (``dead_letter_queue_arn``), or the kit creates one that admits it
    (``kit_dead_letter_queue``: the team points its queue's redrive policy at it). Each of
    ``config.subscriptions`` subscribes the kit queue to its topic; the queue's policy lets that
    topic alone send.
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
        self.queue: sqs.IQueue
        self.dead_letter_queue: sqs.IQueue
        suffix = ".fifo" if config.fifo else ""
        work_queue_name = f"{name_prefix}-WorkQueue{suffix}"
        if config.arn:
            self.queue = self._existing("WorkQueue", config.arn, config.kms_key_arn)
            self.dead_letter_queue = (
                self._existing("DeadLetterQueue", config.dead_letter_queue_arn, config.kms_key_arn)
                if config.dead_letter_queue_arn
                else self._dead_letter_queue(name_prefix, config.arn, removal_policy, config.fifo)
            )
            if isinstance(self.dead_letter_queue, sqs.Queue):
                acknowledge(
                    self.dead_letter_queue,
                    "AwsSolutions-SQS3",
                    "The DLQ of the existing queue (queue.arn), whose redrive policy the team "
                    "points at it (kit_dead_letter_queue); its redrive-allow policy admits that "
                    "queue alone. The app cannot name it, as the queue is not the kit's.",
                )
            return
        self.dead_letter_queue = self._dead_letter_queue(
            # By name: a reference to the work queue's ARN would make the two depend on each other.
            name_prefix,
            Stack.of(self).format_arn(service="sqs", resource=work_queue_name),
            removal_policy,
            config.fifo,
        )
        self.queue = kit_queue = sqs.Queue(
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
            **_fifo_settings(config),
        )
        _skip_kms_check(kit_queue)
        for index, subscription in enumerate(config.subscriptions):
            self._subscribe(kit_queue, subscription, f"Subscription{index}")

    def _existing(self, id_: str, arn: str, key_arn: str | None) -> sqs.IQueue:
        return sqs.Queue.from_queue_attributes(self, id_, queue_arn=arn, key_arn=key_arn)

    def _dead_letter_queue(
        self, name_prefix: str, source_arn: str, removal_policy: RemovalPolicy, fifo: bool
    ) -> sqs.Queue:
        """The kit's DLQ: 14 days, SSE-SQS, TLS only; only ``source_arn`` may redrive to it;
        FIFO with a FIFO queue (SQS moves a FIFO queue's messages only to a FIFO DLQ)."""
        queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=f"{name_prefix}-DeadLetterQueue" + (".fifo" if fifo else ""),
            fifo=True if fifo else None,
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[sqs.Queue.from_queue_arn(self, "WorkQueueByName", source_arn)],
            ),
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        _skip_kms_check(queue)
        return queue

    def _subscribe(self, queue: sqs.Queue, subscription: Subscription, id_: str) -> None:
        """SNS delivers ``subscription.topic_arn``'s messages to ``queue``: the subscription
        (SNS's own filter policy JSON, as written) and one queue-policy statement that lets
        only that topic send (``aws:SourceArn``). SSE-SQS needs no key grant for SNS."""
        sns.CfnSubscription(
            self,
            id_,
            topic_arn=subscription.topic_arn,
            protocol="sqs",
            endpoint=queue.queue_arn,
            raw_message_delivery=subscription.raw_message_delivery,
            filter_policy=subscription.filter_policy,
            filter_policy_scope=subscription.filter_policy_scope
            if subscription.filter_policy
            else None,
        )
        queue.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": subscription.topic_arn}},
            )
        )


def _skip_kms_check(queue: sqs.Queue) -> None:
    skip(
        queue,
        "CKV_AWS_27",
        "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled); checkov only counts a KMS "
        "key. A customer-managed key would charge KMS requests on every send/receive "
        "and make every producer need kms:GenerateDataKey on it.",
    )


def _fifo_settings(config: QueueConfig) -> dict[str, Any]:
    """A FIFO queue's settings (none for a standard queue: its template is unchanged)."""
    if not config.fifo:
        return {}
    settings: dict[str, Any] = {
        "fifo": True,
        "content_based_deduplication": config.content_based_deduplication,
    }
    if config.high_throughput:
        settings |= {
            "deduplication_scope": sqs.DeduplicationScope.MESSAGE_GROUP,
            "fifo_throughput_limit": sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
        }
    return settings


@dataclass(frozen=True)
class ConsumedQueue:
    """A queue as a worker consumes it: ``name`` (its key in ``queues``, ``default`` for
    ``queue``), its ``config`` and the queue stack's ``work_queue``."""

    name: str
    config: QueueConfig
    work_queue: WorkQueue

    @property
    def queue(self) -> sqs.IQueue:
        return self.work_queue.queue

    @property
    def dead_letter_queue(self) -> sqs.IQueue:
        return self.work_queue.dead_letter_queue


def across_queues(
    queues: Sequence[sqs.IQueue],
    metric: Callable[[sqs.IQueue], cloudwatch.Metric],
    *,
    function: str,
    id_: str,
    label: str,
) -> cloudwatch.IMetric:
    """``metric`` of the one queue, or ``function`` (``SUM``, ``MAX``) over every queue's
    (ids ``<id_>0``, ``<id_>1``...): a minute counts the queues that published in it and is
    missing only when none did, as one queue's is."""
    if len(queues) == 1:
        return metric(queues[0])
    using = {f"{id_}{index}": metric(queue) for index, queue in enumerate(queues)}
    return cloudwatch.MathExpression(
        expression=f"{function}([{', '.join(using)}])",
        using_metrics=using,
        label=label,
        period=Duration.minutes(1),
    )
