"""Synthesize environments in-process, once per test session and variant."""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.app_builder import build
from stacks.config import EnvironmentConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = json.loads((ROOT / "cdk.json").read_text())
ENVIRONMENTS: dict[str, Any] = CDK_JSON["context"]["environments"]
FEATURE_FLAGS = {k: v for k, v in CDK_JSON["context"].items() if k.startswith("@")}


@dataclass(frozen=True)
class Synthesized:
    """One environment's cloud assembly: its config, both templates and the nag report."""

    config: EnvironmentConfig
    outdir: Path
    queue_json: dict[str, Any]
    worker_json: dict[str, Any]

    @property
    def queue(self) -> Template:
        return Template.from_json(self.queue_json)

    @property
    def worker(self) -> Template:
        return Template.from_json(self.worker_json)

    @property
    def validation_report(self) -> dict[str, Any]:
        return dict(json.loads((self.outdir / "validation-report.json").read_text()))


@cache
def _synthesize(env: str, changes_json: str) -> Synthesized:
    environments = copy.deepcopy(ENVIRONMENTS)
    for section, values in json.loads(changes_json).items():
        target = environments[env]
        if values is None:
            target.pop(section, None)
        elif isinstance(values, dict):
            target.setdefault(section, {}).update(values)
        else:
            target[section] = values
    config = load_config(environments, env, project_dir=ROOT)
    outdir = Path(tempfile.mkdtemp(prefix=f"cdk-{env}-"))
    app = App(outdir=str(outdir), context=FEATURE_FLAGS)
    queue_stack, worker_stack = build(app, config)
    app.synth()

    def read(stack_name: str) -> dict[str, Any]:
        return dict(json.loads((outdir / f"{stack_name}.template.json").read_text()))

    return Synthesized(config, outdir, read(queue_stack.stack_name), read(worker_stack.stack_name))


def synthesize(env: str, **changes: Any) -> Synthesized:
    """``env`` from cdk.json with ``section={key: value}`` changes (None removes a section),
    synthesized once per session."""
    return _synthesize(env, json.dumps(changes, sort_keys=True))


REGION = ENVIRONMENTS["prod"]["region"]
# A queue the producers already use (another account's queue may be consumed too).
EXISTING_QUEUE = {
    "arn": f"arn:aws:sqs:{REGION}:123456789012:orders",
    "dead_letter_queue_arn": f"arn:aws:sqs:{REGION}:123456789012:orders-dlq",
    "kms_key_arn": f"arn:aws:kms:{REGION}:123456789012:key/0123abcd-0123-0123-0123-0123456789ab",
}
# An existing topic in another account of the region, filtered by a message attribute.
SUBSCRIPTION = {
    "topic_arn": f"arn:aws:sns:{REGION}:210987654321:orders-placed",
    "filter_policy": {"type": ["order"]},
}

# Two queues, each consumed by a worker of its own: prod's batch moves into the batch worker,
# and the mails worker runs 2 small tasks at most (96 + 4 processes: prod's cap of 100).
TWO_WORKERS: dict[str, Any] = {
    "batch_window": None,
    "queues": {"batch": {}, "mails": {"max_receive_count": 3}},
    "workers": {
        "batch": {"queues": ["batch"], "batch_windows": [ENVIRONMENTS["prod"]["batch_window"]]},
        "mails": {
            "queues": ["mails"],
            "worker": {"processes": 2, "cpu": 256, "memory_mib": 1024},
            "scaling": {"min_tasks": 1, "max_tasks": 2},
        },
    },
    "monitoring": {"dashboard": True},
}

# A worker on two queues in priority order (issue 20): prod's batch worker consumes high before
# default (each with its own max_receive_count), beside a mails worker on one queue.
WORKER_ON_TWO_QUEUES: dict[str, Any] = {
    **TWO_WORKERS,
    "queues": {"high": {"max_receive_count": 2}, "default": {}, "mails": {"max_receive_count": 3}},
    "workers": {
        **TWO_WORKERS["workers"],
        "batch": {**TWO_WORKERS["workers"]["batch"], "queues": ["high", "default"]},
    },
}

# Settings that change which resources exist or how they are configured, beyond the shipped
# environments: each must scan clean too.
VARIANTS = {
    **{env: (env, {}) for env in sorted(ENVIRONMENTS)},
    "prod-endpoints": (
        "prod",
        {
            "network": {"egress": "endpoints"},
            "worker": {"secrets": {"DB_PASSWORD": "ssm:/app/db"}},
            "queue": {"idempotency_table": True},
        },
    ),
    "prod-nat": ("prod", {"network": {"egress": "nat"}}),
    "prod-insights-dashboard": (
        "prod",
        {"monitoring": {"container_insights": True, "dashboard": True}},
    ),
    "prod-team-image": ("prod", {"worker": {"image": {"repository": "team/app", "tag": "v1"}}}),
    "dev-unencrypted-logs": ("dev", {"worker": {"encrypt_logs": False}}),
    "prod-existing-queue": ("prod", {"queue": EXISTING_QUEUE}),
    "prod-subscribed": ("prod", {"queue": {"subscriptions": [SUBSCRIPTION]}}),
    # Two workers side by side, each on its own queue (issue 20), with the dashboard.
    "prod-two-workers": ("prod", TWO_WORKERS),
    # A worker on two queues in priority order beside a worker on one (issue 20).
    "prod-worker-on-two-queues": ("prod", WORKER_ON_TWO_QUEUES),
    # A worker on a FIFO queue (issue 21), with the dashboard that shows its groups in flight.
    "prod-fifo": (
        "prod",
        {"queue": {"fifo": True, "high_throughput": True}, "monitoring": {"dashboard": True}},
    ),
    "prod-spot-arm64": (
        "prod",
        {
            "worker": {
                "architecture": "arm64",
                "capacity": {"on_demand_base": 1, "spot_weight": 3},
            },
            "scaling": {"max_tasks": 6},
        },
    ),
}


def variant(name: str) -> Synthesized:
    env, changes = VARIANTS[name]
    return synthesize(env, **changes)


@pytest.fixture(scope="session")
def prod() -> Synthesized:
    return synthesize("prod")


@pytest.fixture(scope="session")
def dev() -> Synthesized:
    return synthesize("dev")
