"""ECS Exec (`worker.ecs_exec`): off by default; on, exactly what a shell in a task needs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.config import ConfigError, load_config
from tests.infra.cfn_lint import cfn_lint
from tests.infra.conftest import ENVIRONMENTS, Synthesized, synthesize

SSM_CHANNEL_ACTIONS = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]


@pytest.fixture(scope="module")
def on() -> Synthesized:
    return synthesize("prod", worker={"ecs_exec": True})


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_off_by_default_the_service_does_not_allow_exec(prod: Synthesized) -> None:
    assert prod.config.worker.ecs_exec is False
    prod.worker.has_resource_properties(
        "AWS::ECS::Service", {"EnableExecuteCommand": Match.absent()}
    )


def test_off_by_default_no_role_may_open_ssm_channels(prod: Synthesized) -> None:
    assert "ssmmessages" not in json.dumps(statements(prod.worker_json))


def test_on_the_service_allows_exec(on: Synthesized) -> None:
    on.worker.has_resource_properties("AWS::ECS::Service", {"EnableExecuteCommand": True})


def test_on_the_task_role_may_open_exactly_the_four_ssm_channels(on: Synthesized) -> None:
    ssm = [s for s in statements(on.worker_json) if "ssmmessages" in json.dumps(s["Action"])]
    assert ssm == [
        {"Action": SSM_CHANNEL_ACTIONS, "Effect": "Allow", "Resource": "*"},
    ]
    (task_definition,) = on.worker.find_resources("AWS::ECS::TaskDefinition").values()
    task_role = task_definition["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    on.worker.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": task_role}],
            "PolicyDocument": {
                "Statement": Match.array_with([Match.object_like({"Action": SSM_CHANNEL_ACTIONS})])
            },
        },
    )


def test_on_sessions_are_not_logged_into_the_worker_log(on: Synthesized) -> None:
    on.worker.has_resource_properties(
        "AWS::ECS::Cluster", {"Configuration": {"ExecuteCommandConfiguration": {"Logging": "NONE"}}}
    )
    assert "logs:" not in json.dumps(
        [s for s in statements(on.worker_json) if "ssmmessages" in json.dumps(s)]
    )


def test_on_the_container_root_filesystem_stays_writable_for_the_ssm_agent(
    on: Synthesized,
) -> None:
    """AWS: the SSM agent of ECS Exec needs to write to the container's file system, so a
    read-only root filesystem is not supported with ECS Exec."""
    (task_definition,) = on.worker.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = task_definition["Properties"]["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] is False


def test_on_the_init_process_reaps_session_processes(on: Synthesized) -> None:
    on.worker.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": [
                Match.object_like({"LinuxParameters": {"InitProcessEnabled": True}})
            ]
        },
    )


def test_on_cdk_nag_findings_are_acknowledged_with_a_reason(on: Synthesized) -> None:
    (nag,) = [r for r in on.validation_report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == []
    wildcard = [
        s
        for s in nag["suppressedViolations"]
        if s["ruleName"] == "AwsSolutions-IAM5[Resource::*]" and "ECS Exec" in s["reason"]
    ]
    assert wildcard, "the ssmmessages Resource::* finding is acknowledged"
    assert all(a["acknowledgedAt"].endswith("TaskRole/DefaultPolicy") for a in wildcard)


def test_on_cfn_lint_finds_nothing(on: Synthesized) -> None:
    result = cfn_lint(on.outdir / "QueueWorker-prod-Worker.template.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_on_synth_warns_about_the_root_shell(on: Synthesized) -> None:
    metadata = json.loads((on.outdir / "QueueWorker-prod-Worker.metadata.json").read_text())
    warnings = [
        entry["data"]
        for entries in metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]
    assert any("worker.ecs_exec is on" in str(w) and "root shell" in str(w) for w in warnings)


def test_a_command_line_override_turns_it_on() -> None:
    config = load_config(ENVIRONMENTS, "dev", {"worker.ecs_exec": "true"})
    assert config.worker.ecs_exec is True


def test_a_non_boolean_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(ENVIRONMENTS, "dev", {"worker.ecs_exec": "sometimes"})
    assert "environments.dev.worker.ecs_exec" in str(error.value)
    assert "'sometimes'" in str(error.value)
