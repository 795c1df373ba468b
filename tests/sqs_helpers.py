"""Small SQS helpers shared by the test layers."""

from __future__ import annotations

from typing import Any


def queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of queue ``url``."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )
