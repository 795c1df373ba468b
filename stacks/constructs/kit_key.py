"""The worker stack's customer-managed KMS key, with a least-privilege key policy."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.checkov import skip

# What the account (its IAM policies) may do with the key: everything but creating grants,
# which only AWS services may do on a principal's behalf (CREATE_GRANT below).
ACCOUNT_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:Get*",
    "kms:List*",
    "kms:PutKeyPolicy",
    "kms:ReEncrypt*",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
PUBLISHER_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")
LOGS_ACTIONS = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)


class KitKey(Construct):
    """One key for the stack: the alarm topic, and the log groups when ``encrypt_logs``.

    Rotated yearly. It lives as long as the log groups it encrypts (:func:`removal_policy`):
    with ``retain`` (``retain_data``, prod) the key and the log groups are kept when the stack
    is deleted, so retained logs stay readable; without it (default) all are deleted with the
    stack, the key 7 days later. Key policy, statement by statement:

    * ``AccountAdministration``: the account's IAM policies may administer and use the key,
      but not create grants (no ``kms:*``);
    * ``CreateGrantForAwsServicesOnly``: the account may create grants only through an AWS
      service (``kms:GrantIsForAWSResource``);
    * ``DenyCreateGrantOutsideAwsServices``: nobody may create a grant unless an AWS service
      asks for it or for a resource of its own (the Deny that AWS Control Tower's CT.KMS.PR.3
      requires: ``BoolIfExists`` false on both ``kms:GrantIsForAWSResource`` and
      ``aws:PrincipalIsAWSService``);
    * ``AlarmsPublish`` / ``EventsPublish``: CloudWatch alarms and EventBridge rules may
      publish to the encrypted topic, only on behalf of this account's alarms and rules in this
      region (``aws:SourceAccount``, ``aws:SourceArn``: no confused deputy);
    * ``LogsEncrypt`` (``encrypt_logs`` only): CloudWatch Logs in this region may use the key
      for this stack's log groups only (``kms:EncryptionContext:aws:logs:arn`` like
      ``log-group:<stack name>-*``: the names CloudFormation generates begin with it).

    The alarm and rule source ARNs are account-wide patterns rather than this environment's
    names: the names CloudFormation generates for them are not known at synth, and a pattern
    that missed one would silently drop its notifications.

    Attributes: ``key``, ``log_group_arns`` (the pattern the logs statement allows).
    """

    def __init__(
        self, scope: Construct, id_: str, *, prefix: str, encrypt_logs: bool, retain: bool = False
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        region, account = stack.region, stack.account
        # CloudFormation names a log group it creates `<stack>-<logical id>-<random>`: the
        # pattern admits this stack's log groups (worker, flow logs, ECS Exec sessions) only.
        self.log_group_arns = f"arn:aws:logs:{region}:{account}:log-group:{stack.stack_name}-*"
        statements = [
            iam.PolicyStatement(
                sid="AccountAdministration",
                principals=[iam.AccountRootPrincipal()],
                actions=list(ACCOUNT_ACTIONS),
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="CreateGrantForAwsServicesOnly",
                principals=[iam.AccountRootPrincipal()],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
            iam.PolicyStatement(
                sid="DenyCreateGrantOutsideAwsServices",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={
                    "BoolIfExists": {
                        "kms:GrantIsForAWSResource": "false",
                        "aws:PrincipalIsAWSService": "false",
                    }
                },
            ),
            self._publisher(
                "AlarmsPublish",
                "cloudwatch.amazonaws.com",
                f"arn:aws:cloudwatch:{region}:{account}:alarm:*",
                account,
            ),
            self._publisher(
                "EventsPublish",
                "events.amazonaws.com",
                f"arn:aws:events:{region}:{account}:rule/*",
                account,
            ),
        ]
        if encrypt_logs:
            statements.append(
                iam.PolicyStatement(
                    sid="LogsEncrypt",
                    principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                    actions=list(LOGS_ACTIONS),
                    resources=["*"],
                    conditions={
                        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": self.log_group_arns}
                    },
                )
            )
        self.key = kms.Key(
            self,
            "Key",
            description=f"{prefix}: alarm topic" + (" and log groups" if encrypt_logs else ""),
            enable_key_rotation=True,
            pending_window=Duration.days(7),
            removal_policy=removal_policy(retain),
            policy=iam.PolicyDocument(statements=statements),
        )

    @staticmethod
    def _publisher(sid: str, service: str, source_arns: str, account: str) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(service)],
            actions=list(PUBLISHER_ACTIONS),
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": source_arns},
            },
        )


def removal_policy(retain: bool) -> RemovalPolicy:
    """What happens to the kit's key and log groups when their stack is deleted: RETAIN with
    ``retain`` (``retain_data``), else DESTROY. One policy for both, so that no retained log
    group is encrypted with a key that is deleted before it."""
    return RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY


def encrypted_log_group(
    scope: Construct,
    id_: str,
    retention: logs.RetentionDays,
    key: kms.IKey | None,
    *,
    retain: bool = False,
) -> logs.LogGroup:
    """A log group encrypted with ``key``, kept on stack deletion only with ``retain`` (the
    key's own policy: :func:`removal_policy`); without a key (``worker.encrypt_logs: false``)
    the checkov finding is skipped with that setting as its reason."""
    group = logs.LogGroup(
        scope, id_, retention=retention, encryption_key=key, removal_policy=removal_policy(retain)
    )
    if key is None:
        skip(
            group,
            "CKV_AWS_158",
            "worker.encrypt_logs is false in this environment: logs are encrypted with "
            "CloudWatch Logs' own keys, not the kit's KMS key.",
        )
    return group
