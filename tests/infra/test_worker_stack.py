"""The stateless stack: network, cluster, task, service and the task role."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from worker import contract

from stacks.config import RESERVED_ENV
from tests.infra.conftest import ENVIRONMENTS, Synthesized, synthesize


def environment(s: Synthesized) -> dict[str, Any]:
    (task,) = s.worker.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def from_queue_stack(value: Any) -> bool:
    """A cross-stack reference to the queue stack (an import or a stack output)."""
    text = str(value)
    return "Fn::ImportValue" in text or (
        "Fn::GetStackOutput" in text and "QueueWorker-prod-Queue" in text
    )


def container(s: Synthesized) -> dict[str, Any]:
    (task,) = s.worker.find_resources("AWS::ECS::TaskDefinition").values()
    return dict(task["Properties"]["ContainerDefinitions"][0])


def test_new_vpc_spans_two_azs_with_public_subnets_and_no_nat(prod: Synthesized) -> None:
    prod.worker.resource_count_is("AWS::EC2::VPC", 1)
    prod.worker.resource_count_is("AWS::EC2::Subnet", 2)
    prod.worker.resource_count_is("AWS::EC2::NatGateway", 0)
    prod.worker.has_resource_properties(
        "AWS::ECS::Service",
        {
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "ENABLED"})
            }
        },
    )


def test_nat_egress_puts_tasks_in_private_subnets() -> None:
    s = synthesize("prod", network={"egress": "nat"})
    s.worker.resource_count_is("AWS::EC2::NatGateway", 1)
    s.worker.has_resource_properties(
        "AWS::ECS::Service",
        {
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})
            }
        },
    )


@pytest.mark.parametrize("egress", ["public", "nat"])
def test_public_subnets_do_not_auto_assign_public_ips(egress: str) -> None:
    """CT.EC2.PR.11: the public subnets (public egress: the tasks'; nat: the NAT gateway's)
    map no public IP on launch; tasks get theirs from the service, the NAT gateway its EIP."""
    s = synthesize("prod", network={"egress": egress})
    public = {
        route["Properties"]["RouteTableId"]["Ref"]
        for route in s.worker.find_resources(
            "AWS::EC2::Route", {"Properties": {"GatewayId": Match.any_value()}}
        ).values()
    }
    associations = s.worker.find_resources("AWS::EC2::SubnetRouteTableAssociation").values()
    public_subnets = {
        a["Properties"]["SubnetId"]["Ref"]
        for a in associations
        if a["Properties"]["RouteTableId"]["Ref"] in public
    }
    assert len(public_subnets) == 2
    subnets = s.worker.find_resources("AWS::EC2::Subnet")
    for logical_id in public_subnets:
        assert subnets[logical_id]["Properties"]["MapPublicIpOnLaunch"] is False
    if egress == "nat":
        s.worker.has_resource_properties("AWS::EC2::EIP", {"Domain": "vpc"})
        s.worker.has_resource_properties(
            "AWS::EC2::NatGateway",
            {"AllocationId": {"Fn::GetAtt": [Match.any_value(), "AllocationId"]}},
        )


def zone(index: int) -> dict[str, Any]:
    """The ``index``-th availability zone of the region, resolved at deploy time."""
    return {"Fn::Select": [index, {"Fn::GetAZs": ""}]}


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_synth_with_an_account_needs_no_lookup(env: str) -> None:
    """With ``account`` set, a fresh App (no cdk.context.json) synthesizes without asking the
    CLI for any context (no availability-zone lookup: offline synth works) and the VPC takes
    the region's first zones at deploy time."""
    s = synthesize(env, account="123456789012")
    manifest = json.loads((s.outdir / "manifest.json").read_text())
    assert manifest.get("missing", []) == []
    for index in range(2):
        s.worker.has_resource_properties("AWS::EC2::Subnet", {"AvailabilityZone": zone(index)})
    assert "dummy" not in json.dumps(s.worker_json)


@pytest.mark.parametrize("account", [None, "123456789012"])
def test_max_azs_is_the_number_of_zones_with_or_without_an_account(account: str | None) -> None:
    """``network.max_azs: 3`` gives three subnets in three zones (the CDK's default gives an
    environment without ``account`` two zones whatever max_azs says)."""
    s = synthesize("prod", account=account, network={"max_azs": 3})
    s.worker.resource_count_is("AWS::EC2::Subnet", 3)
    for index in range(3):
        s.worker.has_resource_properties("AWS::EC2::Subnet", {"AvailabilityZone": zone(index)})


def test_existing_vpc_by_id_uses_its_subnets() -> None:
    s = synthesize(
        "prod",
        network={
            "vpc_id": "vpc-0abc1234",
            "subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"],
            "availability_zones": ["ap-northeast-1a", "ap-northeast-1c"],
        },
    )
    s.worker.resource_count_is("AWS::EC2::VPC", 0)
    s.worker.has_resource_properties(
        "AWS::ECS::Service",
        {
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like(
                    {"Subnets": ["subnet-0aaa1111", "subnet-0bbb2222"]}
                )
            }
        },
    )
    s.worker.has_resource_properties("AWS::EC2::SecurityGroup", {"VpcId": "vpc-0abc1234"})


def test_tasks_admit_no_inbound_traffic(prod: Synthesized) -> None:
    prod.worker.has_resource_properties(
        "AWS::EC2::SecurityGroup", {"SecurityGroupIngress": Match.absent()}
    )
    prod.worker.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


def test_rejected_traffic_is_logged(prod: Synthesized) -> None:
    prod.worker.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT"})


def insights(s: Synthesized) -> str:
    (cluster,) = s.worker.find_resources("AWS::ECS::Cluster").values()
    (setting,) = cluster["Properties"]["ClusterSettings"]
    assert setting["Name"] == "containerInsights"
    return str(setting["Value"])


def test_cluster_has_no_container_insights_unless_needed(prod: Synthesized) -> None:
    assert insights(prod) == "disabled"


def test_cluster_has_container_insights_when_chosen() -> None:
    assert insights(synthesize("dev", monitoring={"container_insights": True})) == "enabled"


def test_cluster_has_container_insights_for_the_spot_fallback() -> None:
    spot = synthesize(
        "prod",
        worker={"capacity": {"spot_weight": 1, "on_demand_weight": 0}},
        scaling={"max_tasks": 6},
    )
    assert insights(spot) == "enabled"


def test_task_shape_and_architecture_come_from_config(prod: Synthesized) -> None:
    worker = prod.config.worker
    prod.worker.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Cpu": str(worker.cpu),
            "Memory": str(worker.memory_mib),
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
        },
    )


def test_arm64_tasks() -> None:
    s = synthesize("prod", worker={"architecture": "arm64"})
    s.worker.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {"RuntimePlatform": Match.object_like({"CpuArchitecture": "ARM64"})},
    )


def test_image_is_built_from_worker_image_as_an_asset(prod: Synthesized) -> None:
    image = container(prod)["Image"]
    assert "cdk-hnb659fds-container-assets" in str(image)
    assets = (prod.outdir / "QueueWorker-prod-Worker.assets.json").read_text()
    assert '"dockerImages"' in assets and '"platform": "linux/amd64"' in assets


def test_process_count_reaches_supervisord(prod: Synthesized) -> None:
    assert environment(prod)["WORKER_PROCESSES"] == str(prod.config.worker.processes)


def test_processes_override_from_the_command_line() -> None:
    s = synthesize("prod", worker={"processes": 6})
    assert environment(s)["WORKER_PROCESSES"] == "6"


def test_queue_urls_come_from_the_queue_stack(prod: Synthesized) -> None:
    env = environment(prod)
    assert from_queue_stack(env["QUEUE_URL"])
    assert from_queue_stack(env["DEAD_LETTER_QUEUE_URL"])


def test_the_runners_know_the_queues_max_receive_count(prod: Synthesized) -> None:
    """WORKER_MAX_RECEIVE_COUNT (the Laravel runner's default tries) is the work queue's own."""
    [redrive] = [
        r["Properties"]["RedrivePolicy"]
        for r in prod.queue_json["Resources"].values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    ]
    max_receive_count = environment(prod)[contract.MAX_RECEIVE_COUNT_VARIABLE]
    assert max_receive_count == str(redrive["maxReceiveCount"])
    assert contract.MAX_RECEIVE_COUNT_VARIABLE in RESERVED_ENV  # a team's variable cannot hide it


def test_worker_timings_fit_inside_the_stop_timeout(prod: Synthesized) -> None:
    env = environment(prod)
    stop_timeout = container(prod)["StopTimeout"]
    assert stop_timeout == prod.config.worker.stop_timeout_seconds <= 120
    assert (
        int(env["WORKER_STOP_GRACE_SECONDS"]) < int(env["SUPERVISOR_STOPWAITSECS"]) < stop_timeout
    )
    assert env["TASK_PROTECTION"] == "on"
    assert int(env["HEARTBEAT_INTERVAL_SECONDS"]) < int(env["VISIBILITY_TIMEOUT_SECONDS"])


def test_init_process_is_enabled(prod: Synthesized) -> None:
    assert container(prod)["LinuxParameters"]["InitProcessEnabled"] is True


def test_logs_go_to_cloudwatch_with_retention(prod: Synthesized) -> None:
    log = container(prod)["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    assert log["Options"]["mode"] == "non-blocking"
    prod.worker.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": prod.config.worker.log_retention_days}
    )


def test_secrets_come_from_ssm_and_secrets_manager() -> None:
    s = synthesize(
        "prod",
        worker={
            "secrets": {
                "DB_PASSWORD": "secretsmanager:prod/db:password",
                "API_KEY": "ssm:/prod/api-key",
            }
        },
    )
    secrets = {x["Name"]: x["ValueFrom"] for x in container(s)["Secrets"]}
    assert ":secret:prod/db" in str(secrets["DB_PASSWORD"]) and "password" in str(
        secrets["DB_PASSWORD"]
    )
    assert ":parameter/prod/api-key" in str(secrets["API_KEY"])
    assert "DB_PASSWORD" not in environment(s)


def test_deployment_circuit_breaker_rolls_back(prod: Synthesized) -> None:
    prod.worker.has_resource_properties(
        "AWS::ECS::Service",
        {
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            )
        },
    )


def test_task_role_may_only_consume_its_queue_and_protect_its_tasks(prod: Synthesized) -> None:
    policies = prod.worker.find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("TaskRole")}]}},
    )
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_action = {
        tuple(sorted(st["Action"])) if isinstance(st["Action"], list) else (st["Action"],): st
        for st in statements
    }
    assert set(by_action) == {
        (
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ListQueueTags",  # the pause flag (queue-worker pause)
            "sqs:ReceiveMessage",
        ),
        ("sqs:SendMessage",),
        ("ecs:UpdateTaskProtection",),
    }
    for st in statements:
        assert st["Effect"] == "Allow"
        assert st["Resource"] != "*"
        if str(st["Action"]).startswith(("sqs", "['sqs")):
            assert from_queue_stack(st["Resource"])
    protection = by_action[("ecs:UpdateTaskProtection",)]["Resource"]
    assert ":task/" in str(protection) and "Cluster" in str(protection)


def test_idempotency_table_is_passed_and_granted() -> None:
    s = synthesize("prod", queue={"idempotency_table": True})
    assert from_queue_stack(environment(s)["IDEMPOTENCY_TABLE_NAME"])
    s.worker.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": Match.array_with(["dynamodb:PutItem"])})]
                )
            }
        },
    )
