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
        {
            "Action": ["logs:DescribeLogGroups", *SSM_CHANNEL_ACTIONS],
            "Effect": "Allow",
            "Resource": "*",
        },
    ]
    (task_definition,) = on.worker.find_resources("AWS::ECS::TaskDefinition").values()
    task_role = task_definition["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    on.worker.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": task_role}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Action": ["logs:DescribeLogGroups", *SSM_CHANNEL_ACTIONS]}
                        )
                    ]
                )
            },
        },
    )


def exec_log_group(s: Synthesized) -> str:
    (cluster,) = s.worker.find_resources("AWS::ECS::Cluster").values()
    configuration = cluster["Properties"]["Configuration"]["ExecuteCommandConfiguration"]
    assert configuration["Logging"] == "OVERRIDE"
    return str(configuration["LogConfiguration"]["CloudWatchLogGroupName"]["Ref"])


def test_on_sessions_are_logged_to_a_log_group_of_their_own_encrypted_with_the_kit_key(
    on: Synthesized,
) -> None:
    on.worker.has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "Configuration": {
                "ExecuteCommandConfiguration": {
                    "Logging": "OVERRIDE",
                    "LogConfiguration": {"CloudWatchEncryptionEnabled": True},
                }
            }
        },
    )
    group = on.worker_json["Resources"][exec_log_group(on)]
    (key,) = on.worker.find_resources("AWS::KMS::Key")
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert group["Properties"]["RetentionInDays"] == on.config.worker.log_retention_days
    assert group["DeletionPolicy"] == "Retain"  # prod: retain_data, as its key
    (worker_group,) = [
        output["Value"]["Ref"]
        for name, output in on.worker_json["Outputs"].items()
        if name == "LogGroupName"
    ]
    assert worker_group != exec_log_group(on)  # no shell transcript in the worker's JSON log
    output = on.worker_json["Outputs"]["ExecSessionLogGroupName"]["Value"]
    assert output == {"Ref": exec_log_group(on)}


def test_on_the_task_role_may_write_only_the_sessions_log_group(on: Synthesized) -> None:
    task_role_policy = [
        resource
        for name, resource in on.worker_json["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy" and "TaskRole" in name
    ]
    writes = [
        s
        for s in statements({"Resources": dict(enumerate(task_role_policy))})
        if "logs:PutLogEvents" in s["Action"]
    ]
    assert writes == [
        {
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": [
                    "",
                    [
                        f"arn:aws:logs:{on.config.region}:",
                        {"Ref": "AWS::AccountId"},
                        ":log-group:",
                        {"Ref": exec_log_group(on)},
                        ":*",
                    ],
                ]
            },
        }
    ]


def test_on_without_encrypted_logs_sessions_are_logged_unencrypted() -> None:
    s = synthesize("dev", worker={"ecs_exec": True, "encrypt_logs": False})
    s.worker.has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "Configuration": {
                "ExecuteCommandConfiguration": {
                    "LogConfiguration": {"CloudWatchEncryptionEnabled": False}
                }
            }
        },
    )
    assert "KmsKeyId" not in s.worker_json["Resources"][exec_log_group(s)]["Properties"]


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
