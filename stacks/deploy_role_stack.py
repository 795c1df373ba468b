"""The GitHub Actions deploy roles of one environment, in a stack of their own.

Its own stack because its life differs from the kit's: it must exist before CI can deploy
anything, so it is deployed once by hand (`make deploy-role ENV=...`, with administrator
credentials), and the pipeline never deploys the stack that grants the pipeline its access.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from stacks.config import CiConfig
from stacks.constructs.deploy_role import GitHubDeployRoles


class DeployRoleStack(Stack):
    """Attributes: ``roles`` (a GitHubDeployRoles). Outputs both role ARNs."""

    def __init__(
        self, scope: Construct, id_: str, *, ci: CiConfig, environment_name: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.roles = GitHubDeployRoles(self, "GitHub", ci=ci, environment_name=environment_name)
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
