"""A worker on a FIFO queue (issue 21, item 1): its container reads the FIFO queue and DLQ and
takes one message a receive, its grants are those of a standard queue, its dashboard shows the
groups in flight; a worker on a FIFO and a standard queue in priority order deploys."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template
from worker import contract

from stacks.constructs.monitoring import FIFO_GROUPS_IN_FLIGHT
from tests.infra.conftest import Synthesized, synthesize, variant
from tests.infra.test_monitoring import dashboard_body

FIFO = {"fifo": True, "high_throughput": True}
DASHBOARD = {"dashboard": True}


def environment(s: Synthesized) -> dict[str, Any]:
    (task,) = s.worker.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def queue_name(s: Synthesized, output_name: str) -> str:
    """The name of the queue stack's queue whose URL the output ``output_name`` publishes."""
    (logical_id,) = s.queue_json["Outputs"][output_name]["Value"].values()
    return str(s.queue_json["Resources"][logical_id]["Properties"]["QueueName"])


def referenced(value: Any) -> str:
    return str(value["Fn::GetStackOutput"]["OutputName"])


def task_role_actions(s: Synthesized) -> set[str]:
    actions: set[str] = set()
    for policy in s.worker.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions |= set(listed if isinstance(listed, list) else [listed])
    return actions


def test_the_container_reads_the_fifo_queue_and_its_fifo_dlq() -> None:
    s = variant("prod-fifo")
    env = environment(s)
    assert queue_name(s, referenced(env["QUEUE_URL"])) == "QueueWorker-prod-WorkQueue.fifo"
    assert (
        queue_name(s, referenced(env["DEAD_LETTER_QUEUE_URL"]))
        == "QueueWorker-prod-DeadLetterQueue.fifo"
    )


def test_a_fifo_worker_takes_one_message_a_receive_whatever_prefetch_seconds_says() -> None:
    """A message handed back behind its group's failing one spends a receive: one message a
    receive keeps the later ones of the group from reaching the DLQ without having run."""
    fifo = synthesize("prod", queue=FIFO, worker={"prefetch_seconds": 30})
    assert environment(fifo)["PREFETCH_SECONDS"] == "0"
    standard = synthesize("prod", worker={"prefetch_seconds": 30})
    assert environment(standard)["PREFETCH_SECONDS"] == "30"


def test_the_grants_are_those_of_a_standard_queue() -> None:
    assert task_role_actions(variant("prod-fifo")) == task_role_actions(synthesize("prod"))


def test_the_dashboard_shows_the_fifo_queues_groups_in_flight() -> None:
    body = dashboard_body(variant("prod-fifo"))
    assert body.count(f'"AWS/SQS","{FIFO_GROUPS_IN_FLIGHT}"') == 1
    assert '"label":"groups in flight"' in body


def test_a_standard_queues_dashboard_has_no_groups_line() -> None:
    assert FIFO_GROUPS_IN_FLIGHT not in dashboard_body(synthesize("prod", monitoring=DASHBOARD))


def test_a_worker_on_a_fifo_and_a_standard_queue_in_priority_order_deploys() -> None:
    s = synthesize(
        "prod", queues={"default": {}, "orders": FIFO}, monitoring=DASHBOARD, batch_window=None
    )
    env = environment(s)
    assert "QUEUE_URL" not in env
    separator, parts = env[contract.QUEUES_VARIABLE]["Fn::Join"]
    text = separator.join(p if isinstance(p, str) else f"@{referenced(p)}" for p in parts)
    default, orders = json.loads(text)
    assert [default["name"], orders["name"]] == ["default", "orders"]
    assert queue_name(s, orders["url"][1:]) == "QueueWorker-prod-orders-WorkQueue.fifo"
    assert (
        queue_name(s, orders["dead_letter_queue_url"][1:])
        == "QueueWorker-prod-orders-DeadLetterQueue.fifo"
    )
    assert queue_name(s, default["url"][1:]) == "QueueWorker-prod-WorkQueue"
    assert env["PREFETCH_SECONDS"] == "0"
    body = dashboard_body(s)
    assert body.count(FIFO_GROUPS_IN_FLIGHT) == 1
    assert '"label":"orders groups in flight"' in body
    Template.from_json(s.worker_json).resource_count_is("AWS::ECS::Service", 1)
