"""The CloudFormation execution policy: what CloudFormation may do when it deploys the kit.

``cdk bootstrap --cloudformation-execution-policies ARN`` gives the bootstrap's
``cfn-exec-role`` this policy instead of AdministratorAccess, so a pipeline that can start a
deployment can create only what the kit's stacks create. The actions are the CloudFormation
resource handlers' own permissions (the registry schemas cfn-lint ships) of every resource
type of the environment's queue and worker stacks, less ``EXCLUDED`` (features of a type the
kit does not use). ``execution_actions.json`` holds them by type; regenerate it with
``python -m stacks.execution_policy --write [--add AWS::X::Y ...]`` (a test fails when it is
stale or when a template gains a type it lacks).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.nag import acknowledge, as_nag_resource

ACTIONS_FILE = Path(__file__).with_name("execution_actions.json")
PROJECT_DIR = Path(__file__).resolve().parents[1]
# Handler permissions for features of a type the kit never uses, left out with the reason.
EXCLUDED: Mapping[str, str] = {
    "iam:AttachRolePolicy": "the kit's roles have inline policies only, no managed policy",
    "iam:DetachRolePolicy": "the same",
    "iam:PutRolePermissionsBoundary": "the kit sets no permissions boundary",
    "iam:DeleteRolePermissionsBoundary": "removing a boundary is an escalation path",
    "iam:PutUserPolicy": "AWS::IAM::Policy on users: the kit attaches policies to roles only",
    "iam:GetUserPolicy": "the same",
    "iam:DeleteUserPolicy": "the same",
    "iam:PutGroupPolicy": "AWS::IAM::Policy on groups: the same",
    "iam:GetGroupPolicy": "the same",
    "iam:DeleteGroupPolicy": "the same",
    "ecs:PutAccountSetting": "an account-wide ECS setting, not a resource of the kit",
    "ecs:PutAccountSettingDefault": "the same",
    "ec2:AttachVpnGateway": "VPN gateways: the kit attaches internet gateways only",
    "ec2:DetachVpnGateway": "the same",
    "ec2:DescribeVpnGateways": "the same",
    "kinesis:DescribeStream": "DynamoDB streaming to Kinesis: not used",
    "kinesis:ListStreams": "the same",
    "kinesis:PutRecords": "the same",
    "firehose:TagDeliveryStream": "SNS delivery to Firehose: not used",
    "lambda:DeleteProvisionedConcurrencyConfig": "scalable targets of Lambda: the kit scales ECS",
    "lambda:GetProvisionedConcurrencyConfig": "the same",
    "lambda:PutProvisionedConcurrencyConfig": "the same",
    "s3:GetBucketPolicy": "flow logs to S3: the kit's flow logs go to CloudWatch Logs",
    "s3:PutBucketPolicy": "the same",
    "s3:REST.PUT.OBJECT": "the same (not an IAM action)",
    "vpc-lattice:CreateServiceNetworkVpcEndpointAssociation": "VPC Lattice endpoints: not used",
    "vpc-lattice:DescribeServiceNetworkVpcEndpointAssociation": "the same",
    "vpce:AllowMultiRegion": "cross-region endpoints: not used",
}
# IAM actions that act on one role: scoped to the roles CloudFormation names after the kit's
# stacks. The rest of IAM (listing, service-linked roles) is scoped below.
IAM_UNSCOPED = {"iam:ListRoles"}
SERVICE_LINKED = {"iam:CreateServiceLinkedRole"}


def handler_actions(resource_type: str, region: str = "us-east-1") -> list[str]:
    """The permissions of every handler of ``resource_type`` in CloudFormation's registry
    schema (as cfn-lint ships it), less ``EXCLUDED``."""
    from cfnlint.data import schemas  # type: ignore[import-untyped]  # dev: generator, tests

    root = Path(schemas.__file__).parent
    provider = json.loads((root / "providers" / f"{region}.json").read_text())
    schema = json.loads((root / "resources" / f"{provider[resource_type]}.json").read_text())
    handlers = schema.get("handlers", {}).values()
    actions = {a for handler in handlers for a in handler.get("permissions", [])}
    return sorted(actions - set(EXCLUDED))


def actions_by_type() -> dict[str, list[str]]:
    return dict(json.loads(ACTIONS_FILE.read_text()))


def resource_types(stacks: Iterable[Stack]) -> set[str]:
    """Every CloudFormation resource type in ``stacks``."""
    return {
        node.cfn_resource_type
        for stack in stacks
        for node in stack.node.find_all()
        if isinstance(node, CfnResource)
    }


def statements(
    types: Iterable[str], *, stack: Stack, stack_names: Iterable[str], qualifier: str
) -> list[iam.PolicyStatement]:
    """The policy's statements for ``types``: one per service, IAM scoped to the roles of
    ``stack_names`` (CloudFormation names a role STACK-LOGICALID-SUFFIX), the rest to the
    environment's region."""
    known = actions_by_type()
    missing = sorted(set(types) - set(known))
    if missing:
        raise ValueError(
            f"no execution-policy actions for {missing}: run python -m stacks.execution_policy "
            f"--write --add {' '.join(missing)}"
        )
    by_service: dict[str, set[str]] = {}
    for resource_type in types:
        for action in known[resource_type]:
            by_service.setdefault(action.split(":")[0], set()).add(action)
    iam_actions = by_service.pop("iam", set())
    region = {"StringEquals": {"aws:RequestedRegion": stack.region}}
    result = [
        iam.PolicyStatement(
            sid=service.title().replace("-", ""),
            actions=sorted(actions),
            resources=["*"],
            conditions=region,
        )
        for service, actions in sorted(by_service.items())
    ]
    role = stack.format_arn(service="iam", region="", resource="role", resource_name="{}")
    scoped = sorted(iam_actions - IAM_UNSCOPED - SERVICE_LINKED)
    if scoped:
        result.append(
            iam.PolicyStatement(
                sid="IamKitRoles",
                actions=scoped,
                resources=[role.replace("{}", f"{name}-*") for name in stack_names],
            )
        )
    if iam_actions & IAM_UNSCOPED:
        result.append(
            iam.PolicyStatement(
                sid="IamList", actions=sorted(iam_actions & IAM_UNSCOPED), resources=["*"]
            )
        )
    if iam_actions & SERVICE_LINKED:
        result.append(
            iam.PolicyStatement(
                sid="IamServiceLinkedRoles",
                actions=sorted(iam_actions & SERVICE_LINKED),
                resources=[role.replace("{}", "aws-service-role/*")],
            )
        )
    # Every template's BootstrapVersion parameter: CloudFormation resolves it with this role.
    result.append(
        iam.PolicyStatement(
            sid="BootstrapVersion",
            actions=["ssm:GetParameters"],
            resources=[
                stack.format_arn(
                    service="ssm",
                    resource="parameter",
                    resource_name=f"cdk-bootstrap/{qualifier}/version",
                )
            ],
        )
    )
    return result


# IAM allows 6,144 characters (white space aside) a managed policy; tokens render longer.
MAX_POLICY_CHARS = 4500


class ExecutionPolicy(Construct):
    """The customer-managed policies ``QueueWorker-ENV-CloudFormationExecution-N`` for
    ``cdk bootstrap --cloudformation-execution-policies``: the actions of the resource types of
    ``stacks`` (the environment's queue and worker stacks), packed into as few policies as
    IAM's size limit allows. Attribute: ``policies``."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        stacks: Iterable[Stack],
        qualifier: str,
    ) -> None:
        super().__init__(scope, id_)
        stacks = list(stacks)
        packs: list[list[iam.PolicyStatement]] = [[]]
        size = 0
        for statement in statements(
            resource_types(stacks),
            stack=Stack.of(self),
            stack_names=[s.stack_name for s in stacks],
            qualifier=qualifier,
        ):
            length = len(json.dumps(statement.to_json(), separators=(",", ":")))
            if packs[-1] and size + length > MAX_POLICY_CHARS:
                packs.append([])
                size = 0
            packs[-1].append(statement)
            size += length
        self.policies = [
            iam.ManagedPolicy(
                self,
                f"Policy{number}",
                managed_policy_name=f"{name}-{number}",
                description=(
                    f"CloudFormation execution policy {number} of {len(packs)} of the "
                    "queue-worker kit (docs/ci-cd.md)"
                ),
                statements=pack,
            )
            for number, pack in enumerate(packs, 1)
        ]
        for policy, pack in zip(self.policies, packs, strict=True):
            for statement in pack:
                self._acknowledge_wildcards(policy, statement)

    def _acknowledge_wildcards(
        self, policy: iam.ManagedPolicy, statement: iam.PolicyStatement
    ) -> None:
        """cdk-nag's IAM5 on each wildcard; docs/security.md's table says why, row by row."""
        reason = (
            f"{statement.sid}: the CloudFormation handler permissions of the kit's resource "
            "types (the execution policy, docs/ci-cd.md); a Resource of * is bound to the "
            "environment's region, IAM to the roles of the kit's stacks"
        )
        stack = Stack.of(self)
        wildcards = [f"Action::{a}" for a in statement.actions if "*" in a]
        wildcards += [
            f"Resource::{text}"
            for text in (as_nag_resource(stack, r) for r in statement.resources)
            if "*" in text
        ]
        for wildcard in wildcards:
            acknowledge(policy, f"AwsSolutions-IAM5[{wildcard}]", reason)


def bootstrap_args(
    assembly: Path, env_name: str, account: str | None, *, project: Path = PROJECT_DIR
) -> list[str]:
    """``cdk bootstrap`` arguments for ``env_name`` (of ``project``'s cdk.json) from its
    synthesized ``assembly``: its account and region, its qualifier and toolkit stack, its
    execution policies, and the kit's bootstrap template, whose deploy role may change only
    the environment's queue and worker stacks (stacks/bootstrap_template.py; written beside
    the assembly)."""
    from stacks.bootstrap_template import kit_stack_names, write_template
    from stacks.config import load_config

    environments = json.loads((project / "cdk.json").read_text())["context"]["environments"]
    config = load_config(environments, env_name)
    account = config.account or account
    if not account:
        sys.exit(f"{env_name} has no account in cdk.json: give it, e.g. ACCOUNT=123456789012")
    if config.ci is None:
        sys.exit(f"{env_name} has no ci section: its execution policies are not synthesized")
    template = json.loads((assembly / f"{config.stack_prefix}-Deploy.template.json").read_text())
    names = sorted(
        r["Properties"]["ManagedPolicyName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
    )
    partition = {"cn": "aws-cn", "us-gov": "aws-us-gov"}.get(config.region.rsplit("-", 2)[0], "aws")
    policies = ",".join(f"arn:{partition}:iam::{account}:policy/{name}" for name in names)
    stacks = kit_stack_names(assembly, exclude=[f"{config.stack_prefix}-Deploy"])
    template = write_template(assembly, env_name, stacks)
    return [
        f"aws://{account}/{config.region}",
        f"--qualifier={config.bootstrap.qualifier}",
        f"--toolkit-stack-name={config.bootstrap.toolkit_stack_name}",
        f"--cloudformation-execution-policies={policies}",
        f"--template={template}",
    ]


USAGE = (
    "usage: python -m stacks.execution_policy --write [--add AWS::X::Y ...]\n"
    "       python -m stacks.execution_policy --bootstrap-args ASSEMBLY_DIR ENV [ACCOUNT]"
)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--bootstrap-args"] and len(argv) in (3, 4):
        print(*bootstrap_args(Path(argv[1]), argv[2], argv[3] if len(argv) == 4 else None))
        return
    if not argv or argv[0] != "--write" or (argv[1:] and argv[1] != "--add"):
        sys.exit(USAGE)
    types = set(actions_by_type()) if ACTIONS_FILE.exists() else set()
    types |= set(argv[2:])
    data = {t: handler_actions(t) for t in sorted(types)}
    ACTIONS_FILE.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{ACTIONS_FILE.name}: {len(data)} resource types")


if __name__ == "__main__":
    main(sys.argv[1:])
