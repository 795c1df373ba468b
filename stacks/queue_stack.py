"""STATEFUL: the work queue, its DLQ and the optional idempotency table."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.idempotency_table import IdempotencyTable
from stacks.constructs.work_queue import WorkQueue


class QueueStack(Stack):
    """Holds what must survive a redeploy of the workers.

    With ``retain_data`` (prod) the queues and table are retained on delete and the stack has
    termination protection. Attributes: ``queue``, ``dead_letter_queue``,
    ``idempotency_table`` (None unless ``queue.idempotency_table``).
    """

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, id_, termination_protection=config.retain_data, **kwargs)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        work_queue = WorkQueue(
            self,
            "WorkQueue",
            config=config.queue,
            name_prefix=config.stack_prefix,
            removal_policy=removal,
        )
        self.queue = work_queue.queue
        self.dead_letter_queue = work_queue.dead_letter_queue
        self.idempotency_table = (
            IdempotencyTable(self, "Idempotency", removal_policy=removal).table
            if config.queue.idempotency_table
            else None
        )

        CfnOutput(self, "QueueUrl", value=self.queue.queue_url)
        CfnOutput(self, "QueueArn", value=self.queue.queue_arn)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
        CfnOutput(self, "DeadLetterQueueArn", value=self.dead_letter_queue.queue_arn)
        if self.idempotency_table is not None:
            CfnOutput(self, "IdempotencyTableName", value=self.idempotency_table.table_name)
