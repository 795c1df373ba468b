"""Every role grants only what the runtime and the scripts call (docs/security.md, "What the
roles may call").

The boto3 calls are read from the source (``ast``): the services a tree makes clients of
(``boto3.client("sqs")``, ``target.client("ecs")``), then every attribute of those clients'
operation names (``.send_message``, ``self.client.update_item``) and every paginator
(``get_paginator("list_tasks")``), mapped to IAM actions through botocore's service models
(``send_message`` -> ``sqs:SendMessage``; SQS authorizes a batch by its single action).

* The task role, of every variant and of ECS Exec and consumer mode, against
  ``worker_image/worker``: no granted action that the runtime never calls unless a row of
  docs/security.md's table says who else calls it, and no call that is not granted.
* The operator's policy (the kit defines no operator role: docs/operations.md gives the policy
  to attach) against ``scripts/``: exactly the actions the commands call.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from tests.infra.conftest import ROOT, VARIANTS, Synthesized, synthesize, variant

RUNTIME = ROOT / "worker_image" / "worker"
SCRIPTS = ROOT / "scripts"
# What only ever talks to the embedded AWS (moto's server) on this machine: the development
# tooling (local-run, local-stack, bench, measure) and the simulator.
LOCAL_ONLY = ("devtools", "sim")
# SQS authorizes a batch call by the action of its single form.
BATCH_ACTIONS = {
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}
# The runtime's calls that only run with a setting: service -> (setting, is it on?).
ONLY_WITH = {"dynamodb": ("queue.idempotency_table", lambda s: s.config.queue.idempotency_table)}
SECURITY_DOC = (ROOT / "docs" / "security.md").read_text()
OPERATIONS_DOC = (ROOT / "docs" / "operations.md").read_text()
TABLE_TITLE = "### What the roles may call"
POLICY_TITLE = "### The operator's policy"
EXTRA = {
    "prod-ecs-exec": ("prod", {"worker": {"ecs_exec": True}}),
    "prod-consumer": (
        "prod",
        {"worker": {"handler_mode": "consumer", "handler": "php artisan queue:work sqs"}},
    ),
}
NAMES = sorted(VARIANTS) + sorted(EXTRA)


@cache
def operations(service: str) -> dict[str, str]:
    """boto3 method name -> API operation name of ``service``."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def sources(tree: Path) -> list[Path]:
    return sorted(
        path
        for path in tree.rglob("*.py")
        if not any(part in LOCAL_ONLY for part in path.relative_to(tree).parts)
    )


def called_actions(tree: Path) -> dict[str, set[str]]:
    """Service -> the IAM actions the Python files of ``tree`` call on its boto3 clients."""
    return called_actions_of(sources(tree))


def called_actions_of(paths: list[Path]) -> dict[str, set[str]]:
    """Service -> the IAM actions the Python files ``paths`` call on their boto3 clients."""
    modules = [ast.parse(path.read_text()) for path in paths]
    services = {
        node.args[0].value
        for module in modules
        for node in ast.walk(module)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    actions: dict[str, set[str]] = {service: set() for service in services}
    for module in modules:
        for node in ast.walk(module):
            names = []
            if isinstance(node, ast.Attribute):
                names.append(node.attr)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get_paginator", "get_waiter")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.append(node.args[0].value)
            for service in services:
                for name in names:
                    if name in operations(service):
                        action = f"{service}:{operations(service)[name]}"
                        actions[service].add(BATCH_ACTIONS.get(action, action))
    return actions


def synthesized(name: str) -> Synthesized:
    if name in EXTRA:
        env, changes = EXTRA[name]
        return synthesize(env, **changes)
    return variant(name)


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def task_role_actions(s: Synthesized) -> list[set[str]]:
    """What each worker's task role is allowed, one set per task definition."""
    return [
        role_actions(s, task_definition["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0])
        for task_definition in s.worker.find_resources("AWS::ECS::TaskDefinition").values()
    ]


def role_actions(s: Synthesized, role: str) -> set[str]:
    actions: set[str] = set()
    for resource in s.worker_json["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in properties["Roles"]:
            for statement in properties["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                actions.update(listed(statement["Action"]))
    return actions


def not_called_rows() -> dict[str, str]:
    """The table's rows: | actions (each in backticks) | who calls them | when | why |."""
    section = SECURITY_DOC.split(TABLE_TITLE, 1)[1].split("\n#", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("Actions", "---") or set(cells[0]) <= {"-"}:
            continue
        assert len(cells[3]) > 30, f"row {cells[0]} gives no reason"
        for action in re.findall(r"`([^`]+)`", cells[0]):
            rows[action] = cells[1]
    return rows


def test_the_runtime_calls_are_found() -> None:
    """The parser itself: the calls every loop makes (the pause tag's read too), and the
    idempotency guard's writes."""
    calls = called_actions(RUNTIME)
    loop = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    assert loop | {"sqs:ListQueueTags"} <= calls["sqs"]
    assert calls["dynamodb"] == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


@pytest.mark.parametrize("name", NAMES)
def test_the_task_role_grants_only_what_is_called(name: str) -> None:
    granted = set().union(*task_role_actions(synthesized(name)))
    called = set().union(*called_actions(RUNTIME).values())
    explained = not_called_rows()
    never_called = sorted(granted - called - set(explained))
    assert never_called == [], f"remove them, or explain them in {TABLE_TITLE!r}"


def test_the_fleets_watch_may_read_the_pause_tag_in_consumer_mode() -> None:
    """In consumer mode the fleet's watch reads the pause tag for the task (worker.watch with
    worker.pause's reader and worker.clients' client): what those modules call is granted to
    the consumer-mode task role, ListQueueTags among it."""
    watch = [RUNTIME / name for name in ("watch.py", "pause.py", "clients.py")]
    called = called_actions_of(watch)["sqs"]
    assert "sqs:ListQueueTags" in called
    for granted in task_role_actions(synthesized("prod-consumer")):
        assert sorted(called - granted) == []


@pytest.mark.parametrize("name", NAMES)
def test_the_task_role_grants_everything_the_runtime_calls(name: str) -> None:
    s = synthesized(name)
    needed = set()
    for service, actions in called_actions(RUNTIME).items():
        setting = ONLY_WITH.get(service)
        if setting is None or setting[1](s):
            needed |= actions
    for granted in task_role_actions(s):
        assert sorted(needed - granted) == []


def test_every_row_explains_an_action_some_task_role_grants() -> None:
    granted = set().union(*(set().union(*task_role_actions(synthesized(n))) for n in NAMES))
    called = set().union(*called_actions(RUNTIME).values())
    rows = not_called_rows()
    assert sorted(set(rows) - (granted - called)) == []


def operator_policy() -> dict[str, Any]:
    section = OPERATIONS_DOC.split(POLICY_TITLE, 1)[1]
    document = section.split("```json\n", 1)[1].split("\n```", 1)[0]
    return dict(json.loads(document))


def test_the_operator_policy_allows_exactly_what_the_scripts_call() -> None:
    allowed = {
        action
        for statement in operator_policy()["Statement"]
        for action in listed(statement["Action"])
    }
    called = set().union(*called_actions(SCRIPTS).values())
    assert sorted(allowed - called) == [], "allowed, never called"
    assert sorted(called - allowed) == [], "called, not allowed"


def test_the_execution_role_reads_secrets_with_what_ecs_calls_at_start() -> None:
    """ECS reads `worker.secrets` with ssm:GetParameters and secretsmanager:GetSecretValue;
    CDK's read grants (GetParameterHistory, DescribeParameters, DescribeSecret) are not used."""
    s = synthesize(
        "prod", worker={"secrets": {"DB": "ssm:/app/db", "API": "secretsmanager:app/api:token"}}
    )
    (task_definition,) = s.worker.find_resources("AWS::ECS::TaskDefinition").values()
    role = task_definition["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    actions = {
        action
        for resource in s.worker_json["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        for action in listed(statement["Action"])
        if action.startswith(("ssm:", "secretsmanager:"))
    }
    assert actions == {"ssm:GetParameters", "secretsmanager:GetSecretValue"}
