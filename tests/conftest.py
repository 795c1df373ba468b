"""Fixtures shared by every test layer.

Nothing here, nor anywhere in the suite, may reach real AWS: credentials are fake and every
client points at moto (in-process or its server on loopback).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from _pytest.nodeid import NodeId
from moto.server import ThreadedMotoServer
from moto.sqs.models import Queue as SQSQueue
from moto.sqs.models import SQSBackend

REGION = "ap-northeast-1"

# Fake credentials before any boto3 client exists; a stray real call fails on auth.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
)
os.environ.pop("AWS_PROFILE", None)
# jsii (aws-cdk-lib) runs on the venv's Node 24, not the machine's end-of-life Node 20.
os.environ["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"


def xdist_groups(item: pytest.Item) -> str | None:
    """The `@name` suffix xdist's ``--dist loadgroup`` gives an item of ``xdist_group`` marks
    (their names sorted and joined by `_`, as pytest-xdist names them), or None."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return "@" + "_".join(sorted(names)) if names else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each ``xdist_group`` on one worker. pytest-xdist 3.8 groups by the `@name` it
    appends to a worker's node ids through ``item._nodeid``, which pytest 9.2 no longer reads
    (a node id is ``item._id``): every group was spread over both workers, and each worker
    built the group's session fixtures (the docs run's sandbox, the PHP images). Here the
    suffix goes where pytest 9.2 reads it; a pytest or xdist that already has it is left
    alone, and one where it does not take fails the run rather than split the groups."""
    if not getattr(config.option, "loadgroup", False):  # set on xdist's loadgroup workers
        return
    for item in items:
        suffix = xdist_groups(item)
        if suffix is None or item.nodeid.endswith(suffix):
            continue
        item._id = NodeId.parse(item.nodeid + suffix)
        assert item.nodeid.endswith(suffix), f"{item.nodeid}: xdist's group suffix not taken"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_RECEIVE_LOCK = threading.Lock()


def sqs_receives_atomically() -> None:
    """Make moto's ReceiveMessage pick its messages atomically, as SQS does.

    moto's threaded server runs two receives of one queue at once, and each scans the queue
    for visible messages and then marks them received: two receivers can both take one
    message (seen at 8 processes in CI: a job ran twice, on receive counts 1 and 2, within
    its visibility timeout). The scans are serialized here by one lock, which a receive
    gives up while it long-polls (moto's ``Queue.wait_for_messages``), so receives still
    wait side by side. Idempotent; applied by ``moto_endpoint``."""
    if getattr(SQSBackend.receive_message, "atomic", False):
        return
    receive, wait = SQSBackend.receive_message, SQSQueue.wait_for_messages

    def receive_atomically(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _RECEIVE_LOCK:
            return receive(self, *args, **kwargs)

    def wait_unlocked(self: Any, timeout: int) -> None:
        _RECEIVE_LOCK.release()
        try:
            wait(self, timeout)
        finally:
            _RECEIVE_LOCK.acquire()

    receive_atomically.atomic = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_atomically  # type: ignore[method-assign]
    SQSQueue.wait_for_messages = wait_unlocked  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on loopback for the whole session (fails loudly when it cannot start),
    its SQS receives atomic (sqs_receives_atomically)."""
    sqs_receives_atomically()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def sqs_client(moto_endpoint: str) -> Any:
    """A boto3 SQS client against the session's moto server."""
    return boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)


@dataclass(frozen=True)
class QueuePair:
    """A work queue and its dead-letter queue, created like the queue stack creates them."""

    url: str
    arn: str
    dlq_url: str
    dlq_arn: str


@pytest.fixture
def make_queue_pair(sqs_client: Any) -> Callable[..., QueuePair]:
    """Factory: a fresh, uniquely named queue + DLQ with redrive after `max_receive_count`;
    `fifo`: both FIFO (``*.fifo``), the work queue with content-based deduplication, the DLQ
    without (a copy sent there must carry its deduplication id)."""

    def make(
        *, max_receive_count: int = 3, visibility_timeout: int = 30, fifo: bool = False
    ) -> QueuePair:
        name = f"work-{uuid.uuid4().hex[:10]}"
        suffix = ".fifo" if fifo else ""
        fifo_attributes = {"FifoQueue": "true"} if fifo else {}
        dlq_url = sqs_client.create_queue(
            QueueName=f"{name}-dlq{suffix}", Attributes=fifo_attributes
        )["QueueUrl"]
        dlq_arn = sqs_client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        if fifo:
            fifo_attributes["ContentBasedDeduplication"] = "true"
        url = sqs_client.create_queue(
            QueueName=name + suffix,
            Attributes={
                **fifo_attributes,
                "VisibilityTimeout": str(visibility_timeout),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
                ),
            },
        )["QueueUrl"]
        arn = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return QueuePair(url=url, arn=arn, dlq_url=dlq_url, dlq_arn=dlq_arn)

    return make
