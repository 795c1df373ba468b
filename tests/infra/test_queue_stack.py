"""The stateful stack: work queue, DLQ, secure defaults, retention and outputs."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk.assertions import Match

from stacks.deploy_role_stack import execution_policy_name
from tests.infra.conftest import ROOT, TWO_WORKERS, Synthesized, synthesize, variant
from tests.infra.test_several_queues import readme_example

FOURTEEN_DAYS = 14 * 24 * 3600


def work_queue(s: Synthesized) -> dict:
    (queue,) = [
        r["Properties"]
        for r in s.queue_json["Resources"].values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    ]
    return queue


def test_redrive_to_the_dlq_after_max_receive_count(prod: Synthesized) -> None:
    prod.queue.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [Match.any_value(), "Arn"]},
                "maxReceiveCount": prod.config.queue.max_receive_count,
            }
        },
    )


def test_work_queue_retention_comes_from_config(prod: Synthesized) -> None:
    days = prod.config.queue.retention_days
    assert work_queue(prod)["MessageRetentionPeriod"] == days * 24 * 3600


def test_dlq_keeps_messages_fourteen_days(prod: Synthesized) -> None:
    prod.queue.has_resource_properties(
        "AWS::SQS::Queue",
        {"MessageRetentionPeriod": FOURTEEN_DAYS, "RedrivePolicy": Match.absent()},
    )


def test_both_queues_are_encrypted(prod: Synthesized) -> None:
    prod.queue.resource_properties_count_is("AWS::SQS::Queue", {"SqsManagedSseEnabled": True}, 2)


def test_both_queues_deny_non_tls_access(prod: Synthesized) -> None:
    prod.queue.resource_properties_count_is(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "sqs:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
        2,
    )


def test_visibility_timeout_is_the_heartbeat_base(prod: Synthesized) -> None:
    visibility = prod.config.queue.visibility_timeout_seconds
    assert work_queue(prod)["VisibilityTimeout"] == visibility
    assert prod.config.queue.heartbeat_interval_seconds * 4 <= visibility


def test_prod_retains_queues_and_protects_the_stack(prod: Synthesized) -> None:
    prod.queue.all_resources("AWS::SQS::Queue", {"DeletionPolicy": "Retain"})
    manifest = (prod.outdir / "manifest.json").read_text()
    assert '"terminationProtection": true' in manifest


def test_dev_deletes_queues_with_the_stack(dev: Synthesized) -> None:
    dev.queue.all_resources("AWS::SQS::Queue", {"DeletionPolicy": "Delete"})
    assert '"terminationProtection": true' not in (dev.outdir / "manifest.json").read_text()


def test_outputs_name_the_queue_and_dlq(prod: Synthesized) -> None:
    outputs = prod.queue.find_outputs("*")
    assert {"QueueUrl", "QueueArn", "DeadLetterQueueUrl", "DeadLetterQueueArn"} <= set(outputs)


def test_no_idempotency_table_unless_enabled(prod: Synthesized) -> None:
    prod.queue.resource_count_is("AWS::DynamoDB::GlobalTable", 0)


def test_idempotency_table_when_enabled() -> None:
    s = synthesize("prod", queue={"idempotency_table": True})
    s.queue.has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )
    assert "IdempotencyTableName" in s.queue.find_outputs("*")


def queue_names(template: dict[str, Any]) -> set[str]:
    return {
        r["Properties"]["QueueName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SQS::Queue"
    }


def alarm_names(template: dict[str, Any]) -> set[str]:
    return {
        r["Properties"].get("AlarmName")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_the_names_the_docs_show_are_the_ones_the_stacks_create() -> None:
    """Every ``QueueWorker-ENV-X`` in README.md and docs/ (placeholders ENV and NAME read as
    an environment) is a stack, a queue, a policy or an alarm the app creates, so `purge`, `dlq`
    and `redrive` accept what the docs tell the operator to type. The samples of an environment
    of several queues show the README's example of them (as prod), whose queues and alarms count
    too, and a FIFO queue's name (``.fifo``) is that of prod with ``queue.fifo``."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    shown = {
        (env, kind)
        for doc in docs
        for env, kind in re.findall(
            r"QueueWorker-([A-Za-z]+)-([A-Za-z]+(?:-[a-z]+)*(?:-WorkQueue|-DeadLetterQueue)?(?:\.fifo)?)",
            doc.read_text(),
        )
    }
    assert shown
    readme = synthesize("prod", batch_window=None, **readme_example())
    prod_queues = queue_names(readme.queue_json) | queue_names(variant("prod-fifo").queue_json)
    for env, kind in sorted(shown):
        worker, _, rest = kind.partition("-")
        if worker in ("NAME", "W") and rest:  # a worker's resource: a worker of TWO_WORKERS
            s, kind = synthesize("prod", **TWO_WORKERS), f"mails-{rest}"
        else:
            s = synthesize("prod" if env in ("ENV", "NAME") else env)
        name = f"{s.config.stack_prefix}-{kind}"
        prod = s.config.name == "prod"
        queues = queue_names(s.queue_json) | (prod_queues if prod else set())
        stacks = {f"{s.config.stack_prefix}-{k}" for k in ("Queue", "Worker", "Deploy")}
        policies = {execution_policy_name(s.config.name)}  # numbered -1, -2, ... in the docs
        alarms = alarm_names(s.worker_json) | (alarm_names(readme.worker_json) if prod else set())
        assert name in queues | stacks | policies | alarms, name
