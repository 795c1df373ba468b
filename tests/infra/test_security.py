"""Hardening: the container, the key and topic policies, log encryption, the DLQ's redrive-allow
policy and the private egress through VPC endpoints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match
from worker.settings import Settings
from worker.supervise import DEFAULTS

from stacks.constructs.worker_service import HEALTH_MODULE, IMAGE_USER, WRITABLE_PATH
from tests.infra.conftest import ROOT, VARIANTS, Synthesized, synthesize, variant

DOCKERFILE = (ROOT / "worker_image" / "Dockerfile").read_text()


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def container(s: Synthesized) -> dict[str, Any]:
    (task,) = resources(s.worker_json, "AWS::ECS::TaskDefinition").values()
    (definition,) = task["Properties"]["ContainerDefinitions"]
    return dict(definition)


def key_statements(s: Synthesized) -> list[dict[str, Any]]:
    (key,) = resources(s.worker_json, "AWS::KMS::Key").values()
    return list(key["Properties"]["KeyPolicy"]["Statement"])


def key_id(s: Synthesized) -> str:
    (logical_id,) = resources(s.worker_json, "AWS::KMS::Key")
    return logical_id


# -- the container ------------------------------------------------------------------------------


def test_the_container_runs_as_the_images_unprivileged_user(prod: Synthesized) -> None:
    assert container(prod)["User"] == IMAGE_USER == "10001:10001"
    assert f"USER {IMAGE_USER}\n" in DOCKERFILE


def test_the_root_filesystem_is_read_only_with_one_writable_task_volume(prod: Synthesized) -> None:
    definition = container(prod)
    assert definition["ReadonlyRootFilesystem"] is True
    assert definition["MountPoints"] == [
        {"ContainerPath": WRITABLE_PATH, "ReadOnly": False, "SourceVolume": "tmp"}
    ]
    (task,) = resources(prod.worker_json, "AWS::ECS::TaskDefinition").values()
    # A task-scoped bind mount: no host path, on the task's ephemeral storage.
    assert task["Properties"]["Volumes"] == [{"Name": "tmp"}]
    # Every path the runtime writes defaults below it (worker.supervise, worker.settings, HOME).
    assert 'VOLUME ["/tmp"]' in DOCKERFILE and "HOME=/tmp" in DOCKERFILE
    for path in (DEFAULTS["WORKER_RUN_DIR"], Settings.task_dir, Settings.run_dir):
        assert Path(path).is_relative_to(WRITABLE_PATH)


def test_the_container_memory_hard_limit_is_the_task_memory(prod: Synthesized) -> None:
    (task,) = resources(prod.worker_json, "AWS::ECS::TaskDefinition").values()
    assert container(prod)["Memory"] == int(task["Properties"]["Memory"])
    assert container(prod)["Memory"] == prod.config.worker.memory_mib


def test_the_health_check_runs_worker_health_with_the_kits_python(prod: Synthesized) -> None:
    check = container(prod)["HealthCheck"]
    kind, command = check["Command"]
    assert kind == "CMD-SHELL"
    assert f"-m {HEALTH_MODULE}" in command
    assert "/opt/venv/bin/python" in command  # the kit image
    assert "/opt/queue-worker-kit/venv/bin/python" in command  # a team image's install stage
    assert check == {
        "Command": [kind, command],
        "Interval": 30,
        "Timeout": 10,
        "Retries": 3,
        "StartPeriod": 60,
    }


def test_the_image_has_the_same_health_check() -> None:
    assert f'CMD ["/opt/venv/bin/python", "-m", "{HEALTH_MODULE}"]' in DOCKERFILE
    assert "HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3" in (DOCKERFILE)


def test_the_default_base_image_is_pinned_by_digest() -> None:
    (base,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base)


# -- the key --------------------------------------------------------------------------------------


def allows(statement: dict[str, Any], action: str) -> bool:
    actions = statement["Action"]
    actions = [actions] if isinstance(actions, str) else actions
    return statement["Effect"] == "Allow" and any(
        a in ("*", "kms:*", action) or (a.endswith("*") and action.startswith(a[:-1]))
        for a in actions
    )


def test_no_principal_may_create_grants_without_a_condition(prod: Synthesized) -> None:
    granting = [s for s in key_statements(prod) if allows(s, "kms:CreateGrant")]
    assert granting, "the account must still be able to let AWS services create grants"
    for statement in granting:
        assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_service_principals_use_the_key_only_for_this_accounts_resources(
    prod: Synthesized,
) -> None:
    services = {
        s["Principal"]["Service"]: s["Condition"]
        for s in key_statements(prod)
        if "Service" in s["Principal"]
    }
    assert set(services) == {
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
        "logs.ap-northeast-1.amazonaws.com",
    }
    for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
        condition = services[service]
        assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        source = str(condition["ArnLike"]["aws:SourceArn"])
        assert "AWS::AccountId" in source and "ap-northeast-1" in source
    logs = services["logs.ap-northeast-1.amazonaws.com"]
    pattern = logs["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    # This stack's log groups only: CloudFormation names those it creates <stack>-<id>-<random>.
    assert pattern == {
        "Fn::Join": [
            "",
            [
                "arn:aws:logs:ap-northeast-1:",
                {"Ref": "AWS::AccountId"},
                ":log-group:QueueWorker-prod-Worker-*",
            ],
        ]
    }


def test_the_log_groups_are_encrypted_with_the_kits_key(prod: Synthesized) -> None:
    groups = resources(prod.worker_json, "AWS::Logs::LogGroup")
    assert len(groups) == 2  # the worker's and the VPC flow log's
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id(prod), "Arn"]}


def test_without_encrypt_logs_the_groups_use_cloudwatchs_keys_and_say_why() -> None:
    s = synthesize("prod", worker={"encrypt_logs": False})
    for group in resources(s.worker_json, "AWS::Logs::LogGroup").values():
        assert "KmsKeyId" not in group["Properties"]
        (skipped,) = group["Metadata"]["checkov"]["skip"]
        assert skipped["id"] == "CKV_AWS_158" and "worker.encrypt_logs" in skipped["comment"]
    assert all("logs." not in str(st["Principal"]) for st in key_statements(s))


# -- keys and logs live and die together ----------------------------------------------------


def key_references(
    value: Any, template: dict[str, Any], kms_property: bool = False
) -> Iterator[Any]:
    """Every KMS key ``value`` refers to: a key of ``template`` by its logical id (a ``Ref`` or
    ``Fn::GetAtt``), or, under a property that names a KMS key (``KmsKeyId``,
    ``KmsMasterKeyId``, ``KMSMasterKeyID``, ``KmsKeyArn``, ...), whatever else is there (an
    ARN, an import, an alias)."""
    if isinstance(value, dict):
        target = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
        if isinstance(target, str) and target in template["Resources"]:
            if template["Resources"][target]["Type"] == "AWS::KMS::Key":
                yield target
            elif kms_property:
                yield value
            return
        for name, inner in value.items():
            named = re.fullmatch(r"kms\w*key(id|arn)", name, re.IGNORECASE) is not None
            yield from key_references(inner, template, kms_property or named)
    elif isinstance(value, list):
        for inner in value:
            yield from key_references(inner, template, kms_property)
    elif kms_property and value not in ("", None):
        yield value


def retained_key_references(s: Synthesized) -> Iterator[tuple[str, str, Any]]:
    """(stack, retained resource, key it refers to) over both templates."""
    for stack, template in (("Queue", s.queue_json), ("Worker", s.worker_json)):
        for logical_id, resource in template["Resources"].items():
            if resource.get("DeletionPolicy") == "Retain":
                for key in key_references(resource.get("Properties", {}), template):
                    yield stack, logical_id, key


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_nothing_retained_is_encrypted_with_a_key_deleted_before_it(name: str) -> None:
    """Every retained resource that refers to a KMS key refers to a key of its own template
    that is retained too (on delete and on replacement): its data stays readable."""
    s = variant(name)
    for stack, logical_id, key in retained_key_references(s):
        template = s.queue_json if stack == "Queue" else s.worker_json
        assert isinstance(key, str), f"{stack}/{logical_id} refers to a key it cannot keep: {key}"
        policies = {
            p: template["Resources"][key].get(p) for p in ("DeletionPolicy", "UpdateReplacePolicy")
        }
        assert policies == {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}, (
            f"{stack}/{logical_id} is retained, its key {key} is not: {policies}"
        )


def test_retain_data_keeps_the_log_groups_and_their_key(prod: Synthesized) -> None:
    retained = {logical_id for _, logical_id, _ in retained_key_references(prod)}
    assert retained == set(resources(prod.worker_json, "AWS::Logs::LogGroup"))
    prod.worker.has_resource(
        "AWS::KMS::Key", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )
    prod.worker.all_resources(
        "AWS::Logs::LogGroup", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )


def test_without_retain_data_the_log_groups_and_their_key_go_with_the_stack(
    dev: Synthesized,
) -> None:
    """Nothing of the worker stack outlives it (no orphaned log group, no orphaned key)."""
    assert not dev.config.retain_data
    dev.worker.has_resource(
        "AWS::KMS::Key",
        {"DeletionPolicy": "Delete", "Properties": Match.object_like({"PendingWindowInDays": 7})},
    )
    dev.worker.resource_count_is("AWS::Logs::LogGroup", 2)
    dev.worker.all_resources("AWS::Logs::LogGroup", {"DeletionPolicy": "Delete"})
    retained = [
        r for r in dev.worker_json["Resources"].values() if r.get("DeletionPolicy") == "Retain"
    ]
    assert retained == []


# -- secrets encrypted with customer-managed keys -------------------------------------------

SECRETS_KEY = "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def kms_statements(s: Synthesized) -> dict[str, list[dict[str, Any]]]:
    """Policy logical id -> its statements that allow a ``kms:`` action."""
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id, policy in resources(s.worker_json, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            if any(a.startswith("kms:") or a == "*" for a in actions):
                found.setdefault(logical_id, []).append(statement)
    return found


def test_secrets_kms_key_arns_let_the_execution_role_decrypt_through_the_secrets_services() -> None:
    s = synthesize(
        "prod",
        worker={
            "secrets": {"DB_PASSWORD": "ssm:/app/db", "API_TOKEN": "secretsmanager:app/api"},
            "secrets_kms_key_arns": [SECRETS_KEY],
        },
    )
    s.worker.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": Match.string_like_regexp("WorkerTaskDefinitionExecutionRole")}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "kms:Decrypt",
                            "Effect": "Allow",
                            "Resource": SECRETS_KEY,
                            "Condition": {
                                "StringEquals": {
                                    "kms:ViaService": [
                                        "secretsmanager.ap-northeast-1.amazonaws.com",
                                        "ssm.ap-northeast-1.amazonaws.com",
                                    ]
                                }
                            },
                        }
                    ]
                )
            },
        },
    )
    (policy,) = kms_statements(s)  # no other policy may use a KMS key
    assert "ExecutionRole" in policy and len(kms_statements(s)[policy]) == 1
    (nag,) = [r for r in s.validation_report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == []  # no wildcard: the keys are named


def test_secrets_without_kms_keys_grant_no_kms_action() -> None:
    s = variant("prod-endpoints")
    assert s.config.worker.secrets and not s.config.worker.secrets_kms_key_arns
    assert kms_statements(s) == {}


# -- the alarm topic ------------------------------------------------------------------------------


def test_only_this_accounts_alarms_and_the_kits_rules_may_publish(prod: Synthesized) -> None:
    (policy,) = resources(prod.worker_json, "AWS::SNS::TopicPolicy").values()
    allowed = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    services = {s["Principal"]["Service"] for s in allowed}
    assert services == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    for statement in allowed:
        condition = statement["Condition"]
        assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        if statement["Principal"]["Service"] == "cloudwatch.amazonaws.com":
            assert "alarm:*" in str(condition["ArnLike"]["aws:SourceArn"])
    # Each of the kit's EventBridge rules, by its own ARN, and nothing else.
    rules = {
        str(s["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0])
        for s in allowed
        if s["Principal"]["Service"] == "events.amazonaws.com"
    }
    assert rules == set(resources(prod.worker_json, "AWS::Events::Rule"))
    assert len(rules) == 2  # deployments rolled back, tasks that cannot start


# -- the queues -----------------------------------------------------------------------------------


def test_only_the_work_queue_may_use_the_dlq(prod: Synthesized) -> None:
    prod.queue.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "QueueWorker-prod-DeadLetterQueue",
            "RedriveAllowPolicy": {
                "redrivePermission": "byQueue",
                "sourceQueueArns": [
                    {
                        "Fn::Join": [
                            "",
                            Match.array_with(
                                [Match.string_like_regexp(":QueueWorker-prod-WorkQueue$")]
                            ),
                        ]
                    }
                ],
            },
        },
    )
    prod.queue.has_resource_properties(
        "AWS::SQS::Queue",
        {"QueueName": "QueueWorker-prod-WorkQueue", "RedrivePolicy": Match.any_value()},
    )


# -- private egress through VPC endpoints -------------------------------------------------------

ENDPOINTS = synthesize("prod", network={"egress": "endpoints"})


def endpoint_services(s: Synthesized) -> dict[str, str]:
    """Service (``sqs``, ``ecr.api``, ...) -> VpcEndpointType, from names such as
    ``com.amazonaws.ap-northeast-1.sqs`` or a join ending in ``.s3``."""
    found = {}
    for endpoint in resources(s.worker_json, "AWS::EC2::VPCEndpoint").values():
        name = endpoint["Properties"]["ServiceName"]
        if isinstance(name, dict):
            name = name["Fn::Join"][1][-1]
        found[name.rsplit("ap-northeast-1.", 1)[-1].lstrip(".")] = endpoint["Properties"][
            "VpcEndpointType"
        ]
    return found


def test_endpoints_egress_has_no_nat_no_internet_gateway_and_no_public_ip() -> None:
    template = ENDPOINTS.worker_json
    for kind in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP"):
        assert resources(template, kind) == {}
    for subnet in resources(template, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    ENDPOINTS.worker.has_resource_properties(
        "AWS::ECS::Service",
        {
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})
            }
        },
    )


def test_endpoints_egress_reaches_what_a_fargate_task_of_the_kit_calls() -> None:
    assert endpoint_services(ENDPOINTS) == {
        "sqs": "Interface",
        "ecr.api": "Interface",
        "ecr.dkr": "Interface",
        "logs": "Interface",
        "ecs": "Interface",
        "s3": "Gateway",
    }
    for endpoint in resources(ENDPOINTS.worker_json, "AWS::EC2::VPCEndpoint").values():
        if endpoint["Properties"].get("VpcEndpointType") == "Interface":
            assert endpoint["Properties"]["PrivateDnsEnabled"] is True


def test_the_endpoints_admit_https_from_the_tasks_only() -> None:
    groups = resources(ENDPOINTS.worker_json, "AWS::EC2::SecurityGroup")
    (endpoint_group,) = [k for k in groups if "EndpointSecurityGroup" in k]
    (task_group,) = [k for k in groups if "TaskSecurityGroup" in k]
    ingress = groups[endpoint_group]["Properties"].get("SecurityGroupIngress", [])
    ingress += [
        r["Properties"]
        for r in resources(ENDPOINTS.worker_json, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_group, "GroupId"]}
    ]
    assert len(ingress) == 1
    (rule,) = ingress
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": [task_group, "GroupId"]}
    for endpoint in resources(ENDPOINTS.worker_json, "AWS::EC2::VPCEndpoint").values():
        if endpoint["Properties"].get("VpcEndpointType") == "Interface":
            assert endpoint["Properties"]["SecurityGroupIds"] == [
                {"Fn::GetAtt": [endpoint_group, "GroupId"]}
            ]


def test_secrets_and_the_idempotency_table_add_their_endpoints() -> None:
    s = synthesize(
        "prod",
        network={"egress": "endpoints"},
        worker={"secrets": {"DB_PASSWORD": "ssm:/app/db", "API_KEY": "secretsmanager:app/api"}},
        queue={"idempotency_table": True},
    )
    services = endpoint_services(s)
    assert services["ssm"] == services["secretsmanager"] == "Interface"
    assert services["dynamodb"] == "Gateway"


def test_ecs_exec_adds_the_session_manager_endpoint() -> None:
    """Without ssmmessages the SSM agent of ECS Exec has no way out of an isolated subnet."""
    assert "ssmmessages" not in endpoint_services(ENDPOINTS)
    s = synthesize("prod", network={"egress": "endpoints"}, worker={"ecs_exec": True})
    assert endpoint_services(s)["ssmmessages"] == "Interface"


def test_public_egress_creates_no_endpoints(prod: Synthesized) -> None:
    assert prod.config.network.egress == "public"
    assert resources(prod.worker_json, "AWS::EC2::VPCEndpoint") == {}
