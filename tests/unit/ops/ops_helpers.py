"""Small SQS helpers for the operator scripts' tests."""

from __future__ import annotations

import io
from typing import Any


def send(sqs: Any, url: str, bodies: list[str], attributes: dict[str, Any] | None = None) -> None:
    """Put `bodies` on queue `url` (each with the same message attributes, if given)."""
    for body in bodies:
        extra = {"MessageAttributes": attributes} if attributes else {}
        sqs.send_message(QueueUrl=url, MessageBody=body, **extra)


class Terminal(io.StringIO):
    """A stdin that claims to be a terminal and holds what the operator types."""

    def isatty(self) -> bool:
        return True


def drain_fifo(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Receive (and delete) every message of FIFO queue `url` in the order received, each with
    its system attributes (MessageGroupId, MessageDeduplicationId, SequenceNumber...)."""
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages
