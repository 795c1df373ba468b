"""Every switch deploys (docs/architecture.md, "Switches on a running environment").

For each pair (before, after) of settings of a switch (egress and ``max_azs`` together, the
capacity, ECS Exec, the image source), both templates are synthesized and compared as
CloudFormation would update one into the other: a resource that keeps its logical id and type
while a create-only property changes is replaced, created before the old one is deleted; that
fails for a subnet whose range overlaps one that still exists (``InvalidSubnet.Conflict``) and
for a resource with a fixed name, and loses what a stateful one holds. The create-only
properties are those of CloudFormation's resource schemas that cfn-lint ships. A replacement
is allowed only for the types of ``REPLACEABLE``, each with its reason; no subnet that is
new in the update (a new logical id, or a replaced one) may overlap any old subnet, which
exists until the update's clean-up; and no resource that is new in the update may take the
name of one the update removes (a queue, an alarm, a log group under a new logical id: it is
created while the old one still holds the name).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
from functools import cache
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.infra.conftest import Synthesized, synthesize

BASE = "prod"
# Each switch: its settings, as synthesize() changes (the other settings stay the base's).
NETWORK = {
    f"{egress}-{azs}az": {"network": {"egress": egress, "max_azs": azs}}
    for egress in ("public", "nat", "endpoints")
    for azs in (2, 3)
}
SWITCHES: dict[str, dict[str, dict[str, Any]]] = {
    "network": NETWORK,
    # max_tasks 6: the fallback's tasks count in prod's connection cap.
    "capacity": {
        "on-demand": {"scaling": {"max_tasks": 6}},
        "spot": {
            "worker": {"capacity": {"on_demand_base": 1, "spot_weight": 3}},
            "scaling": {"max_tasks": 6},
        },
        "spot-no-fallback": {
            "worker": {"capacity": {"spot_weight": 1, "fallback_after_minutes": None}},
            "scaling": {"max_tasks": 6},
        },
    },
    "ecs_exec": {"off": {}, "on": {"worker": {"ecs_exec": True}}},
    "image": {
        "kit": {},
        "repository": {"worker": {"image": {"repository": "team/app", "tag": "v1"}}},
        "repository-v2": {"worker": {"image": {"repository": "team/app", "tag": "v2"}}},
        "directory": {
            "worker": {
                "image": {
                    "directory": "tests/infra/fixtures/team_app",
                    "dockerfile": "docker/worker.Dockerfile",
                }
            }
        },
    },
}
# Types whose replacement is safe, and why. Anything else replaced fails the test.
REPLACEABLE = {
    "AWS::ECS::TaskDefinition": "every property is create-only: a change registers a new "
    "revision of the same family, which the service then deploys (what every deploy does)",
}
PAIRS = [
    pytest.param(switch, before, after, id=f"{switch}:{before}->{after}")
    for switch, settings in SWITCHES.items()
    for before, after in itertools.permutations(settings, 2)
]


def synthesized(switch: str, setting: str) -> Synthesized:
    return synthesize(BASE, **SWITCHES[switch][setting])


@cache
def create_only(resource_type: str, region: str) -> tuple[tuple[str, ...], ...]:
    """The create-only properties of ``resource_type`` as paths under ``Properties``."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    return tuple(
        tuple(pointer.split("/")[2:])
        for pointer in schema.get("createOnlyProperties", [])
        if pointer.startswith("/properties/")
    )


def value_at(properties: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = properties
    for key in path:
        if not isinstance(value, dict) or key == "*":
            return value
        value = value.get(key)
    return value


def replaced(
    before: dict[str, Any], after: dict[str, Any], region: str
) -> dict[str, tuple[str, list[str]]]:
    """Logical id -> (type, create-only properties that change) of the resources an update
    from ``before`` to ``after`` replaces."""
    found: dict[str, tuple[str, list[str]]] = {}
    old, new = before["Resources"], after["Resources"]
    for logical_id in old.keys() & new.keys():
        kind = old[logical_id]["Type"]
        if new[logical_id]["Type"] != kind or kind.startswith("Custom::"):
            continue
        changed = [
            "/".join(path)
            for path in create_only(kind, region)
            if value_at(old[logical_id].get("Properties", {}), path)
            != value_at(new[logical_id].get("Properties", {}), path)
        ]
        if changed:
            found[logical_id] = (kind, changed)
    return found


def subnets(template: dict[str, Any]) -> dict[str, ipaddress.IPv4Network]:
    return {
        logical_id: ipaddress.ip_network(resource["Properties"]["CidrBlock"])
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::EC2::Subnet"
    }


def own_names(template: dict[str, Any], region: str) -> dict[str, set[tuple[str, str, str]]]:
    """Logical id -> (type, property, value) of the names resources give themselves: each
    create-only ``...Name`` property whose value refers to no other resource (``QueueName``,
    ``AlarmName``; not an alarm's ``MetricName``, nor a flow log's ``LogGroupName: {"Ref":}``)."""
    resources = template["Resources"]
    refs = {json.dumps({"Ref": logical_id}) for logical_id in resources}
    found: dict[str, set[tuple[str, str, str]]] = {}
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if kind.startswith("Custom::"):
            continue
        for key, value in resource.get("Properties", {}).items():
            text = json.dumps(value, sort_keys=True)
            if (
                key.endswith("Name")
                and (key,) in create_only(kind, region)
                and "Fn::GetAtt" not in text
                and not any(r in text for r in refs)
            ):
                found.setdefault(logical_id, set()).add((kind, key, text))
    return found


def name_clashes(
    before: dict[str, Any], after: dict[str, Any], region: str
) -> list[tuple[str, str]]:
    """(new logical id, removed logical id) of each new resource named as a removed one."""
    old, new = own_names(before, region), own_names(after, region)
    removed = {
        name: lid for lid, names in old.items() if lid not in after["Resources"] for name in names
    }
    return sorted(
        (lid, removed[name])
        for lid, names in new.items()
        if lid not in before["Resources"]
        for name in names
        if name in removed
    )


@pytest.mark.parametrize(("switch", "before", "after"), PAIRS)
def test_a_switch_replaces_nothing_that_cannot_be_replaced(
    switch: str, before: str, after: str
) -> None:
    old, new = synthesized(switch, before), synthesized(switch, after)
    for old_json, new_json in (
        (old.queue_json, new.queue_json),
        (old.worker_json, new.worker_json),
    ):
        unsafe = {
            logical_id: found
            for logical_id, found in replaced(old_json, new_json, old.config.region).items()
            if found[0] not in REPLACEABLE
        }
        assert unsafe == {}, "a create-only property changes on a resource that keeps its id"


@pytest.mark.parametrize(("switch", "before", "after"), PAIRS)
def test_no_new_subnet_overlaps_an_old_one(switch: str, before: str, after: str) -> None:
    old, new = synthesized(switch, before), synthesized(switch, after)
    old_subnets, new_subnets = subnets(old.worker_json), subnets(new.worker_json)
    moved = replaced(old.worker_json, new.worker_json, old.config.region)
    created = {
        logical_id: cidr
        for logical_id, cidr in new_subnets.items()
        if logical_id not in old_subnets or logical_id in moved
    }
    overlaps = [
        (new_id, str(new_cidr), old_id, str(old_cidr))
        for new_id, new_cidr in created.items()
        for old_id, old_cidr in old_subnets.items()
        if new_cidr.overlaps(old_cidr)
    ]
    assert overlaps == []


@pytest.mark.parametrize(("switch", "before", "after"), PAIRS)
def test_no_new_resource_takes_the_name_of_one_the_update_removes(
    switch: str, before: str, after: str
) -> None:
    old, new = synthesized(switch, before), synthesized(switch, after)
    region = old.config.region
    assert name_clashes(old.queue_json, new.queue_json, region) == []
    assert name_clashes(old.worker_json, new.worker_json, region) == []


def test_the_checks_see_a_replacement_and_an_overlap() -> None:
    """The comparison itself: a subnet moved to another range is a replacement that overlaps."""
    old = synthesized("network", "public-2az").worker_json
    (logical_id, cidr), *_ = subnets(old).items()
    new = {"Resources": {**old["Resources"]}}
    resource = new["Resources"][logical_id]
    new["Resources"][logical_id] = {
        **resource,
        "Properties": {**resource["Properties"], "CidrBlock": str(next(cidr.subnets()))},
    }
    assert replaced(old, new, "ap-northeast-1") == {logical_id: ("AWS::EC2::Subnet", ["CidrBlock"])}
    assert subnets(new)[logical_id].overlaps(cidr)


def test_the_checks_see_a_named_resource_under_a_new_logical_id() -> None:
    """The comparison itself: the DLQ moved to a new logical id keeps its QueueName."""
    old = synthesized("network", "public-2az").queue_json
    (logical_id,) = [
        lid
        for lid, resource in old["Resources"].items()
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" not in resource["Properties"]
    ]
    assert "QueueName" in old["Resources"][logical_id]["Properties"]
    resources = dict(old["Resources"])
    resources[f"{logical_id}Moved"] = resources.pop(logical_id)
    moved = {"Resources": resources}
    assert name_clashes(old, moved, "ap-northeast-1") == [(f"{logical_id}Moved", logical_id)]
