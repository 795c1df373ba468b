"""Peek at the dead-letter queue: counts and a few sample messages, without consuming them.

    python -m scripts.dlq --env prod
    python -m scripts.dlq --queue-url URL --samples 20 --json

Samples are received (hidden for PEEK_VISIBILITY_SECONDS) and at once made visible again, so
peeking consumes nothing; it does raise each sampled message's receive count by one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from scripts._sqs import (
    Target,
    describe_counts,
    iso_time,
    make_parser,
    non_negative_int,
    positive_int,
    queue_counts,
    queue_name,
    release,
    run,
)

PEEK_VISIBILITY_SECONDS = 30  # long enough to collect all samples before handing them back
DEFAULT_REASON = "maxReceiveCount exceeded"  # the worker sets `failure_reason` when it dead-letters


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
    """The fields an operator looks at: id, sent time, receive count, reason, body preview."""
    attributes = message.get("Attributes", {})
    reason = message.get("MessageAttributes", {}).get("failure_reason", {}).get("StringValue")
    body = message.get("Body", "").replace("\n", "\\n")
    preview = body if len(body) <= preview_chars else body[:preview_chars] + "..."
    return {
        "message_id": message["MessageId"],
        "sent_at": iso_time(attributes["SentTimestamp"]) if "SentTimestamp" in attributes else "",
        "receive_count": int(attributes.get("ApproximateReceiveCount", 0)),
        "reason": reason or DEFAULT_REASON,
        "body_preview": preview,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = make_parser("dlq", __doc__.splitlines()[0] if __doc__ else "")
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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the DLQ's counts and samples."""
    args = parse_args(argv)
    target = Target(args)
    url = target.dlq_url()
    counts = queue_counts(target, url)
    wanted = min(args.samples, counts["visible"])  # asking for more would wait for nothing
    samples = peek(target, url, wanted, args.preview_chars) if wanted else []
    if args.json:
        report = {"queue": queue_name(url), "queue_url": url, **counts, "samples": samples}
        print(json.dumps(report, indent=2))
        return 0
    print(describe_counts(queue_name(url), counts))
    for sample in samples:
        print(
            f"- {sample['message_id']}  sent {sample['sent_at']}  "
            f"receives {sample['receive_count']}  reason: {sample['reason']}\n"
            f"  {sample['body_preview']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
