"""The AWS Control Tower proactive controls, run for real: cfn-guard and the Control Tower rule
files that AWS's `cdklabs-cdk-validator-cfnguard` package ships (its PyPI wheel carries both)
run over both templates of every environment and settings variant. A control may fail only
where a documented setting chooses otherwise (``EXCEPTIONS``), and it must fail exactly there.
The fine-grained assertions below restate the controls that apply to the kit's resources, one
test per control, so that a failure names the property; SNS has no rule in the package and is
only restated. docs/security.md has the table.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from stacks.config import EnvironmentConfig
from tests.infra.conftest import ROOT, VARIANTS, variant

GUARD_PACKAGE = "cdklabs-cdk-validator-cfnguard"

# control id -> (the setting that chooses otherwise, its reason)
EXCEPTIONS = {
    "CT.ECS.PR.2": (
        "monitoring.container_insights: false",
        "Container Insights costs 3-5 USD a month per environment, more than a small one's "
        "compute; on where the Spot fallback reads it or the setting asks for it",
    ),
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
# control id -> when a variant's settings choose to fail it (the EXCEPTIONS above).
FAILS_WHEN: dict[str, Callable[[EnvironmentConfig], bool]] = {
    "CT.ECS.PR.2": lambda c: not c.container_insights,
    "CT.ECS.PR.6": lambda c: c.worker.ecs_exec,
    "CT.ECS.PR.9": lambda c: c.network.egress == "public",
    "CT.CLOUDWATCH.PR.2": lambda c: c.worker.log_retention_days < 365,
    "CT.CLOUDWATCH.PR.3": lambda c: not c.worker.encrypt_logs,
}
NAMES = sorted(VARIANTS)
SECURITY_DOC = (ROOT / "docs" / "security.md").read_text()


@pytest.mark.parametrize("control", sorted(EXCEPTIONS))
def test_every_exception_is_documented_with_its_setting(control: str) -> None:
    """docs/security.md's row of the control says **Exception** and names the setting."""
    setting = EXCEPTIONS[control][0].split(":")[0]
    (row,) = [line for line in SECURITY_DOC.splitlines() if line.startswith(f"| {control} |")]
    assert "**Exception**" in row and f"`{setting}" in row


@cache
def guard() -> tuple[Path, Path]:
    """The cfn-guard binary and the Control Tower rules directory, unpacked from the installed
    package's jsii bundle (no download)."""
    dist = metadata.distribution(GUARD_PACKAGE)
    (bundle,) = [f for f in dist.files or () if str(f).endswith(".jsii.tgz")]
    out = Path(tempfile.mkdtemp(prefix="cfn-guard-"))
    with tarfile.open(Path(str(dist.locate_file(bundle)))) as archive:
        archive.extractall(out, filter="data")
    binary = out / "package" / "bin" / "ubuntu" / platform.machine() / "cfn-guard"
    binary.chmod(0o755)
    return binary, out / "package" / "rules" / "control-tower" / "cfn-guard"


def guard_failures(name: str) -> dict[str, set[str]]:
    """Control id -> the logical ids of the resources that fail it, for variant ``name``."""
    binary, rules = guard()
    data = [a for t in sorted(variant(name).outdir.glob("*.template.json")) for a in ("-d", str(t))]
    result = subprocess.run(
        [str(binary), "validate", "-r", str(rules), *data, "-o", "json", "-S", "none", "-z"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 19), result.stderr  # 19: some rule is not compliant
    reports = json.loads(result.stdout)
    assert len(reports) == 2 and sum(len(r["compliant"]) for r in reports) > 10
    failures: dict[str, set[str]] = {}
    for report in reports:
        for rule in report["not_compliant"]:
            text = json.dumps(rule)
            (control,) = set(re.findall(r"\[(CT\.[A-Z0-9]+\.PR\.\d+)\]", text))
            found = re.findall(r"/Resources/([A-Za-z0-9]+)/", text)
            failures.setdefault(control, set()).update(found)
    return failures


@pytest.mark.parametrize("name", NAMES)
def test_control_tower_rules_fail_only_where_a_setting_chooses_it(name: str) -> None:
    config = variant(name).config
    expected = {control for control, fails in FAILS_WHEN.items() if fails(config)}
    assert set(guard_failures(name)) == expected


def test_every_control_a_setting_fails_is_documented() -> None:
    for control in FAILS_WHEN:
        (row,) = [line for line in SECURITY_DOC.splitlines() if line.startswith(f"| {control} |")]
        assert "**Exception**" in row


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
def test_ct_ecs_pr_2_clusters_have_container_insights_where_the_setting_says(name: str) -> None:
    """Where monitoring.container_insights or the Spot fallback turns it on (EXCEPTIONS)."""
    wanted = "enabled" if variant(name).config.container_insights else "disabled"
    for cluster in resources(name, "AWS::ECS::Cluster"):
        settings = {s["Name"]: s["Value"] for s in cluster["ClusterSettings"]}
        assert settings["containerInsights"] == wanted


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
    """An Allow needs kms:GrantIsForAWSResource, and a Deny for everyone else (the control)."""
    for key in resources(name, "AWS::KMS::Key"):
        statements = key["KeyPolicy"]["Statement"]
        for statement in statements:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            grants = any(a in ("*", "kms:*", "kms:CreateGrant", "kms:Create*") for a in actions)
            if statement["Effect"] == "Allow" and grants:
                assert statement["Condition"]["Bool"]["kms:GrantIsForAWSResource"] == "true"
        (deny,) = [s for s in statements if s["Effect"] == "Deny"]
        assert (deny["Action"], deny["Principal"], deny["Resource"]) == (
            "kms:CreateGrant",
            {"AWS": "*"},
            "*",
        )
        assert deny["Condition"] == {
            "BoolIfExists": {
                "kms:GrantIsForAWSResource": "false",
                "aws:PrincipalIsAWSService": "false",
            }
        }


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
    # An existing queue (queue.arn) and its DLQ are the team's: the kit creates none.
    created = 0 if name == "prod-existing-queue" else len(variant(name).config.work_queues)
    assert len(queues) == 2 * created
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
def test_ct_ec2_pr_11_no_subnet_auto_assigns_public_ips(name: str) -> None:
    """Public subnets too: with public egress the service assigns each task its IP, the NAT
    gateway has an Elastic IP."""
    subnets = resources(name, "AWS::EC2::Subnet")
    assert subnets or variant(name).config.network.vpc_id
    for subnet in subnets:
        assert subnet["MapPublicIpOnLaunch"] is False
