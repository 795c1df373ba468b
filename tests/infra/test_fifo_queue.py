"""FIFO queues (issue 21, item 1): the config and the queue stack (the worker on a FIFO queue:
test_fifo_worker.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from stacks.config import ConfigError, EnvironmentConfig, load_config
from stacks.queue_stack import QueueStack
from tests.infra.conftest import ENVIRONMENTS, EXISTING_QUEUE, FEATURE_FLAGS, REGION, ROOT

Q = "environments.prod.queue."


def prod_config(**queue: Any) -> EnvironmentConfig:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"]["queue"] |= queue
    return load_config(environments, "prod", project_dir=ROOT)


def queue_template(config: EnvironmentConfig) -> Template:
    return Template.from_stack(
        QueueStack(App(context=FEATURE_FLAGS), "QueueWorker-prod-Queue", config=config)
    )


def problems(**queue: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        prod_config(**queue)
    return caught.value.problems


def test_a_fifo_queue_redrives_to_a_fifo_dlq() -> None:
    template = queue_template(prod_config(fifo=True, content_based_deduplication=True))
    (dlq_id,) = template.find_resources(
        "AWS::SQS::Queue", {"Properties": {"QueueName": "QueueWorker-prod-DeadLetterQueue.fifo"}}
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"QueueName": "QueueWorker-prod-DeadLetterQueue.fifo", "FifoQueue": True},
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "QueueWorker-prod-WorkQueue.fifo",
            "FifoQueue": True,
            "ContentBasedDeduplication": True,
            "DeduplicationScope": Match.absent(),
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}},
        },
    )


def test_high_throughput_deduplicates_and_limits_per_message_group() -> None:
    queue_template(prod_config(fifo=True, high_throughput=True)).has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "QueueWorker-prod-WorkQueue.fifo",
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
            "ContentBasedDeduplication": False,
        },
    )


def test_a_standard_queue_has_no_fifo_property() -> None:
    for queue in queue_template(prod_config()).find_resources("AWS::SQS::Queue").values():
        assert not {"FifoQueue", "ContentBasedDeduplication"} & set(queue["Properties"])


def test_fifo_settings_need_fifo() -> None:
    assert problems(content_based_deduplication=True, high_throughput=True) == [
        f"{Q}content_based_deduplication: true is only read with fifo true; allowed: false",
        f"{Q}high_throughput: true is only read with fifo true; allowed: false",
    ]


def test_a_fifo_queue_with_a_standard_dlq() -> None:
    fifo_arn = EXISTING_QUEUE["arn"] + ".fifo"
    assert problems(
        fifo=True, arn=fifo_arn, dead_letter_queue_arn=EXISTING_QUEUE["dead_letter_queue_arn"]
    ) == [
        f"{Q}dead_letter_queue_arn: {EXISTING_QUEUE['dead_letter_queue_arn']!r} is standard (by "
        "its name's '.fifo'), the queue FIFO (fifo true); allowed: a FIFO one"
    ]


def test_an_existing_fifo_queue_needs_fifo_and_a_topic_its_kind() -> None:
    fifo_arn = EXISTING_QUEUE["arn"] + ".fifo"
    dlq = EXISTING_QUEUE["dead_letter_queue_arn"] + ".fifo"
    assert problems(arn=fifo_arn, dead_letter_queue_arn=dlq) == [
        f"{Q}arn: {fifo_arn!r} is FIFO (by its name's '.fifo'), the queue standard (fifo false); "
        "allowed: a standard one",
        f"{Q}dead_letter_queue_arn: {dlq!r} is FIFO (by its name's '.fifo'), the queue standard "
        "(fifo false); allowed: a standard one",
    ]
    topic = f"arn:aws:sns:{REGION}:210987654321:orders"
    assert problems(fifo=True, subscriptions=[{"topic_arn": topic}]) == [
        f"{Q}subscriptions[0].topic_arn: {topic!r} is standard (by its name's '.fifo'), the "
        "queue FIFO (fifo true); allowed: a FIFO one"
    ]


def test_a_bad_arn_hides_no_fifo_key_problem() -> None:
    assert problems(high_throughput=True, arn="orders") == [
        f"{Q}arn: 'orders' is not an SQS queue ARN such as 'arn:aws:sqs:REGION:ACCOUNT:NAME'",
        f"{Q}high_throughput: true is only read with fifo true; allowed: false",
    ]
