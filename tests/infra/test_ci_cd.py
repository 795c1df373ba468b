"""The GitHub Actions roles (`ci` section): trust limited to the repository and branch (or the
environment, or pull requests for the read-only diff role), allowed only to assume the CDK
bootstrap roles, cdk-nag and cfn-lint clean."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import ConfigError, load_config
from stacks.constructs.deploy_role import DEPLOY_BOOTSTRAP_ROLES, DIFF_BOOTSTRAP_ROLES
from tests.infra.cfn_lint import cfn_lint
from tests.infra.conftest import ENVIRONMENTS, Synthesized, synthesize

REPOSITORY = "octo-org/queue-app"
PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
AUD = "token.actions.githubusercontent.com:aud"
SUB = "token.actions.githubusercontent.com:sub"


@pytest.fixture(scope="module")
def ci() -> Synthesized:
    return synthesize("prod", ci={"github_repository": REPOSITORY})


def deploy_json(s: Synthesized) -> dict[str, Any]:
    name = f"{s.config.stack_prefix}-Deploy.template.json"
    return dict(json.loads((s.outdir / name).read_text()))


def role(s: Synthesized, id_prefix: str) -> dict[str, Any]:
    resources = deploy_json(s)["Resources"]
    (found,) = [
        r
        for key, r in resources.items()
        if key.startswith(f"GitHub{id_prefix}") and r["Type"] == "AWS::IAM::Role"
    ]
    return found


def trust(s: Synthesized, id_prefix: str) -> dict[str, Any]:
    (statement,) = role(s, id_prefix)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    return dict(statement)


def render(value: Any) -> str:
    """An ARN built with Fn::Join, with pseudo parameters as <AWS::...>."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    separator, parts = value["Fn::Join"]
    return str(separator).join(render(p) for p in parts)


def allowed(s: Synthesized, id_prefix: str) -> list[tuple[str, list[str]]]:
    """(action, rendered resources) of every statement of the policies attached to the role."""
    resources = deploy_json(s)["Resources"]
    (role_id,) = [
        k
        for k, r in resources.items()
        if k.startswith(f"GitHub{id_prefix}") and r["Type"] == "AWS::IAM::Role"
    ]
    result = []
    for r in resources.values():
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]:
            for statement in r["Properties"]["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                targets = statement["Resource"]
                targets = targets if isinstance(targets, list) else [targets]
                result.append((statement["Action"], [render(t) for t in targets]))
    return result


def bootstrap_arns(kinds: tuple[str, ...], region: str = "ap-northeast-1") -> list[str]:
    return [
        f"arn:aws:iam::<AWS::AccountId>:role/cdk-hnb659fds-{kind}-role-<AWS::AccountId>-{region}"
        for kind in kinds
    ]


def test_without_a_ci_section_there_is_no_deploy_role_stack(prod: Synthesized) -> None:
    assert prod.config.ci is None
    assert not (prod.outdir / "QueueWorker-prod-Deploy.template.json").exists()


def test_deploy_role_trusts_the_branch_and_the_environment_of_the_repository(
    ci: Synthesized,
) -> None:
    assert trust(ci, "DeployRole")["Condition"]["StringEquals"][SUB] == [
        f"repo:{REPOSITORY}:ref:refs/heads/main",
        f"repo:{REPOSITORY}:environment:prod",
    ]


def test_deploy_role_trusts_the_configured_branch() -> None:
    s = synthesize("prod", ci={"github_repository": REPOSITORY, "branch": "release"})
    assert (
        f"repo:{REPOSITORY}:ref:refs/heads/release"
        in trust(s, "DeployRole")["Condition"]["StringEquals"][SUB]
    )


def test_roles_trust_only_tokens_minted_for_sts(ci: Synthesized) -> None:
    for id_prefix in ("DeployRole", "DiffRole"):
        statement = trust(ci, id_prefix)
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"]["StringEquals"][AUD] == "sts.amazonaws.com"
        assert set(statement["Condition"]) == {"StringEquals"}


def test_diff_role_trusts_only_pull_requests_of_the_repository(ci: Synthesized) -> None:
    assert trust(ci, "DiffRole")["Condition"]["StringEquals"][SUB] == [
        f"repo:{REPOSITORY}:pull_request"
    ]


def test_deploy_role_may_only_assume_the_bootstrap_deploy_publishing_and_lookup_roles(
    ci: Synthesized,
) -> None:
    assert allowed(ci, "DeployRole") == [("sts:AssumeRole", bootstrap_arns(DEPLOY_BOOTSTRAP_ROLES))]
    assert DEPLOY_BOOTSTRAP_ROLES == ("deploy", "file-publishing", "image-publishing", "lookup")


def test_diff_role_may_only_assume_the_read_only_lookup_role(ci: Synthesized) -> None:
    assert allowed(ci, "DiffRole") == [("sts:AssumeRole", bootstrap_arns(DIFF_BOOTSTRAP_ROLES))]
    assert DIFF_BOOTSTRAP_ROLES == ("lookup",)


def test_roles_have_no_other_policies(ci: Synthesized) -> None:
    for id_prefix in ("DeployRole", "DiffRole"):
        properties = role(ci, id_prefix)["Properties"]
        assert "ManagedPolicyArns" not in properties
        assert "Policies" not in properties


def test_sessions_last_at_most_an_hour(ci: Synthesized) -> None:
    for id_prefix in ("DeployRole", "DiffRole"):
        assert role(ci, id_prefix)["Properties"]["MaxSessionDuration"] == 3600


def test_the_github_oidc_provider_is_created_when_none_is_given(ci: Synthesized) -> None:
    template = Template.from_json(deploy_json(ci))
    template.has_resource_properties(
        "AWS::IAM::OIDCProvider",
        {
            "Url": "https://token.actions.githubusercontent.com",
            "ClientIdList": ["sts.amazonaws.com"],
        },
    )
    (provider_id,) = template.find_resources("AWS::IAM::OIDCProvider")
    assert trust(ci, "DeployRole")["Principal"] == {"Federated": {"Ref": provider_id}}


def test_an_existing_oidc_provider_is_used_as_given() -> None:
    s = synthesize("prod", ci={"github_repository": REPOSITORY, "oidc_provider_arn": PROVIDER})
    Template.from_json(deploy_json(s)).resource_count_is("AWS::IAM::OIDCProvider", 0)
    for id_prefix in ("DeployRole", "DiffRole"):
        assert trust(s, id_prefix)["Principal"] == {"Federated": PROVIDER}


def test_both_role_arns_are_outputs(ci: Synthesized) -> None:
    template = Template.from_json(deploy_json(ci))
    for output, id_prefix in (
        ("DeployRoleArn", "GitHubDeployRole"),
        ("DiffRoleArn", "GitHubDiffRole"),
    ):
        template.has_output(
            output,
            {
                "Value": {
                    "Fn::GetAtt": [Match.string_like_regexp(f"^{id_prefix}[0-9A-F]{{8}}$"), "Arn"]
                }
            },
        )


def test_cdk_nag_finds_nothing_in_the_deploy_role_stack(ci: Synthesized) -> None:
    (nag,) = [r for r in ci.validation_report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == []
    deploy_findings = [
        s
        for s in nag["suppressedViolations"]
        for c in s["violatingConstructs"]
        if c["constructPath"].startswith("QueueWorker-prod-Deploy/")
    ]
    assert deploy_findings == []


def test_cfn_lint_finds_nothing_in_the_deploy_role_stack(ci: Synthesized) -> None:
    result = cfn_lint(ci.outdir / "QueueWorker-prod-Deploy.template.json")
    assert result.returncode == 0, result.stdout + result.stderr


def with_ci(**ci: Any) -> dict[str, Any]:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"]["ci"] = ci
    return environments


@pytest.mark.parametrize(
    ("ci", "key", "value"),
    [
        ({}, "github_repository", "required"),
        ({"github_repository": "queue-app"}, "github_repository", "'queue-app'"),
        ({"github_repository": REPOSITORY, "branch": "release/*"}, "branch", "'release/*'"),
        (
            {"github_repository": REPOSITORY, "oidc_provider_arn": "arn:aws:iam::1:role/x"},
            "oidc_provider_arn",
            "'arn:aws:iam::1:role/x'",
        ),
        ({"github_repository": REPOSITORY, "repo": "x"}, "repo", "unknown key"),
    ],
)
def test_bad_ci_settings_name_the_key_and_the_value(
    ci: dict[str, Any], key: str, value: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(with_ci(**ci), "prod")
    assert f"environments.prod.ci.{key}" in str(error.value)
    assert value in str(error.value)


def test_a_provider_of_another_account_is_a_config_error() -> None:
    environments = with_ci(github_repository=REPOSITORY, oidc_provider_arn=PROVIDER)
    environments["prod"]["account"] = "210987654321"
    with pytest.raises(ConfigError) as error:
        load_config(environments, "prod")
    assert "environments.prod.ci.oidc_provider_arn" in str(error.value)
    assert "'210987654321'" in str(error.value)


def test_the_immutable_subject_form_of_a_repository_is_accepted() -> None:
    config = load_config(with_ci(github_repository="octo-org@123456/queue-app@789012"), "prod")
    assert config.ci is not None
    assert config.ci.github_repository == "octo-org@123456/queue-app@789012"
    assert config.ci.branch == "main"
