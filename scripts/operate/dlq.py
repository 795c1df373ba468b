"""Peek at the dead-letter queue: counts and a few sample messages, without consuming them.

    queue-worker dlq --env prod
    queue-worker dlq --queue NAME|URL --samples 20 --json

Samples are received (hidden for PEEK_VISIBILITY_SECONDS) and at once made visible again, so
peeking consumes nothing; it does raise each sampled message's receive count by one. Each
sample shows the reason the worker gave and the message's original id on the work queue (the
id its log lines carry: `logs --message-id ID`, the `message-story` query).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from worker.contract import FAILURE_REASON_ATTRIBUTE, SOURCE_MESSAGE_ID_ATTRIBUTE

from scripts import _cli
from scripts._aws import (
    Target,
    add_queue_options,
    describe_counts,
    iso_time,
    queue_counts,
    queue_name,
    release,
)
from scripts._cli import Parser, non_negative_int, positive_int, print_json

HELP = "peek at the DLQ: counts, and samples with the reason and the original message id"
PEEK_VISIBILITY_SECONDS = 30  # long enough to collect all samples before handing them back
DEFAULT_REASON = "maxReceiveCount exceeded"  # SQS moved it: the worker set no reason


def peek(target: Target, url: str, samples: int, preview_chars: int = 120) -> list[dict[str, Any]]:
    """Up to `samples` messages of queue `url`, described; all are visible again on return."""
    received: dict[str, dict[str, Any]] = {}
    try:
        while len(received) < samples:
            response = target.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, samples - len(received)),
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            received.update((message["MessageId"], message) for message in messages)
    finally:
        release(target.sqs, url, [message["ReceiptHandle"] for message in received.values()])
    return [describe(message, preview_chars) for message in received.values()]


def describe(message: dict[str, Any], preview_chars: int) -> dict[str, Any]:
    """The fields an operator looks at: ids, sent time, receive count, reason, body preview.

    `source_message_id` is the id the message had on the work queue: the worker's attribute
    when it dead-lettered the message itself, else the message's own id (SQS keeps the id when
    it moves a message after maxReceiveCount receives).
    """
    attributes = message.get("Attributes", {})
    extra = message.get("MessageAttributes", {})
    reason = extra.get(FAILURE_REASON_ATTRIBUTE, {}).get("StringValue")
    source_id = extra.get(SOURCE_MESSAGE_ID_ATTRIBUTE, {}).get("StringValue")
    body = message.get("Body", "").replace("\n", "\\n")
    preview = body if len(body) <= preview_chars else body[:preview_chars] + "..."
    return {
        "message_id": message["MessageId"],
        "source_message_id": source_id or message["MessageId"],
        "sent_at": iso_time(attributes["SentTimestamp"]) if "SentTimestamp" in attributes else "",
        "receive_count": int(attributes.get("ApproximateReceiveCount", 0)),
        "reason": reason or DEFAULT_REASON,
        "body_preview": preview,
    }


def add_arguments(parser: Parser) -> None:
    """The command line."""
    add_queue_options(parser)
    parser.add_argument(
        "--samples",
        type=non_negative_int,
        default=5,
        help="messages to show (default 5; 0: counts)",
    )
    parser.add_argument(
        "--preview-chars", type=positive_int, default=120, help="body preview length (default 120)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def execute(args: argparse.Namespace) -> int:
    """Print the DLQ's counts and samples."""
    target = Target(args)
    url = target.dlq_url()
    counts = queue_counts(target, url)
    wanted = min(args.samples, counts["visible"])  # asking for more would wait for nothing
    samples = peek(target, url, wanted, args.preview_chars) if wanted else []
    if args.json:
        print_json({"queue": queue_name(url), "queue_url": url, **counts, "samples": samples})
        return 0
    print(describe_counts(queue_name(url), counts))
    for sample in samples:
        print(
            f"- {sample['source_message_id']}  sent {sample['sent_at']}  "
            f"receives {sample['receive_count']}  reason: {sample['reason']}\n"
            f"  {sample['body_preview']}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.dlq`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
