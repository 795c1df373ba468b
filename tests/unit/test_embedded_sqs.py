"""The embedded SQS (moto's server, tests/conftest.py) keeps SQS's promise that a received
message goes to one receiver until its visibility timeout ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from moto.sqs.models import Message

from tests.conftest import REGION, QueuePair


def test_concurrent_receivers_never_take_one_message_twice(
    moto_endpoint: str,
    sqs_client: Any,
    make_queue_pair: Callable[..., QueuePair],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four receivers at once, the window between moto's visibility check and its marking
    widened to 0.2 s: one gets the message, and the others' long polls still wait side by
    side (about 1 s in all, not one after the other)."""
    mark_received = Message.mark_received

    def slowly(self: Message, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.2)
        mark_received(self, *args, **kwargs)

    monkeypatch.setattr(Message, "mark_received", slowly)
    pair = make_queue_pair()
    sqs_client.send_message(QueueUrl=pair.url, MessageBody="once")

    def receive(_: int) -> list[dict[str, Any]]:
        client = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
        response = client.receive_message(
            QueueUrl=pair.url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=30
        )
        return list(response.get("Messages", []))

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        received = [message for batch in pool.map(receive, range(4)) for message in batch]
    assert [m["Body"] for m in received] == ["once"]
    assert time.monotonic() - started < 3
