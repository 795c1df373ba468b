"""Small SQS helpers for the operator scripts' tests."""

from __future__ import annotations

from typing import Any


def send(sqs: Any, url: str, bodies: list[str], attributes: dict[str, Any] | None = None) -> None:
    """Put `bodies` on queue `url` (each with the same message attributes, if given)."""
    for body in bodies:
        extra = {"MessageAttributes": attributes} if attributes else {}
        sqs.send_message(QueueUrl=url, MessageBody=body, **extra)


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Receive (and delete) every visible message of queue `url`."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
