"""Deploys never shrink the fleet: the service carries no DesiredCount (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import ENVIRONMENTS, Synthesized, synthesize


def service_properties(synthesized: Synthesized) -> dict[str, Any]:
    (service,) = synthesized.worker.find_resources("AWS::ECS::Service").values()
    properties: dict[str, Any] = service["Properties"]
    return properties


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_service_has_no_desired_count(env: str) -> None:
    synthesize(env).worker.has_resource_properties(
        "AWS::ECS::Service", {"DesiredCount": Match.absent()}
    )


def test_the_scaling_floor_is_the_services_first_count(prod: Synthesized) -> None:
    prod.worker.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ScalableDimension": "ecs:service:DesiredCount",
            "MinCapacity": prod.config.scaling.min_tasks,
            "MaxCapacity": prod.config.scaling.max_tasks,
        },
    )


def test_a_new_image_updates_the_service_without_a_desired_count(prod: Synthesized) -> None:
    """A deploy that changes the task (here its process count, as a new image does) replaces
    the task definition; the service's own properties stay the same, so the UpdateService that
    CloudFormation sends carries the new task definition and no desired count."""
    changed = synthesize("prod", worker={"processes": 6})
    before, after = prod.worker_json["Resources"], changed.worker_json["Resources"]
    differ = {
        before[name]["Type"] for name in before.keys() & after.keys() if before[name] != after[name]
    }
    assert "AWS::ECS::TaskDefinition" in differ
    assert service_properties(changed) == service_properties(prod)
    assert "DesiredCount" not in service_properties(changed)
