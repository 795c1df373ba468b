"""The GitHub Actions deploy roles and the CloudFormation execution policy of one environment,
in a stack of their own.

Its own stack because its life differs from the kit's: it must exist before CI can deploy
anything, so it is deployed once by hand (`make deploy-role ENV=...`, with administrator
credentials), and the pipeline never deploys the stack that grants the pipeline its access.
It is bootstrapless (no bootstrap role, no asset): CloudFormation deploys it with the
administrator's own credentials, before the bootstrap that names its execution policies, and
the bootstrap's execution role has no right on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import AspectPriority, Aspects, CfnOutput, IAspect, LegacyStackSynthesizer, Stack
from constructs import Construct, IConstruct

from stacks.config import CiConfig
from stacks.constructs.deploy_role import GitHubDeployRoles
from stacks.execution_policy import ExecutionPolicy


class DeployRoleStack(Stack):
    """Attributes: ``roles`` (a GitHubDeployRoles), ``execution`` (the ExecutionPolicy of
    ``kit_stacks``). Outputs both role ARNs and the execution policies' ARNs."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        ci: CiConfig,
        environment_name: str,
        qualifier: str,
        kit_stacks: Sequence[Stack],
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id_,
            synthesizer=LegacyStackSynthesizer(),
            termination_protection=True,
            **kwargs,
        )
        self.roles = GitHubDeployRoles(
            self, "GitHub", ci=ci, environment_name=environment_name, qualifier=qualifier
        )
        # After every other aspect (the ECS cluster adds its capacity provider associations in
        # one): the policy covers the resource types the kit's templates end up with.
        self.execution: ExecutionPolicy | None = None
        Aspects.of(self).add(
            _AddExecutionPolicy(environment_name, qualifier, kit_stacks),
            priority=AspectPriority.READONLY,
        )
        CfnOutput(
            self,
            "DeployRoleArn",
            value=self.roles.deploy_role.role_arn,
            description="GitHub environment variable AWS_DEPLOY_ROLE_ARN (docs/ci-cd.md)",
        )
        CfnOutput(
            self,
            "DiffRoleArn",
            value=self.roles.diff_role.role_arn,
            description=f"Repository variable AWS_DIFF_ROLE_ARN_{environment_name.upper()}",
        )


def execution_policy_name(environment_name: str) -> str:
    """The execution policies' name, numbered ``-1``, ``-2``, ... (docs/ci-cd.md)."""
    return f"QueueWorker-{environment_name}-CloudFormationExecution"


@jsii.implements(IAspect)
class _AddExecutionPolicy:
    """Adds the ExecutionPolicy of ``kit_stacks`` and its output to the deploy-role stack."""

    def __init__(self, environment_name: str, qualifier: str, kit_stacks: Sequence[Stack]) -> None:
        self.environment_name, self.qualifier, self.kit_stacks = (
            environment_name,
            qualifier,
            kit_stacks,
        )

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, DeployRoleStack) or node.execution is not None:
            return
        node.execution = ExecutionPolicy(
            node,
            "CloudFormationExecution",
            name=execution_policy_name(self.environment_name),
            stacks=self.kit_stacks,
            qualifier=self.qualifier,
        )
        CfnOutput(
            node,
            "ExecutionPolicyArns",
            value=",".join(p.managed_policy_arn for p in node.execution.policies),
            description="cdk bootstrap --cloudformation-execution-policies (make bootstrap)",
        )
