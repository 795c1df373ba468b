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
