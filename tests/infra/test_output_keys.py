"""The operator commands read a queue's and a worker's outputs under the keys the stacks give
them: scripts._aws.output_key against synthesized templates (the contract between them)."""

from __future__ import annotations

import copy

from aws_cdk import App
from aws_cdk.assertions import Template

from scripts._aws import CLUSTER_OUTPUT, QUEUE_STACK_OUTPUTS, WORKER_STACK_OUTPUTS, output_key
from stacks.config import load_config
from stacks.naming import scoped_id
from stacks.queue_stack import QueueStack
from tests.infra.conftest import ENVIRONMENTS, FEATURE_FLAGS, ROOT, variant

QUEUES = {"default": {}, "mails-high": {}, "bulk_jobs": {}}


def test_the_commands_read_each_queues_outputs_under_the_stacks_keys() -> None:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"] |= {"queues": QUEUES}
    config = load_config(environments, "prod", project_dir=ROOT)
    stack = QueueStack(App(context=FEATURE_FLAGS), "QueueWorker-prod-Queue", config=config)
    outputs = set(Template.from_stack(stack).to_json()["Outputs"])
    read = {output_key(base, queue) for base in QUEUE_STACK_OUTPUTS for queue in QUEUES}
    assert read <= outputs
    assert len(read) == len(QUEUES) * len(QUEUE_STACK_OUTPUTS)  # no two queues share a key
    assert output_key("QueueUrl", "default") == "QueueUrl"  # as before there were several


def test_output_key_is_the_scoped_id_as_cloudformation_keys_it() -> None:
    for queue in QUEUES:
        scoped = scoped_id("ServiceName", queue)
        assert output_key("ServiceName", queue) == "".join(c for c in scoped if c.isalnum())


def test_the_commands_read_each_workers_outputs_under_the_stacks_keys() -> None:
    two_workers = variant("prod-two-workers")
    read = {
        output_key(base, worker)
        for base in WORKER_STACK_OUTPUTS
        if base != CLUSTER_OUTPUT  # one cluster for every worker
        for worker in two_workers.config.fleets
    }
    assert read | {CLUSTER_OUTPUT} == set(two_workers.worker_json["Outputs"])
