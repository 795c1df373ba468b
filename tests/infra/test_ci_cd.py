"""The GitHub Actions roles (`ci` section): trust limited to the environment's subject of the
repository (pull requests for the read-only diff role), exactly as docs/ci-cd.md's table says,
allowed only to assume the CDK bootstrap roles of the environment's own qualifier; the
CloudFormation execution policy those bootstrap roles deploy with (the handler permissions of
the kit's resource types, nothing else); cdk-nag and cfn-lint clean."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.bootstrap_template import deploy_statements
from stacks.config import ConfigError, load_config
from stacks.constructs.deploy_role import DEPLOY_BOOTSTRAP_ROLES, DIFF_BOOTSTRAP_ROLES
from stacks.execution_policy import (
    EXCLUDED,
    actions_by_type,
    bootstrap_args,
    handler_actions,
)
from tests.infra.cfn_lint import cfn_lint
from tests.infra.conftest import ENVIRONMENTS, ROOT, VARIANTS, Synthesized, synthesize

REPOSITORY = "octo-org/queue-app"
QUALIFIER = "qwprod"
IDS = {"subject": "ids", "owner_id": 1234, "repository_id": 567890}
PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
AUD = "token.actions.githubusercontent.com:aud"
SUB = "token.actions.githubusercontent.com:sub"
CI_CD_DOC = (ROOT / "docs" / "ci-cd.md").read_text()


def with_deploy_roles(env: str = "prod", **ci: Any) -> Synthesized:
    """``env`` with a ``ci`` section and a qualifier of its own (the shipped environments share
    one account and region)."""
    return synthesize(
        env, ci={"github_repository": REPOSITORY, **ci}, bootstrap={"qualifier": f"qw{env}"}
    )


@pytest.fixture(scope="module")
def ci() -> Synthesized:
    return with_deploy_roles()


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
        f"arn:aws:iam::<AWS::AccountId>:role/cdk-{QUALIFIER}-{kind}-role-<AWS::AccountId>-{region}"
        for kind in kinds
    ]


def test_without_a_ci_section_there_is_no_deploy_role_stack(prod: Synthesized) -> None:
    assert prod.config.ci is None
    assert not (prod.outdir / "QueueWorker-prod-Deploy.template.json").exists()


def test_deploy_role_trusts_only_its_environments_subject(ci: Synthesized) -> None:
    assert trust(ci, "DeployRole")["Condition"]["StringEquals"][SUB] == (
        f"repo:{REPOSITORY}:environment:prod"
    )


def test_the_immutable_subject_names_the_owner_and_repository_by_id() -> None:
    s = with_deploy_roles(**IDS)
    assert trust(s, "DeployRole")["Condition"]["StringEquals"][SUB] == (
        "repository_owner_id:1234:repository_id:567890:environment:prod"
    )
    assert trust(s, "DiffRole")["Condition"]["StringEquals"][SUB] == (
        "repository_owner_id:1234:repository_id:567890:pull_request"
    )


def documented_subjects() -> dict[tuple[str, str], str]:
    """docs/ci-cd.md's trust table: (role, subject form) -> the subject, with OWNER, NAME,
    OWNER_ID, REPOSITORY_ID and ENV as placeholders."""
    section = CI_CD_DOC.split("### Who each role trusts", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2].startswith("`"):
            rows[(cells[0], cells[1].strip("`"))] = cells[2].strip("`")
    return rows


@pytest.mark.parametrize("form", [{}, IDS], ids=["repo", "ids"])
def test_every_trust_is_the_one_docs_ci_cd_explains(form: dict[str, Any]) -> None:
    s = with_deploy_roles(**form)
    documented = documented_subjects()
    resources = deploy_json(s)["Resources"]
    roles = {k: r for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert len(roles) == 2  # a new role needs its row
    for role_prefix, name in (("DeployRole", "deploy role"), ("DiffRole", "diff role")):
        (statement,) = role(s, role_prefix)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert set(statement) == {"Action", "Condition", "Effect", "Principal"}
        assert statement["Effect"] == "Allow"
        assert statement["Condition"] == {
            "StringEquals": {
                AUD: "sts.amazonaws.com",
                SUB: statement["Condition"]["StringEquals"][SUB],
            }
        }
        expected = (
            documented[(name, form.get("subject", "repo"))]
            .replace("OWNER_ID", "1234")
            .replace("REPOSITORY_ID", "567890")
            .replace("OWNER/NAME", REPOSITORY)
            .replace("ENV", "prod")
        )
        assert statement["Condition"]["StringEquals"][SUB] == expected, name


def test_roles_trust_only_tokens_minted_for_sts(ci: Synthesized) -> None:
    for id_prefix in ("DeployRole", "DiffRole"):
        statement = trust(ci, id_prefix)
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"]["StringEquals"][AUD] == "sts.amazonaws.com"
        assert set(statement["Condition"]) == {"StringEquals"}


def test_diff_role_trusts_only_pull_requests_of_the_repository(ci: Synthesized) -> None:
    assert trust(ci, "DiffRole")["Condition"]["StringEquals"][SUB] == (
        f"repo:{REPOSITORY}:pull_request"
    )


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
    s = with_deploy_roles(oidc_provider_arn=PROVIDER)
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


def test_cdk_nag_finds_nothing_in_the_deploy_role_stack_but_the_execution_wildcards(
    ci: Synthesized,
) -> None:
    """The roles have no finding; the execution policies' wildcards are acknowledged (each
    explained in docs/security.md's table, tests/infra/test_iam_wildcards.py)."""
    (nag,) = [r for r in ci.validation_report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == []
    deploy_findings = {
        (s["ruleName"], c["constructPath"].rsplit("/", 2)[0])
        for s in nag["suppressedViolations"]
        for c in s["violatingConstructs"]
        if c["constructPath"].startswith("QueueWorker-prod-Deploy/")
    }
    assert {rule.split("[")[0] for rule, _ in deploy_findings} == {"AwsSolutions-IAM5"}
    assert {path for _, path in deploy_findings} == {
        "QueueWorker-prod-Deploy/CloudFormationExecution"
    }


def test_cfn_lint_finds_nothing_in_the_deploy_role_stack(ci: Synthesized) -> None:
    result = cfn_lint(ci.outdir / "QueueWorker-prod-Deploy.template.json")
    assert result.returncode == 0, result.stdout + result.stderr


def with_ci(**ci: Any) -> dict[str, Any]:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"]["ci"] = ci
    environments["prod"]["bootstrap"] = {"qualifier": QUALIFIER}
    return environments


@pytest.mark.parametrize(
    ("ci", "key", "value"),
    [
        ({}, "github_repository", "required"),
        ({"github_repository": "queue-app"}, "github_repository", "'queue-app'"),
        ({"github_repository": REPOSITORY, "branch": "release/*"}, "branch", "'release/*'"),
        ({"github_repository": REPOSITORY, "branch": "main"}, "branch", "no longer read"),
        ({"github_repository": REPOSITORY, "subject": "id"}, "subject", "['repo', 'ids']"),
        (
            {"github_repository": REPOSITORY, "subject": "ids", "owner_id": 1},
            "repository_id",
            "required with subject 'ids'",
        ),
        ({"github_repository": REPOSITORY, "owner_id": 1}, "owner_id", "only read with"),
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


# The bootstrap of each environment: its own qualifier.


def test_the_environments_stacks_use_its_bootstrap_qualifier(ci: Synthesized) -> None:
    for template in (ci.queue_json, ci.worker_json):
        assert template["Parameters"]["BootstrapVersion"]["Default"] == (
            f"/cdk-bootstrap/{QUALIFIER}/version"
        )
    assert f"cdk-{QUALIFIER}-container-assets" in json.dumps(ci.worker_json)
    assert "hnb659fds" not in json.dumps([ci.queue_json, ci.worker_json, deploy_json(ci)])


def test_the_deploy_role_stack_needs_no_bootstrap_and_is_protected(ci: Synthesized) -> None:
    """Deployed with the administrator's credentials before the bootstrap that names its
    policies; the bootstrap's roles have no right on it."""
    assert "BootstrapVersion" not in deploy_json(ci).get("Parameters", {})
    manifest = json.loads((ci.outdir / "manifest.json").read_text())
    properties = manifest["artifacts"]["QueueWorker-prod-Deploy"]["properties"]
    assert "assumeRoleArn" not in properties
    assert properties["terminationProtection"] is True


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"prod": {"ci": {"github_repository": REPOSITORY}}},
            "environments.prod.bootstrap.qualifier: 'hnb659fds' is also the qualifier of 'dev'",
        ),
        (
            {
                "prod": {"ci": {"github_repository": REPOSITORY}, "bootstrap": {"qualifier": "a"}},
                "stg": {"bootstrap": {"qualifier": "a"}},
            },
            "environments.prod.bootstrap.qualifier: 'a' is also the qualifier of 'stg'",
        ),
        (
            {"prod": {"bootstrap": {"qualifier": "QW-prod"}}},
            "environments.prod.bootstrap.qualifier: 'QW-prod' is not 1 to 10 lowercase",
        ),
        (
            {"prod": {"bootstrap": {"qualifier": "qwprodabcde"}}},
            "environments.prod.bootstrap.qualifier: 'qwprodabcde' is not 1 to 10 lowercase",
        ),
    ],
)
def test_environments_that_could_deploy_each_other_are_a_config_error(
    changes: dict[str, dict[str, Any]], problem: str
) -> None:
    environments = copy.deepcopy(ENVIRONMENTS)
    for env, sections in changes.items():
        environments[env].update(sections)
    with pytest.raises(ConfigError) as error:
        load_config(environments, "prod")
    assert problem in str(error.value)


def test_a_shared_qualifier_is_fine_in_separate_accounts_or_regions() -> None:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"]["ci"] = {"github_repository": REPOSITORY}
    environments["prod"]["account"] = "111111111111"
    for env in ("dev", "stg"):
        environments[env]["account"] = "222222222222"
    assert load_config(environments, "prod").bootstrap.qualifier == "hnb659fds"
    del environments["dev"]["account"]
    environments["dev"]["region"] = "us-east-1"
    assert load_config(environments, "prod").ci is not None


# The CloudFormation execution policy.


def kit_templates(s: Synthesized) -> list[dict[str, Any]]:
    return [s.queue_json, s.worker_json]


def types_of(templates: list[dict[str, Any]]) -> set[str]:
    return {r["Type"] for t in templates for r in t["Resources"].values()}


def execution_statements(s: Synthesized) -> list[dict[str, Any]]:
    return [
        statement
        for r in deploy_json(s)["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


EVERY_RESOURCE = {
    **VARIANTS,
    "prod-ecs-exec": ("prod", {"worker": {"ecs_exec": True}}),
    "prod-alarm-email": ("prod", {"alarms": {"email": "ops@example.com"}}),
}


def test_every_resource_type_the_kit_creates_has_its_actions() -> None:
    """A template that gains a resource type fails here until the policy covers it."""
    seen = set()
    for env, changes in EVERY_RESOURCE.values():
        seen |= types_of(kit_templates(synthesize(env, **changes)))
    missing = seen - set(actions_by_type())
    assert missing == set(), (
        f"run python -m stacks.execution_policy --write --add {' '.join(sorted(missing))}"
    )
    assert set(actions_by_type()) - seen - {"AWS::IAM::OIDCProvider"} == set(), "a stale type"


def test_the_actions_are_the_cloudformation_handlers_permissions() -> None:
    """execution_actions.json is what the registry schemas cfn-lint ships say, less EXCLUDED
    (a cfn-lint update that changes a handler fails here: rerun --write)."""
    for resource_type, actions in actions_by_type().items():
        assert actions == handler_actions(resource_type), resource_type
    assert all(re.fullmatch(r"[a-z0-9-]+:[\w.*]+", a) for a in EXCLUDED)
    assert all(len(reason) > 5 for reason in EXCLUDED.values())


@pytest.mark.parametrize("name", ["prod", "prod-endpoints"])
def test_the_execution_policy_allows_only_what_the_environments_stacks_create(
    name: str,
) -> None:
    env, changes = VARIANTS[name]
    s = synthesize(
        env, **changes, ci={"github_repository": REPOSITORY}, bootstrap={"qualifier": "qwprod"}
    )
    needed = {a for t in types_of(kit_templates(s)) for a in actions_by_type()[t]}
    statements = execution_statements(s)
    granted = {a for st in statements for a in listed(st["Action"])}
    assert granted == needed | {"ssm:GetParameters"}
    assert not granted & set(EXCLUDED)
    assert all(st["Effect"] == "Allow" for st in statements)
    if name == "prod":
        assert not any(a.startswith("dynamodb:") for a in granted)  # no table, no DynamoDB


def test_the_execution_policy_reaches_no_role_but_the_kit_stacks(ci: Synthesized) -> None:
    by_sid = {st["Sid"]: st for st in execution_statements(ci)}
    iam_statements = [
        st for st in by_sid.values() if any(a.startswith("iam:") for a in listed(st["Action"]))
    ]
    for statement in iam_statements:
        resources = [render(r) for r in listed(statement["Resource"])]
        if statement["Sid"] == "IamKitRoles":
            assert resources == [
                "arn:aws:iam::<AWS::AccountId>:role/QueueWorker-prod-Queue-*",
                "arn:aws:iam::<AWS::AccountId>:role/QueueWorker-prod-Worker-*",
            ]
        elif statement["Sid"] == "IamServiceLinkedRoles":
            assert listed(statement["Action"]) == ["iam:CreateServiceLinkedRole"]
            assert resources == ["arn:aws:iam::<AWS::AccountId>:role/aws-service-role/*"]
        else:
            assert (statement["Sid"], statement["Action"], resources) == (
                "IamList",
                "iam:ListRoles",
                ["*"],
            )
    assert "QueueWorker-prod-Deploy" not in json.dumps(execution_statements(ci))
    assert not {"iam:AttachRolePolicy", "iam:CreatePolicyVersion", "iam:CreatePolicy"} & {
        a for st in iam_statements for a in listed(st["Action"])
    }
    # Every other statement acts only in the environment's region.
    for statement in by_sid.values():
        if statement not in iam_statements and statement["Sid"] != "BootstrapVersion":
            assert statement["Condition"] == {
                "StringEquals": {"aws:RequestedRegion": "ap-northeast-1"}
            }
    assert render(by_sid["BootstrapVersion"]["Resource"]) == (
        "arn:aws:ssm:ap-northeast-1:<AWS::AccountId>:parameter/cdk-bootstrap/qwprod/version"
    )


def test_each_execution_policy_fits_iams_size_limit(ci: Synthesized) -> None:
    """6,144 characters a managed policy, white space aside, once the ARNs are resolved."""
    policies = [
        r["Properties"]
        for r in deploy_json(ci)["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    assert [p["ManagedPolicyName"] for p in policies] == [
        f"QueueWorker-prod-CloudFormationExecution-{n}" for n in range(1, len(policies) + 1)
    ]
    for policy in policies:
        text = json.dumps(policy["PolicyDocument"], separators=(",", ":"))
        text = re.sub(
            r'\{"Fn::Join":\["",\[(.*?)\]\]\}', lambda m: '"' + m[1].replace('"', "") + '"', text
        )
        assert len(text.replace("{Ref:AWS::AccountId}", "123456789012")) < 6144


def test_the_bootstrap_command_names_the_qualifier_and_the_execution_policies(
    ci: Synthesized, tmp_path: Path
) -> None:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"] |= {
        "ci": {"github_repository": REPOSITORY},
        "bootstrap": {"qualifier": QUALIFIER},
    }
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {"environments": environments}}))
    args = bootstrap_args(ci.outdir, "prod", "123456789012", project=tmp_path)
    count = sum(
        r["Type"] == "AWS::IAM::ManagedPolicy" for r in deploy_json(ci)["Resources"].values()
    )
    assert count >= 1
    assert args == [
        "aws://123456789012/ap-northeast-1",
        "--qualifier=qwprod",
        "--toolkit-stack-name=CDKToolkit-qwprod",
        "--cloudformation-execution-policies="
        + ",".join(
            f"arn:aws:iam::123456789012:policy/QueueWorker-prod-CloudFormationExecution-{n}"
            for n in range(1, count + 1)
        ),
        f"--template={ci.outdir}.bootstrap.json",
    ]
    # The kit's bootstrap template: its deploy role may change prod's queue and worker stacks
    # only (tests/infra/test_bootstrap_template.py tests the transformation).
    template = json.loads(Path(f"{ci.outdir}.bootstrap.json").read_text())
    (delete,) = [
        s for s in deploy_statements(template) if "cloudformation:DeleteStack" in s["Action"]
    ]
    assert [r["Fn::Sub"].rsplit(":", 1)[1] for r in delete["Resource"]] == [
        "stack/QueueWorker-prod-Queue/*",
        "stack/QueueWorker-prod-Worker/*",
    ]
