"""The AWS Control Tower proactive controls (CloudFormation Guard rules) that apply to the kit's
resources, one test per control, each asserting what the control checks on every environment
and settings variant. cfn-guard is a Rust binary on no registry this project uses, so the rules
are restated here; docs/security.md has the table (control, what it checks, how the kit meets
it or which setting chooses otherwise).

A control a setting may break on purpose is an ``EXCEPTIONS`` entry: its test asserts that the
setting is what breaks it, and docs/security.md names the setting and the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import ROOT, VARIANTS, variant

# control id -> (the setting that chooses otherwise, its reason)
EXCEPTIONS = {
    "CT.ECS.PR.9": (
        "network.egress: public",
        "the cheapest egress: tasks need a public IP to reach AWS APIs without a NAT gateway "
        "or VPC endpoints; nothing can connect in (no inbound rule)",
    ),
    "CT.CLOUDWATCH.PR.2": (
        "worker.log_retention_days",
        "job logs are for operating the fleet, not an audit trail; 30 days by default for "
        "cost, a year or more is one setting away",
    ),
    "CT.CLOUDWATCH.PR.3": (
        "worker.encrypt_logs: false",
        "logs stay encrypted by CloudWatch Logs' own keys; the kit's key is the default",
    ),
}
NAMES = sorted(VARIANTS)
SECURITY_DOC = (ROOT / "docs" / "security.md").read_text()


@pytest.mark.parametrize("control", sorted(EXCEPTIONS))
def test_every_exception_is_documented_with_its_setting(control: str) -> None:
    """docs/security.md's row of the control says **Exception** and names the setting."""
    setting = EXCEPTIONS[control][0].split(":")[0]
    (row,) = [line for line in SECURITY_DOC.splitlines() if line.startswith(f"| {control} |")]
    assert "**Exception**" in row and f"`{setting}" in row


def resources(name: str, kind: str) -> list[dict[str, Any]]:
    s = variant(name)
    return [
        r["Properties"]
        for template in (s.queue_json, s.worker_json)
        for r in template["Resources"].values()
        if r["Type"] == kind
    ]


def containers(name: str) -> list[dict[str, Any]]:
    return [
        c
        for task in resources(name, "AWS::ECS::TaskDefinition")
        for c in task["ContainerDefinitions"]
    ]


# -- Amazon ECS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_1_fargate_services_run_the_latest_platform_version(name: str) -> None:
    for service in resources(name, "AWS::ECS::Service"):
        assert service.get("PlatformVersion", "LATEST") == "LATEST"


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_2_clusters_have_container_insights(name: str) -> None:
    for cluster in resources(name, "AWS::ECS::Cluster"):
        settings = {s["Name"]: s["Value"] for s in cluster["ClusterSettings"]}
        assert settings["containerInsights"] in ("enabled", "enhanced")


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_3_task_definitions_name_a_user_that_is_not_root(name: str) -> None:
    for container in containers(name):
        user = container["User"]
        assert user.split(":")[0] not in ("root", "0", "")


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_4_tasks_use_awsvpc_networking(name: str) -> None:
    for task in resources(name, "AWS::ECS::TaskDefinition"):
        assert task["NetworkMode"] == "awsvpc"


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_5_task_definitions_have_a_logging_configuration(name: str) -> None:
    for container in containers(name):
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_6_containers_have_a_read_only_root_filesystem(name: str) -> None:
    for container in containers(name):
        assert container["ReadonlyRootFilesystem"] is True


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_7_task_definitions_have_a_memory_limit(name: str) -> None:
    for container in containers(name):
        assert container["Memory"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_8_no_host_networking_with_root_or_default_users(name: str) -> None:
    for task in resources(name, "AWS::ECS::TaskDefinition"):
        assert task["NetworkMode"] != "host"


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_9_services_assign_no_public_ip_unless_egress_is_public(name: str) -> None:
    public = variant(name).config.network.egress == "public"
    for service in resources(name, "AWS::ECS::Service"):
        assigned = service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"]
        assert assigned == ("ENABLED" if public else "DISABLED")


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_10_task_definitions_do_not_share_the_host_process_namespace(
    name: str,
) -> None:
    for task in resources(name, "AWS::ECS::TaskDefinition"):
        assert task.get("PidMode") != "host"


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_11_containers_are_not_privileged(name: str) -> None:
    for container in containers(name):
        assert container.get("Privileged", False) is False


@pytest.mark.parametrize("name", NAMES)
def test_ct_ecs_pr_12_no_credentials_in_container_environment_variables(name: str) -> None:
    forbidden = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ECS_ENGINE_AUTH_DATA"}
    for container in containers(name):
        assert not forbidden & {e["Name"] for e in container.get("Environment", [])}


# -- Amazon CloudWatch (alarms and logs) -------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_ct_cloudwatch_pr_1_alarms_have_an_action_for_the_alarm_state(name: str) -> None:
    alarms = resources(name, "AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms:
        assert alarm["AlarmActions"]


@pytest.mark.parametrize("name", NAMES)
def test_ct_cloudwatch_pr_2_log_retention_is_the_setting(name: str) -> None:
    """A year or more unless worker.log_retention_days chooses less (EXCEPTIONS)."""
    days = variant(name).config.worker.log_retention_days
    groups = resources(name, "AWS::Logs::LogGroup")
    assert groups
    for group in groups:
        assert group["RetentionInDays"] == days


@pytest.mark.parametrize("name", NAMES)
def test_ct_cloudwatch_pr_3_log_groups_are_encrypted_with_a_kms_key(name: str) -> None:
    encrypt = variant(name).config.worker.encrypt_logs
    for group in resources(name, "AWS::Logs::LogGroup"):
        assert ("KmsKeyId" in group) is encrypt


@pytest.mark.parametrize("name", NAMES)
def test_ct_cloudwatch_pr_4_alarm_actions_are_activated(name: str) -> None:
    for alarm in resources(name, "AWS::CloudWatch::Alarm"):
        assert alarm.get("ActionsEnabled", True) is True


# -- AWS KMS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_ct_kms_pr_1_keys_rotate(name: str) -> None:
    keys = resources(name, "AWS::KMS::Key")
    assert keys
    for key in keys:
        assert key["EnableKeyRotation"] is True


@pytest.mark.parametrize("name", NAMES)
def test_ct_kms_pr_2_no_short_rsa_encryption_keys(name: str) -> None:
    for key in resources(name, "AWS::KMS::Key"):
        assert key.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"


@pytest.mark.parametrize("name", NAMES)
def test_ct_kms_pr_3_only_aws_services_create_grants(name: str) -> None:
    for key in resources(name, "AWS::KMS::Key"):
        for statement in key["KeyPolicy"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            grants = any(a in ("*", "kms:*", "kms:CreateGrant", "kms:Create*") for a in actions)
            if statement["Effect"] == "Allow" and grants:
                assert statement["Condition"]["Bool"]["kms:GrantIsForAWSResource"] == "true"


# -- Amazon SNS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_ct_sns_pr_1_topics_are_encrypted_with_kms(name: str) -> None:
    topics = resources(name, "AWS::SNS::Topic")
    assert topics
    for topic in topics:
        assert topic["KmsMasterKeyId"]


# -- Amazon SQS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_ct_sqs_pr_1_queues_have_a_dead_letter_queue(name: str) -> None:
    """Dead-letter queues themselves are exempt when they carry a RedriveAllowPolicy."""
    queues = resources(name, "AWS::SQS::Queue")
    assert len(queues) == 2
    for queue in queues:
        assert "RedrivePolicy" in queue or "RedriveAllowPolicy" in queue


@pytest.mark.parametrize("name", NAMES)
def test_ct_sqs_pr_2_queues_are_encrypted_at_rest(name: str) -> None:
    for queue in resources(name, "AWS::SQS::Queue"):
        assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue


# -- Amazon EC2 (VPC) -----------------------------------------------------------------------------


def ingress_rules(name: str) -> list[dict[str, Any]]:
    inline = [
        rule
        for group in resources(name, "AWS::EC2::SecurityGroup")
        for rule in group.get("SecurityGroupIngress", [])
    ]
    return inline + resources(name, "AWS::EC2::SecurityGroupIngress")


@pytest.mark.parametrize("name", NAMES)
def test_ct_ec2_pr_3_and_4_no_security_group_admits_the_internet(name: str) -> None:
    """CT.EC2.PR.3 (0.0.0.0/0 or ::/0 only on 80/443) and CT.EC2.PR.4 (never on high-risk
    ports): the kit admits nothing from the internet on any port."""
    for rule in ingress_rules(name):
        assert rule.get("CidrIp") != "0.0.0.0/0" and rule.get("CidrIpv6") != "::/0"


@pytest.mark.parametrize("name", NAMES)
def test_subnets_auto_assign_public_ips_only_with_public_egress(name: str) -> None:
    """The detective control AWS-GR_SUBNET_AUTO_ASSIGN_PUBLIC_IP_DISABLED: public subnets exist
    only for public egress (tasks) or nat (the NAT gateway)."""
    egress = variant(name).config.network.egress
    for subnet in resources(name, "AWS::EC2::Subnet"):
        if subnet["MapPublicIpOnLaunch"]:
            assert egress in ("public", "nat")
