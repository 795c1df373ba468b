"""The kit's bootstrap template (stacks/bootstrap_template.py): CDK's own template, as the
installed CLI prints it, whose deploy role may change only the environment's own stacks, so
that two environments in one account cannot deploy each other's stacks (issue 18)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.bootstrap_template import (
    CDK,
    TemplateShapeError,
    cdk_template,
    deploy_role,
    deploy_statements,
    scoped_template,
    unscoped_cloudformation,
)
from tests.infra.cfn_lint import cfn_lint

ACCOUNT, REGION = "123456789012", "ap-northeast-1"
STACKS = {env: [f"QueueWorker-{env}-Queue", f"QueueWorker-{env}-Worker"] for env in ("dev", "prod")}
# What `cdk deploy` and `cdk destroy` do to a stack: every one must be held to the environment.
STACK_WRITES = {
    "cloudformation:CreateChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:DeleteStack",
    "cloudformation:UpdateTerminationProtection",
}


@pytest.fixture(scope="module")
def original() -> dict[str, Any]:
    return cdk_template()


@pytest.fixture(scope="module")
def scoped(original: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {env: scoped_template(original, names, env) for env, names in STACKS.items()}


def resolve(value: Any) -> str:
    """An ARN of the template, with the bootstrap's partition, account and region."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    for name, real in [("Partition", "aws"), ("AccountId", ACCOUNT), ("Region", REGION)]:
        text = text.replace(f"${{AWS::{name}}}", real)
    return str(text)


def matches(pattern: str, arn: str) -> bool:
    """IAM's wildcard match of a Resource: ``*`` any run of characters, ``?`` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def allowed(template: dict[str, Any], action: str) -> list[str]:
    """Every resource pattern the deploy role's own policies allow ``action`` on."""
    found = []
    for statement in deploy_statements(template):
        actions = statement["Action"]
        if statement["Effect"] != "Allow" or action not in (
            [actions] if isinstance(actions, str) else actions
        ):
            continue
        resources = statement["Resource"]
        found += [resolve(r) for r in (resources if isinstance(resources, list) else [resources])]
    return found


STACK_ID = "0b4f6a70-0000-11f0-8000-0a1b2c3d4e5f"


def stack(name: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{STACK_ID}"


def test_cdks_deploy_role_reaches_every_stack(original: dict[str, Any]) -> None:
    """What the kit's template changes: CDK's deploy role may write every stack."""
    assert set(unscoped_cloudformation(original)) >= STACK_WRITES
    assert allowed(original, "cloudformation:DeleteStack") == ["*"]


@pytest.mark.parametrize("env", STACKS)
def test_every_cloudformation_action_of_the_deploy_role_is_held_to_the_environments_stacks(
    original: dict[str, Any], scoped: dict[str, dict[str, Any]], env: str
) -> None:
    template = scoped[env]
    assert unscoped_cloudformation(template) == []
    own = [f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/*" for name in STACKS[env]]
    for action in unscoped_cloudformation(original):
        assert allowed(template, action) == own, action
    # Nothing lost: the same actions as CDK's, the rest on what CDK gives them.
    for statement in deploy_statements(original):
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert allowed(template, action), action
            if not action.startswith("cloudformation:"):
                assert allowed(template, action) == allowed(original, action), action


@pytest.mark.parametrize("env", STACKS)
def test_the_deploy_role_reaches_its_own_stacks_and_no_other(
    scoped: dict[str, dict[str, Any]], env: str
) -> None:
    other = "prod" if env == "dev" else "dev"
    for action in STACK_WRITES:
        patterns = allowed(scoped[env], action)

        def reaches(name: str, patterns: list[str] = patterns) -> bool:
            return any(matches(p, stack(name)) for p in patterns)

        assert all(reaches(name) for name in STACKS[env]), action
        for name in [
            *STACKS[other],
            f"QueueWorker-{env}-Deploy",  # the roles' stack: deployed by an administrator
            f"CDKToolkit-qw{env}",
            f"CDKToolkit-qw{other}",
            f"QueueWorker-{env}-eu-Queue",  # an environment whose name starts with this one's
            "some-other-application",
        ]:
            assert not reaches(name), (action, name)


@pytest.mark.parametrize("env", STACKS)
def test_only_the_deploy_roles_statements_and_the_variant_change(
    original: dict[str, Any], scoped: dict[str, dict[str, Any]], env: str
) -> None:
    template = scoped[env]
    assert template.keys() == original.keys()
    assert template["Outputs"] == original["Outputs"]
    assert template["Conditions"] == original["Conditions"]
    assert template["Resources"].keys() == original["Resources"].keys()
    role = deploy_role(template)
    for name, resource in template["Resources"].items():
        if resource is not role:
            assert resource == original["Resources"][name], name
    assert {k: v for k, v in role["Properties"].items() if k != "Policies"} == {
        k: v for k, v in deploy_role(original)["Properties"].items() if k != "Policies"
    }
    parameters = {k: v for k, v in template["Parameters"].items() if k != "BootstrapVariant"}
    assert parameters == {
        k: v for k, v in original["Parameters"].items() if k != "BootstrapVariant"
    }
    variant = template["Parameters"]["BootstrapVariant"]["Default"]
    assert variant != original["Parameters"]["BootstrapVariant"]["Default"]
    assert "queue-worker-kit" in variant and env in variant


def test_a_template_of_another_shape_is_refused(scoped: dict[str, dict[str, Any]]) -> None:
    """A CLI whose template the kit would not change stops the bootstrap, never passes it on."""
    with pytest.raises(TemplateShapeError, match="no CloudFormation action on"):
        scoped_template(scoped["dev"], STACKS["dev"], "dev")
    with pytest.raises(TemplateShapeError, match="expected one role"):
        scoped_template({"Resources": {}}, STACKS["dev"], "dev")


def test_cfn_lint_finds_nothing_cdks_own_template_lacks(
    original: dict[str, Any], scoped: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    def findings(template: dict[str, Any], name: str) -> set[str]:
        path = tmp_path / name
        path.write_text(json.dumps(template, indent=1))
        result = cfn_lint(path)
        assert not result.returncode & 2, result.stdout  # exit bit 2: an error
        return set(re.findall(r"^([EWI]\d{4}) ", result.stdout, flags=re.MULTILINE))

    assert findings(scoped["prod"], "prod.json") <= findings(original, "cdk.json")


def test_the_cli_takes_the_template(scoped: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """`cdk bootstrap --template FILE` reads the file (shown, offline, with --show-template)."""
    path = tmp_path / "bootstrap-prod.template.json"
    path.write_text(json.dumps(scoped["prod"], indent=1))
    shown = subprocess.run(
        [str(CDK), "bootstrap", "--no-ci", "--template", str(path), "--show-template", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(shown.stdout) == scoped["prod"]
