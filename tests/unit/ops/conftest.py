"""Fixtures for the operator scripts' and the idempotency guard's tests (shared moto server)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

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
        "QueueUrl": {"Value": {"Ref": "WorkQueue"}},
        "QueueArn": {"Value": {"Fn::GetAtt": ["WorkQueue", "Arn"]}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
        "DeadLetterQueueArn": {"Value": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}},
    },
}


@pytest.fixture
def aws_args(moto_endpoint: str) -> list[str]:
    """The scripts' options that point them at the moto server."""
    return ["--endpoint-url", moto_endpoint, "--region", REGION]


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
