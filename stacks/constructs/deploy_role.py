"""The roles GitHub Actions assume through OIDC: one to deploy, one to diff (read-only)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.config import CiConfig

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
# The CDK bootstrap roles a CLI run assumes (of the environment's qualifier): deploy starts
# the CloudFormation deployment (which runs as the cfn-exec role, never assumed by CI), the
# publishing roles upload assets, lookup reads deployed templates for `cdk diff`.
DEPLOY_BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")
DIFF_BOOTSTRAP_ROLES = ("lookup",)


class GitHubDeployRoles(Construct):
    """Short-lived credentials for one environment's GitHub Actions workflows.

    ``deploy_role`` may be assumed only by jobs of ``ci.github_repository`` that run in the
    GitHub environment ``environment_name`` (its deployment branch rule decides the branch, its
    reviewers the approval); ``diff_role`` by its pull-request jobs. ``ci.subject`` chooses the
    token's subject form: ``repo:OWNER/NAME:...`` or the immutable
    ``repository_owner_id:ID:repository_id:ID:...``. Neither role may do anything but assume
    the CDK bootstrap roles of ``qualifier`` in this account and region (deploy: deploy,
    publishing and lookup roles; diff: the read-only lookup role). Sessions last at most one
    hour. The GitHub OIDC provider is ``ci.oidc_provider_arn``, else created here (one per
    account).

    Attributes: ``provider_arn``, ``deploy_role``, ``diff_role``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        ci: CiConfig,
        environment_name: str,
        qualifier: str,
    ) -> None:
        super().__init__(scope, id_)
        self.qualifier = qualifier
        self.provider_arn = ci.oidc_provider_arn or (
            iam.OidcProviderNative(
                self,
                "GitHubOidcProvider",
                url=f"https://{GITHUB_OIDC_HOST}",
                client_ids=[GITHUB_OIDC_AUDIENCE],
            ).oidc_provider_arn
        )
        self.deploy_role = self._role(
            "DeployRole",
            f"GitHub Actions deploys {environment_name} from {ci.github_repository}",
            subject=ci.subject_of(f"environment:{environment_name}"),
            bootstrap_roles=DEPLOY_BOOTSTRAP_ROLES,
        )
        self.diff_role = self._role(
            "DiffRole",
            f"GitHub Actions diffs {environment_name} on pull requests of {ci.github_repository}",
            subject=ci.subject_of("pull_request"),
            bootstrap_roles=DIFF_BOOTSTRAP_ROLES,
        )

    def _role(
        self, id_: str, description: str, *, subject: str, bootstrap_roles: Sequence[str]
    ) -> iam.Role:
        role = iam.Role(
            self,
            id_,
            description=description,
            max_session_duration=Duration.hours(1),
            assumed_by=iam.WebIdentityPrincipal(
                self.provider_arn,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subject,
                    }
                },
            ),
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[
                    bootstrap_role_arn(Stack.of(self), kind, self.qualifier)
                    for kind in bootstrap_roles
                ],
            )
        )
        return role


def bootstrap_role_arn(stack: Stack, kind: str, qualifier: str) -> str:
    """The ARN of the CDK bootstrap role ``kind`` (e.g. ``deploy``) of ``qualifier`` in
    ``stack``'s environment."""
    return stack.format_arn(
        service="iam",
        region="",
        resource="role",
        resource_name=f"cdk-{qualifier}-{kind}-role-{stack.account}-{stack.region}",
    )
