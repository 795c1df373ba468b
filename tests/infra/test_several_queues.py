"""Several queues in one environment: each with its own DLQ; the ``default`` queue keeps the
single queue's logical ids, so adding a queue never replaces one holding messages."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template
from worker import contract

from stacks.app_builder import build
from stacks.config import EnvironmentConfig, load_config
from stacks.queue_stack import QueueStack
from tests.infra.conftest import ENVIRONMENTS, FEATURE_FLAGS, ROOT

EMAILS = {"emails": {"max_receive_count": 3}, "default": {}}


def prod_config(**changes: Any) -> EnvironmentConfig:
    environments = copy.deepcopy(ENVIRONMENTS)
    environments["prod"] |= changes
    return load_config(environments, "prod", project_dir=ROOT)


def queue_template(config: EnvironmentConfig) -> dict[str, Any]:
    """The queue stack alone."""
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


def test_without_workers_the_default_worker_consumes_every_queue_in_order() -> None:
    """The queues' order is the priority; the default queue's alarms keep their names."""
    app = App(context=FEATURE_FLAGS)
    _, worker_stack = build(app, prod_config(queues=EMAILS))
    template = Template.from_stack(worker_stack)
    (task,) = template.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert "QUEUE_URL" not in environment
    joined = json.dumps(environment[contract.QUEUES_VARIABLE])
    assert joined.index('\\"name\\":\\"emails\\"') < joined.index('\\"name\\":\\"default\\"')
    assert '\\"max_receive_count\\":3' in joined
    names = {
        alarm["Properties"].get("AlarmName")
        for alarm in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert {
        "QueueWorker-prod-dlq-messages",
        "QueueWorker-prod-dlq-messages-emails",
        "QueueWorker-prod-oldest-message-age",
        "QueueWorker-prod-oldest-message-age-emails",
    } <= names


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
        f"QueueWorker-prod{infix}-{kind}{suffix}"
        for infix, suffix in (("-high", ""), ("", ""), ("-emails", ".fifo"))
        for kind in ("WorkQueue", "DeadLetterQueue")
    }
    assert config.work_queues["emails"].fifo


def test_the_readmes_example_synthesizes_the_whole_app_without_nag_findings(
    tmp_path: Path,
) -> None:
    """Both stacks of exactly the README's block, with cdk-nag's AwsSolutions checks."""
    app = App(outdir=str(tmp_path), context=FEATURE_FLAGS)
    _, worker_stack = build(app, prod_config(batch_window=None, **readme_example()))
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    template = json.loads((tmp_path / f"{worker_stack.stack_name}.template.json").read_text())
    services = Template.from_json(template).find_resources("AWS::ECS::Service")
    assert len(services) == 2
    tasks = Template.from_json(template).find_resources("AWS::ECS::TaskDefinition")
    queues_of = {
        logical_id: {e["Name"] for e in t["Properties"]["ContainerDefinitions"][0]["Environment"]}
        for logical_id, t in tasks.items()
    }
    (batch,) = [
        names for logical_id, names in queues_of.items() if logical_id.startswith("Workerbatch")
    ]
    (mail,) = [
        names for logical_id, names in queues_of.items() if logical_id.startswith("Workermail")
    ]
    assert contract.QUEUES_VARIABLE in batch and "QUEUE_URL" not in batch
    assert "QUEUE_URL" in mail and contract.QUEUES_VARIABLE not in mail
    (mail_task,) = [t for i, t in tasks.items() if i.startswith("Workermail")]
    (container,) = mail_task["Properties"]["ContainerDefinitions"]
    assert {"Name": "PREFETCH_SECONDS", "Value": "0"} in container["Environment"]
