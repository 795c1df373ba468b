"""Several queues in one environment: each with its own DLQ; the ``default`` queue keeps the
single queue's logical ids, so adding a queue never replaces one holding messages."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from stacks.app_builder import build
from stacks.config import ConfigError, EnvironmentConfig, load_config
from stacks.queue_stack import QueueStack
from tests.infra.conftest import ENVIRONMENTS, FEATURE_FLAGS, ROOT

EMAILS = {"emails": {"max_receive_count": 3}, "default": {}}


def prod_config(**changes: Any) -> EnvironmentConfig:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"] |= changes
    return load_config(environments, "prod", project_dir=ROOT)


def queue_template(config: EnvironmentConfig) -> dict[str, Any]:
    """The queue stack alone (the worker stack refuses one worker on several queues yet)."""
    app = App(context=FEATURE_FLAGS)
    return Template.from_stack(QueueStack(app, "QueueWorker-prod-Queue", config=config)).to_json()


@pytest.fixture(scope="module")
def single() -> dict[str, Any]:
    return queue_template(prod_config())


@pytest.fixture(scope="module")
def several() -> dict[str, Any]:
    return queue_template(prod_config(queues=EMAILS))


def test_the_default_queue_keeps_every_logical_id_and_property(
    single: dict[str, Any], several: dict[str, Any]
) -> None:
    kept = {k: several["Resources"].get(k) for k in single["Resources"]}
    assert kept == single["Resources"]
    assert {k: several["Outputs"].get(k) for k in single["Outputs"]} == single["Outputs"]


def test_each_queue_redrives_to_its_own_dlq_after_its_own_receives(
    several: dict[str, Any],
) -> None:
    template = Template.from_json(several)
    template.resource_count_is("AWS::SQS::Queue", 4)
    dlq = template.find_resources(
        "AWS::SQS::Queue", {"Properties": {"QueueName": "QueueWorker-prod-emails-DeadLetterQueue"}}
    )
    (dlq_id,) = dlq
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "QueueWorker-prod-emails-WorkQueue",
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                "maxReceiveCount": 3,
            },
            "SqsManagedSseEnabled": True,
        },
    )
    redrive_allow = dlq[dlq_id]["Properties"]["RedriveAllowPolicy"]
    assert redrive_allow["redrivePermission"] == "byQueue"
    (source,) = redrive_allow["sourceQueueArns"]
    assert "QueueWorker-prod-emails-WorkQueue" in str(source)


def test_each_queue_has_its_outputs(several: dict[str, Any]) -> None:
    outputs = several["Outputs"]
    for name in ("QueueUrl", "QueueArn", "DeadLetterQueueUrl", "DeadLetterQueueArn"):
        assert name in outputs
        assert f"{name}emails" in outputs
    assert outputs["QueueUrlemails"]["Value"] != outputs["QueueUrl"]["Value"]


def test_one_idempotency_table_when_some_queue_asks_for_it() -> None:
    config = prod_config(queues={"emails": {"idempotency_table": True}, "default": {}})
    Template.from_json(queue_template(config)).resource_count_is("AWS::DynamoDB::GlobalTable", 1)


def test_both_queues_of_every_queue_deny_plain_http(several: dict[str, Any]) -> None:
    Template.from_json(several).resource_properties_count_is(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
        4,
    )


def test_the_worker_stack_says_one_worker_runs_several_queues_next() -> None:
    with pytest.raises(ConfigError) as caught:
        build(App(context=FEATURE_FLAGS), prod_config(queues=EMAILS))
    (problem,) = caught.value.problems
    assert problem.startswith(
        "environments.prod.queues: ['emails', 'default'] are 2 queues without workers"
    )
    assert problem.endswith("allowed: one queue, or workers with one queue each")


def readme_example() -> dict[str, Any]:
    """The JSON block of the README's "Several queues and workers" section."""
    section = (ROOT / "README.md").read_text().split("### Several queues and workers", 1)[1]
    return dict(json.loads(section.split("```json\n", 1)[1].split("```", 1)[0]))


def test_the_readmes_three_queue_example_is_valid_and_deploys_its_queues() -> None:
    example = readme_example()
    config = prod_config(batch_window=None, **example)
    assert list(config.work_queues) == ["high", "default", "emails"]
    assert {name: fleet.queues for name, fleet in config.fleets.items()} == {
        "batch": ("high", "default"),
        "mail": ("emails",),
    }
    assert config.fleets["mail"].worker.processes == 2
    assert config.fleets["batch"].worker.processes == ENVIRONMENTS["prod"]["worker"]["processes"]
    names = {
        q["Properties"]["QueueName"]
        for q in Template.from_json(queue_template(config))
        .find_resources("AWS::SQS::Queue")
        .values()
    }
    assert names == {
        f"QueueWorker-prod{infix}-{kind}"
        for infix in ("-high", "", "-emails")
        for kind in ("WorkQueue", "DeadLetterQueue")
    }


def test_the_readmes_batch_worker_on_two_queues_is_refused_by_the_worker_stack() -> None:
    """Its batch worker consumes high before default: the runtime for that comes next."""
    with pytest.raises(ConfigError) as caught:
        build(App(context=FEATURE_FLAGS), prod_config(batch_window=None, **readme_example()))
    (problem,) = caught.value.problems
    assert problem.startswith(
        "environments.prod.workers.batch.queues: ['high', 'default'] names 2 queues"
    )
