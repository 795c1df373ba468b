"""STATEFUL: the work queues, their DLQs and the optional idempotency table."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnWaitConditionHandle, RemovalPolicy, Stack
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.idempotency_table import IdempotencyTable
from stacks.constructs.work_queue import WorkQueue
from stacks.naming import scoped_id


class QueueStack(Stack):
    """Holds what must survive a redeploy of the workers.

    One WorkQueue (a queue and its DLQ) for each of ``config.work_queues``; the ``default``
    queue keeps its construct id and names, so a queue added beside it never replaces it.
    With ``retain_data`` (prod) the queues and table are retained on delete and the stack has
    termination protection. Attributes: ``work_queues`` (WorkQueue by queue name, in config
    order), ``queue`` and ``dead_letter_queue`` (the first's), ``idempotency_table`` (None
    unless some queue sets ``idempotency_table``).
    """

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, id_, termination_protection=config.retain_data, **kwargs)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        self.work_queues = {
            name: WorkQueue(
                self,
                scoped_id("WorkQueue", name),
                config=queue,
                name_prefix=scoped_id(config.stack_prefix, name),
                removal_policy=removal,
            )
            for name, queue in config.work_queues.items()
        }
        first = next(iter(self.work_queues.values()))
        self.queue, self.dead_letter_queue = first.queue, first.dead_letter_queue
        self.idempotency_table = (
            IdempotencyTable(self, "Idempotency", removal_policy=removal).table
            if any(queue.idempotency_table for queue in config.work_queues.values())
            else None
        )

        for name, work_queue in self.work_queues.items():
            for output, value in {
                "QueueUrl": work_queue.queue.queue_url,
                "QueueArn": work_queue.queue.queue_arn,
                "DeadLetterQueueUrl": work_queue.dead_letter_queue.queue_url,
                "DeadLetterQueueArn": work_queue.dead_letter_queue.queue_arn,
            }.items():
                CfnOutput(self, scoped_id(output, name), value=value)
        if self.idempotency_table is not None:
            CfnOutput(self, "IdempotencyTableName", value=self.idempotency_table.table_name)
        if all(queue.arn for queue in config.work_queues.values()) and not self.idempotency_table:
            # Only existing queues: CloudFormation needs one resource to hold the outputs the
            # operator commands read. A wait-condition handle does nothing and costs nothing.
            CfnWaitConditionHandle(self, "OutputsHolder")
