"""Fixtures for the operator scripts' and the idempotency guard's tests (shared moto server)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts._aws import (
    CLUSTER_OUTPUT,
    DLQ_ARN_OUTPUT,
    DLQ_URL_OUTPUT,
    LOG_GROUP_OUTPUT,
    QUEUE_ARN_OUTPUT,
    QUEUE_URL_OUTPUT,
    SERVICE_OUTPUT,
)

REGION = "ap-northeast-1"

# The queue stack's shape as far as the scripts see it: two queues and the four outputs.
QUEUE_STACK_TEMPLATE = {
    "Resources": {
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "WorkQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 3,
                }
            },
        },
    },
    "Outputs": {
        QUEUE_URL_OUTPUT: {"Value": {"Ref": "WorkQueue"}},
        QUEUE_ARN_OUTPUT: {"Value": {"Fn::GetAtt": ["WorkQueue", "Arn"]}},
        DLQ_URL_OUTPUT: {"Value": {"Ref": "DeadLetterQueue"}},
        DLQ_ARN_OUTPUT: {"Value": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}},
    },
}


@pytest.fixture
def cdk_json(tmp_path: Path, env_name: str) -> Path:
    """A cdk.json whose one environment is `env_name` (region ap-northeast-1, defaults)."""
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": {"environments": {env_name: {"region": REGION}}}}))
    return path


@pytest.fixture
def aws_args(moto_endpoint: str, cdk_json: Path) -> list[str]:
    """The commands' options that point them at the moto server (and `env_name`'s cdk.json)."""
    return ["--endpoint-url", moto_endpoint, "--region", REGION, "--cdk-json", str(cdk_json)]


@pytest.fixture
def deploy_queue_stack(moto_endpoint: str) -> Callable[..., dict[str, str]]:
    """Factory: deploy a queue stack `QueueWorker-NAME-Queue` in moto; returns its outputs."""
    cloudformation = boto3.client("cloudformation", region_name=REGION, endpoint_url=moto_endpoint)

    def deploy(env: str, template: dict[str, Any] = QUEUE_STACK_TEMPLATE) -> dict[str, str]:
        stack = f"QueueWorker-{env}-Queue"
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
        outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
        return {output["OutputKey"]: output["OutputValue"] for output in outputs}

    return deploy


@dataclass(frozen=True)
class Deployed:
    """An environment's resources in moto, found by the commands through its stacks' outputs."""

    env: str
    queue_url: str
    dlq_url: str
    cluster: str
    service: str
    log_group: str


@pytest.fixture
def deploy_environment(
    moto_endpoint: str, deploy_queue_stack: Callable[..., dict[str, str]]
) -> Callable[[str], Deployed]:
    """Factory: both stacks of environment NAME in moto, with the resources their outputs name.

    The worker stack carries only the outputs (moto's CloudFormation creates no ECS service);
    the cluster, an empty service and the log group are created directly under those names.
    """

    client = partial(boto3.client, region_name=REGION, endpoint_url=moto_endpoint)
    ecs, logs, cloudformation = client("ecs"), client("logs"), client("cloudformation")

    def deploy(env: str) -> Deployed:
        outputs = deploy_queue_stack(env)
        cluster, service, group = f"cluster-{env}", f"service-{env}", f"/queue-worker/{env}"
        ecs.create_cluster(clusterName=cluster)
        ecs.register_task_definition(
            family=f"worker-{env}",
            containerDefinitions=[{"name": "worker", "image": "worker", "memory": 512}],
        )
        ecs.create_service(
            cluster=cluster, serviceName=service, taskDefinition=f"worker-{env}", desiredCount=2
        )
        logs.create_log_group(logGroupName=group)
        values = {CLUSTER_OUTPUT: cluster, SERVICE_OUTPUT: service, LOG_GROUP_OUTPUT: group}
        template = {
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in values.items()},
        }
        cloudformation.create_stack(
            StackName=f"QueueWorker-{env}-Worker", TemplateBody=json.dumps(template)
        )
        return Deployed(
            env, outputs[QUEUE_URL_OUTPUT], outputs[DLQ_URL_OUTPUT], cluster, service, group
        )

    return deploy


@pytest.fixture
def env_name() -> str:
    """A fresh environment name, so stacks of different tests never collide."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No credentials anywhere boto3 looks (env, files, instance metadata); fresh session."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
