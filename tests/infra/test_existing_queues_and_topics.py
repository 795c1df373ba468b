"""Issue 21, item 2: a worker consumes a queue the producers already use (by ARN, its redrive
policy left as it is), and a kit queue subscribes to existing SNS topics with the least IAM."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.config import ConfigError, load_config
from stacks.constructs.worker_service import CONSUME_ACTIONS
from tests.infra.conftest import (
    ENVIRONMENTS,
    EXISTING_QUEUE,
    REGION,
    SUBSCRIPTION,
    Synthesized,
    synthesize,
    variant,
)


@pytest.fixture(scope="module")
def existing() -> Synthesized:
    return variant("prod-existing-queue")


@pytest.fixture(scope="module")
def subscribed() -> Synthesized:
    return variant("prod-subscribed")


def task_statements(s: Synthesized) -> list[dict[str, Any]]:
    policies = s.worker.find_resources("AWS::IAM::Policy")
    (task_policy,) = [
        p for k, p in policies.items() if k.startswith("WorkerTaskDefinitionTaskRole")
    ]
    return list(task_policy["Properties"]["PolicyDocument"]["Statement"])


def container_environment(s: Synthesized) -> dict[str, Any]:
    (task,) = s.worker.find_resources("AWS::ECS::TaskDefinition").values()
    container = task["Properties"]["ContainerDefinitions"][0]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_an_existing_queue_is_consumed_and_left_as_it_is(existing: Synthesized) -> None:
    assert existing.queue.find_resources("AWS::SQS::Queue") == {}
    assert existing.queue.find_resources("AWS::SQS::QueuePolicy") == {}
    outputs = existing.queue_json["Outputs"]
    assert outputs["QueueArn"]["Value"] == EXISTING_QUEUE["arn"]
    assert outputs["DeadLetterQueueArn"]["Value"] == EXISTING_QUEUE["dead_letter_queue_arn"]
    url = json.dumps(container_environment(existing)["QUEUE_URL"])
    assert "/123456789012/orders" in url and "orders-dlq" not in url


def test_the_task_role_gets_the_existing_queues_and_their_key_and_no_more(
    existing: Synthesized,
) -> None:
    by_resource = {json.dumps(s["Resource"]): s["Action"] for s in task_statements(existing)}
    assert by_resource[json.dumps(EXISTING_QUEUE["arn"])] == sorted(
        CONSUME_ACTIONS
    )  # a kit queue's
    assert by_resource[json.dumps(EXISTING_QUEUE["dead_letter_queue_arn"])] == "sqs:SendMessage"
    assert by_resource[json.dumps(EXISTING_QUEUE["kms_key_arn"])] == [
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ]


def test_only_existing_queues_leave_one_free_resource_to_hold_the_outputs(
    existing: Synthesized,
) -> None:
    assert {r["Type"] for r in existing.queue_json["Resources"].values()} == {
        "AWS::CloudFormation::WaitConditionHandle"
    }


def test_the_subscription_delivers_raw_filtered_messages_to_the_work_queue(
    subscribed: Synthesized,
) -> None:
    queues = subscribed.queue.find_resources(
        "AWS::SQS::Queue", {"Properties": {"RedrivePolicy": Match.any_value()}}
    )
    (work_queue_id,) = queues
    subscribed.queue.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "TopicArn": SUBSCRIPTION["topic_arn"],
            "Protocol": "sqs",
            "Endpoint": {"Fn::GetAtt": [work_queue_id, "Arn"]},
            "RawMessageDelivery": True,
            "FilterPolicy": SUBSCRIPTION["filter_policy"],
            "FilterPolicyScope": "MessageAttributes",
        },
    )


def test_only_that_topic_may_send_and_only_to_the_work_queue(subscribed: Synthesized) -> None:
    allowed = [
        (policy["Properties"]["Queues"], statement)
        for policy in subscribed.queue.find_resources("AWS::SQS::QueuePolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
    ]
    ((queues, statement),) = allowed
    (work_queue_id,) = subscribed.queue.find_resources(
        "AWS::SQS::Queue", {"Properties": {"RedrivePolicy": Match.any_value()}}
    )
    assert queues == [{"Ref": work_queue_id}]
    assert statement == {
        "Action": "sqs:SendMessage",
        "Condition": {"ArnEquals": {"aws:SourceArn": SUBSCRIPTION["topic_arn"]}},
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Resource": {"Fn::GetAtt": [work_queue_id, "Arn"]},
    }


def problems(**queue: Any) -> list[str]:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"]["queue"] |= queue
    with pytest.raises(ConfigError) as caught:
        load_config(environments, "prod")
    return caught.value.problems


Q = "environments.prod.queue."


def test_a_topic_in_another_region_or_partition() -> None:
    other_region = SUBSCRIPTION["topic_arn"].replace(REGION, "eu-west-1")
    china = f"arn:aws-cn:sns:{REGION}:210987654321:t"
    assert problems(subscriptions=[{"topic_arn": other_region}, {"topic_arn": china}]) == [
        f"{Q}subscriptions[0].topic_arn: {other_region!r} is in partition 'aws', region "
        f"'eu-west-1'; allowed: the environment's partition 'aws' and region {REGION!r}",
        f"{Q}subscriptions[1].topic_arn: {china!r} is in partition 'aws-cn', region {REGION!r}; "
        f"allowed: the environment's partition 'aws' and region {REGION!r}",
    ]


def test_an_existing_queue_given_by_a_malformed_arn() -> None:
    assert problems(
        arn="orders", dead_letter_queue_arn=EXISTING_QUEUE["dead_letter_queue_arn"]
    ) == [f"{Q}arn: 'orders' is not an SQS queue ARN such as 'arn:aws:sqs:REGION:ACCOUNT:NAME'"]


def test_an_existing_queue_needs_the_dlq_its_redrive_policy_names() -> None:
    (problem,) = problems(arn=EXISTING_QUEUE["arn"])
    assert problem.startswith(f"{Q}dead_letter_queue_arn: required with arn: the DLQ the")


def test_what_only_an_existing_queue_or_only_a_kit_queue_may_have() -> None:
    assert problems(kms_key_arn=EXISTING_QUEUE["kms_key_arn"]) == [
        f"{Q}kms_key_arn: {EXISTING_QUEUE['kms_key_arn']!r} is only read with arn (an existing "
        "queue); allowed: unset"
    ]
    (problem,) = problems(**EXISTING_QUEUE, subscriptions=[SUBSCRIPTION])
    assert problem.startswith(f"{Q}subscriptions: a subscription needs a kit queue")


def test_queues_do_not_inherit_one_queues_own_resources() -> None:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"]["queue"] |= {"subscriptions": [SUBSCRIPTION]}
    environments["prod"]["queues"] = {"orders": {}, "default": {}}
    with pytest.raises(ConfigError) as caught:
        load_config(environments, "prod")
    assert caught.value.problems == [
        "environments.prod.queue.subscriptions: names one queue's own resource, which queues do "
        "not inherit; allowed: unset here, set on queues.NAME"
    ]


def test_two_queues_may_not_be_one_existing_queue() -> None:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"]["queues"] = {"orders": EXISTING_QUEUE, "again": EXISTING_QUEUE}
    with pytest.raises(ConfigError) as caught:
        load_config(environments, "prod")
    assert caught.value.problems == [
        f"environments.prod.queues.again.arn: {EXISTING_QUEUE['arn']!r} is also queues.orders.arn; "
        "allowed: a queue of its own",
        f"environments.prod.queues.again.dead_letter_queue_arn: "
        f"{EXISTING_QUEUE['dead_letter_queue_arn']!r} is also queues.orders.dead_letter_queue_arn; "
        "allowed: a queue of its own",
    ]


def test_the_kit_may_give_an_existing_queue_its_dlq_that_admits_only_that_queue() -> None:
    existing = {k: v for k, v in EXISTING_QUEUE.items() if k != "dead_letter_queue_arn"}
    s = synthesize("prod", queue={**existing, "kit_dead_letter_queue": True})
    (dlq_id, dlq) = next(iter(s.queue.find_resources("AWS::SQS::Queue").items()))
    assert s.queue.find_resources("AWS::SQS::Queue") == {dlq_id: dlq}
    assert dlq["Properties"]["QueueName"] == "QueueWorker-prod-DeadLetterQueue"
    assert dlq["Properties"]["RedriveAllowPolicy"] == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [EXISTING_QUEUE["arn"]],
    }
    (send,) = [st for st in task_statements(s) if st["Action"] == "sqs:SendMessage"]
    output = send["Resource"]["Fn::GetStackOutput"]  # the queue stack's output of its ARN
    assert output["StackName"] == "QueueWorker-prod-Queue"
    assert output["OutputName"].startswith(f"PublishOutputFnGetAtt{dlq_id}Arn")


def test_one_dlq_for_an_existing_queue() -> None:
    assert problems(**EXISTING_QUEUE, kit_dead_letter_queue=True) == [
        f"{Q}kit_dead_letter_queue: true with dead_letter_queue_arn; allowed: one of them"
    ]
    assert problems(kit_dead_letter_queue=True) == [
        f"{Q}kit_dead_letter_queue: True is only read with arn (an existing queue); allowed: unset"
    ]
