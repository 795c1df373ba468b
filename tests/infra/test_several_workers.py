"""Several workers in one worker stack (issue 20): each a fleet of its own on its one queue,
sharing the key, network, cluster, alarm topic and dashboard; the ``default`` worker keeps the
ids and names of the time there was one."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Annotations, Match, Template

from stacks.app_builder import build
from stacks.config import EnvironmentConfig, load_config
from tests.infra.conftest import ENVIRONMENTS, FEATURE_FLAGS, ROOT, TWO_WORKERS, synthesize, variant

WORKERS = ("batch", "mails")


def worker_json(config: EnvironmentConfig) -> dict[str, Any]:
    _, worker_stack = build(App(context=FEATURE_FLAGS), config)
    return Template.from_stack(worker_stack).to_json()


def prod_config(**changes: Any) -> EnvironmentConfig:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"] |= changes
    return load_config(environments, "prod", project_dir=ROOT)


@pytest.fixture(scope="module")
def two() -> dict[str, Any]:
    return variant("prod-two-workers").worker_json


def of_worker(template: dict[str, Any], kind: str, worker: str) -> dict[str, Any]:
    """The one resource of ``kind`` whose logical id starts with ``Worker<worker>``."""
    (found,) = (
        r["Properties"]
        for logical_id, r in template["Resources"].items()
        if r["Type"] == kind and logical_id.startswith(f"Worker{worker}")
    )
    return found


def queue_output(value: Any) -> str:
    """The queue stack's output a worker-stack value reads (a cross-stack reference)."""
    return str(value["Fn::GetStackOutput"]["OutputName"])


@pytest.mark.parametrize("worker", WORKERS)
def test_each_worker_reads_its_own_queue_and_dlq(two: dict[str, Any], worker: str) -> None:
    (container,) = of_worker(two, "AWS::ECS::TaskDefinition", worker)["ContainerDefinitions"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert f"RefWorkQueue{worker}WorkQueue" in queue_output(environment["QUEUE_URL"])
    dead_letter_queue = queue_output(environment["DEAD_LETTER_QUEUE_URL"])
    assert f"RefWorkQueue{worker}DeadLetterQueue" in dead_letter_queue


@pytest.mark.parametrize("worker", WORKERS)
def test_each_task_role_is_granted_its_own_queues_only(two: dict[str, Any], worker: str) -> None:
    statements = of_worker(two, "AWS::IAM::Policy", f"{worker}TaskDefinitionTaskRole")[
        "PolicyDocument"
    ]["Statement"]
    queues = [queue_output(s["Resource"]) for s in statements if "Fn::GetStackOutput" in str(s)]
    assert len(queues) == 2
    assert all(f"WorkQueue{worker}" in queue for queue in queues)


def test_two_services_on_one_cluster_network_key_topic_and_dashboard(two: dict[str, Any]) -> None:
    template = Template.from_json(two)
    for kind, count in {
        "AWS::ECS::Service": 2,
        "AWS::ECS::TaskDefinition": 2,
        "AWS::ApplicationAutoScaling::ScalableTarget": 2,
        "AWS::ECS::Cluster": 1,
        "AWS::EC2::VPC": 1,
        "AWS::KMS::Key": 1,
        "AWS::SNS::Topic": 1,
        "AWS::CloudWatch::Dashboard": 1,
    }.items():
        template.resource_count_is(kind, count)


def test_each_worker_has_its_own_sizing(two: dict[str, Any]) -> None:
    batch = of_worker(two, "AWS::ECS::TaskDefinition", "batch")
    mails = of_worker(two, "AWS::ECS::TaskDefinition", "mails")
    assert (batch["Cpu"], batch["Memory"]) == ("512", "2048")
    assert (mails["Cpu"], mails["Memory"]) == ("256", "1024")


def test_each_worker_scales_within_its_own_limits_and_windows(two: dict[str, Any]) -> None:
    template = Template.from_json(two)
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": 1, "MaxCapacity": 2, "ScheduledActions": Match.absent()},
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 0,
            "MaxCapacity": 12,
            "ScheduledActions": Match.array_with(
                [Match.object_like({"ScalableTargetAction": {"MinCapacity": 4}})]
            ),
        },
    )
    assert two["Metadata"] == {"Deadline0400To0900-batch": "08:30"}


def test_the_alarms_carry_their_workers_names(two: dict[str, Any]) -> None:
    names = [
        r["Properties"]["AlarmName"]
        for r in two["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and "AlarmName" in r["Properties"]
    ]
    assert len(names) == len(set(names))
    for worker in WORKERS:
        for alarm in ("dlq-messages", "oldest-message-age", "error-rate", "memory-high"):
            assert f"QueueWorker-prod-{worker}-{alarm}" in names


@pytest.mark.parametrize("worker", WORKERS)
def test_each_workers_job_metrics_have_a_namespace_of_their_own(
    two: dict[str, Any], worker: str
) -> None:
    filters = [
        r["Properties"]
        for logical_id, r in two["Resources"].items()
        if r["Type"] == "AWS::Logs::MetricFilter" and logical_id.startswith(f"Worker{worker}")
    ]
    assert len(filters) == 6
    for metric_filter in filters:
        (transformation,) = metric_filter["MetricTransformations"]
        assert transformation["MetricNamespace"] == f"QueueWorkerKit/prod/{worker}"


def test_each_workers_queries_and_dashboard_rows_carry_its_name(two: dict[str, Any]) -> None:
    template = Template.from_json(two)
    dashboard = json.dumps(template.find_resources("AWS::CloudWatch::Dashboard"))
    for worker in WORKERS:
        template.has_resource_properties(
            "AWS::Logs::QueryDefinition", {"Name": f"QueueWorker-prod-Worker/{worker}/errors"}
        )
        assert f'\\"title\\":\\"{worker}: Queue depth\\"' in dashboard


def test_each_worker_has_its_outputs(two: dict[str, Any]) -> None:
    assert sorted(two["Outputs"]) == [
        "ClusterName",
        "LogGroupNamebatch",
        "LogGroupNamemails",
        "ServiceNamebatch",
        "ServiceNamemails",
    ]
    service = two["Outputs"]["ServiceNamemails"]["Value"]["Fn::GetAtt"][0]
    assert service.startswith("WorkermailsService")


def test_the_default_worker_keeps_its_ids_and_properties_beside_a_second() -> None:
    """Adding a worker replaces nothing of the ``default`` one: every resource and output of
    the one-worker template is there, the same but for the two the workers share and extend
    (the topic's policy: the new worker's rules may publish; the dashboard: its rows)."""
    monitoring = {**ENVIRONMENTS["prod"]["monitoring"], "dashboard": True}
    single = synthesize("prod", monitoring=monitoring).worker_json
    mails = TWO_WORKERS["workers"]["mails"]
    beside = worker_json(
        prod_config(
            monitoring=monitoring,
            batch_window=None,
            queues={"default": {}, "mails": {"max_receive_count": 3}},
            workers={
                "default": {
                    "queues": ["default"],
                    "batch_windows": [ENVIRONMENTS["prod"]["batch_window"]],
                },
                "mails": mails,
            },
        )
    )
    assert set(single["Resources"]) <= set(beside["Resources"])
    changed = {
        single["Resources"][k]["Type"]
        for k in single["Resources"]
        if single["Resources"][k] != beside["Resources"][k]
    }
    assert changed == {"AWS::SNS::TopicPolicy", "AWS::CloudWatch::Dashboard"}
    assert {k: beside["Outputs"].get(k) for k in single["Outputs"]} == single["Outputs"]
    assert beside["Metadata"] == single["Metadata"]


def test_a_worker_on_spot_gets_its_own_fallback_and_the_cluster_container_insights() -> None:
    workers = copy.deepcopy(TWO_WORKERS["workers"])
    workers["mails"]["worker"]["capacity"] = {"spot_weight": 1}
    workers["batch"]["scaling"] = {"max_tasks": 10}  # 80 + (2 + 2 fallback) x 2 processes
    template = worker_json(
        prod_config(batch_window=None, queues=TWO_WORKERS["queues"], workers=workers)
    )
    services = {
        logical_id
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::ECS::Service"
    }
    assert {s.removesuffix(s[-8:]) for s in services} == {
        "WorkerbatchService",
        "WorkermailsService",
        "WorkermailsFallbackService",
    }
    assert any(logical_id.startswith("SpotFallbackmails") for logical_id in template["Resources"])
    Template.from_json(template).has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    )


def test_a_workers_synth_warnings_name_its_own_keys() -> None:
    workers = copy.deepcopy(TWO_WORKERS["workers"])
    workers["mails"]["worker"]["ecs_exec"] = True
    _, worker_stack = build(
        App(context=FEATURE_FLAGS),
        prod_config(batch_window=None, queues=TWO_WORKERS["queues"], workers=workers),
    )
    Annotations.from_stack(worker_stack).has_warning(
        "/QueueWorker-prod-Worker/Worker-mails",
        Match.string_like_regexp(r"^workers\.mails\.worker\.ecs_exec is on: .*root shell"),
    )
