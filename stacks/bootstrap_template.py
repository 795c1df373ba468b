"""The kit's CDK bootstrap template: CDK's own, with the deploy role held to one environment.

CDK's bootstrap deploy role (``cdk-QUALIFIER-deploy-role-ACCOUNT-REGION``) may create, change
and delete every stack of the account (``cloudformation:CreateChangeSet``, ``ExecuteChangeSet``,
``DeleteStack``, ... on ``Resource: *``), and CloudFormation acts on a stack with that stack's
own execution role whoever asks. With two environments in one account, one environment's
pipeline could so change or delete the other's stacks. The kit therefore bootstraps each
environment with CDK's template as the installed CLI prints it (``cdk bootstrap --show-template
--json``: never a copy kept in the repository), in which every CloudFormation action the deploy
role's own policy allows on ``*`` is allowed on the environment's stacks only
(``stack/QueueWorker-ENV-Queue/*``, ``stack/QueueWorker-ENV-Worker/*``, in the bootstrap's
account and region). The rest of the template is CDK's, unchanged: the other roles, the staging
bucket, the registry, the version parameter, the outputs; and the deploy role's other
statements (staging bucket, version parameter, ``iam:PassRole`` of its own execution role, the
managed policy ``AWSCloudFormationReadOnlyAccess``).

Every CloudFormation action of those statements accepts a stack ARN (the Service Authorization
Reference lists ``stack*`` for CreateChangeSet, DeleteChangeSet, ExecuteChangeSet, CreateStack,
UpdateStack, RollbackStack, ContinueUpdateRollback, DeleteStack and
UpdateTerminationProtection). The refactor actions (``CreateStackRefactor``,
``ExecuteStackRefactor``: only ``cdk refactor`` uses them, never ``cdk deploy``) are held to the
same stacks: should they accept no stack ARN, the statement grants nothing, which fails closed.
A statement's other actions (``sts:GetCallerIdentity``) keep
``*`` in a statement of their own. The template's ``BootstrapVariant`` names the kit, so that a
plain ``cdk bootstrap`` (CDK's template) does not silently replace this one (the CLI refuses to
overwrite a bootstrap stack of another variant without ``--force``).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
CDK = PROJECT_DIR / "node_modules" / ".bin" / "cdk"
VARIANT = "queue-worker-kit: deploy role limited to the environment's stacks"
DEPLOY_ROLE_NAME = "cdk-${Qualifier}-deploy-role-${AWS::AccountId}-${AWS::Region}"

Json = dict[str, Any]


class TemplateShapeError(RuntimeError):
    """CDK's bootstrap template no longer has the shape the kit transforms: review it."""


def cdk_template(cdk: Path = CDK) -> Json:
    """CDK's bootstrap template as the installed CLI prints it (offline).

    ``--no-ci``: with ``CI`` set (as on CI runners) the CLI prints its notices to stdout too.
    """
    result = subprocess.run(
        [str(cdk), "bootstrap", "--no-ci", "--show-template", "--json"],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
    )
    return dict(json.loads(result.stdout))


def stack_arn(stack_name: str) -> Json:
    """The ARN pattern of ``stack_name`` (any stack id) in the bootstrap's account and region."""
    return {
        "Fn::Sub": (
            "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
            f":stack/{stack_name}/*"
        )
    }


def deploy_role(template: Json) -> Json:
    """The deploy role resource of a bootstrap ``template``."""
    found: list[Json] = [
        resource
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::IAM::Role"
        and resource.get("Properties", {}).get("RoleName") == {"Fn::Sub": DEPLOY_ROLE_NAME}
    ]
    if len(found) != 1:
        raise TemplateShapeError(f"expected one role named {DEPLOY_ROLE_NAME}, found {len(found)}")
    return found[0]


def _actions(statement: Json) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def deploy_statements(template: Json) -> list[Json]:
    """Every statement of the deploy role's own (inline) policies."""
    policies = deploy_role(template)["Properties"].get("Policies", [])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def unscoped_cloudformation(template: Json) -> list[str]:
    """The CloudFormation actions the deploy role's own policies allow on ``*``."""
    return sorted(
        action
        for statement in deploy_statements(template)
        if statement.get("Effect") == "Allow" and statement.get("Resource") in ("*", ["*"])
        for action in _actions(statement)
        if action.lower().startswith("cloudformation:")
    )


def _scope(statement: Json, stacks: list[Json]) -> list[Json]:
    """``statement`` with its CloudFormation actions on ``stacks`` instead of ``*``, and its
    other actions, if any, on ``*`` in a statement of their own."""
    if statement.get("Effect") != "Allow" or statement.get("Resource") not in ("*", ["*"]):
        return [statement]
    actions = _actions(statement)
    cloudformation = [a for a in actions if a.lower().startswith("cloudformation:")]
    if not cloudformation:
        return [statement]
    scoped = {**statement, "Action": cloudformation, "Resource": stacks}
    others = [a for a in actions if a not in cloudformation]
    if not others:
        return [scoped]
    sid = statement.get("Sid", "Deploy")
    return [scoped, {**statement, "Sid": f"{sid}Unscoped", "Action": others}]


def scoped_template(template: Json, stack_names: Sequence[str], environment: str) -> Json:
    """``template`` (CDK's bootstrap template) with the deploy role's CloudFormation actions
    limited to ``stack_names``; everything else as it was."""
    if not stack_names:
        raise ValueError("no stack names: the deploy role would reach no stack")
    if not unscoped_cloudformation(template):
        raise TemplateShapeError(
            "the deploy role allows no CloudFormation action on '*': CDK's template changed, "
            "review stacks/bootstrap_template.py"
        )
    result = copy.deepcopy(template)
    stacks = [stack_arn(name) for name in stack_names]
    for policy in deploy_role(result)["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        document["Statement"] = [s for st in document["Statement"] for s in _scope(st, stacks)]
    left = unscoped_cloudformation(result)
    if left:  # the transformation above leaves none; a guard against a change to it
        raise TemplateShapeError(f"CloudFormation actions still on '*': {left}")
    variant = result.get("Parameters", {}).get("BootstrapVariant")
    if variant is None:
        raise TemplateShapeError("no BootstrapVariant parameter")
    variant["Default"] = f"{VARIANT} ({environment})"
    result["Description"] = (
        f"{template.get('Description', 'CDK bootstrap')}; the queue-worker kit's variant: the "
        f"deploy role may change only the stacks {', '.join(stack_names)} (docs/ci-cd.md)"
    )
    return result


def kit_stack_names(assembly: Path, exclude: Iterable[str] = ()) -> list[str]:
    """The CloudFormation stacks of a synthesized ``assembly``, less ``exclude``."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks = {
        artifact.get("properties", {}).get("stackName", name)
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    return sorted(stacks - set(exclude))


def write_template(
    assembly: Path, environment: str, stack_names: Sequence[str], *, cdk: Path = CDK
) -> Path:
    """Write the kit's bootstrap template of ``environment`` beside its ``assembly`` (outside
    it, so that a synth into the assembly leaves it alone: ``cdk.out/ENV.bootstrap.json``)
    and return its path."""
    path = assembly.with_name(f"{assembly.name}.bootstrap.json")
    template = scoped_template(cdk_template(cdk), stack_names, environment)
    path.write_text(json.dumps(template, indent=1) + "\n")
    return path


if __name__ == "__main__":  # python -m stacks.bootstrap_template: the scoped template, printed
    if len(sys.argv) < 3:
        sys.exit("usage: python -m stacks.bootstrap_template ENV STACK_NAME ...")
    print(json.dumps(scoped_template(cdk_template(), sys.argv[2:], sys.argv[1]), indent=1))
