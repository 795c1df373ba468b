"""The DynamoDB table behind the worker's optional dedupe guard."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct


class IdempotencyTable(Construct):
    """On-demand table keyed by ``pk`` with TTL on ``expires_at`` and point-in-time recovery.

    The worker's ``worker.idempotency`` guard claims a key with a conditional write, marks it
    done, and lets DynamoDB expire it. Attribute: ``table``.
    """

    def __init__(self, scope: Construct, id_: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id_)
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal_policy,
        )
