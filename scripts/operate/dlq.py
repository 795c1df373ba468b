"""Peek at the dead-letter queue: counts and a few sample messages, without consuming them.

    queue-worker dlq --env prod
    queue-worker dlq --queue NAME|URL --samples 20 --json
    queue-worker dlq --env prod --by-reason           # every message, counted by reason

Samples are received (hidden for PEEK_VISIBILITY_SECONDS) and at once made visible again, so
peeking consumes nothing; it does raise each sampled message's receive count by one. Each
sample shows the reason the worker gave and the message's original id on the work queue (the
id its log lines carry: `logs --message-id ID`, the `message-story` query).

--by-reason reads the whole DLQ the same way, instead of samples, and prints each reason with
its count, largest first, and the first --ids message ids of each (`retry --reason TEXT` and
`forget --reason TEXT` take a reason exactly as printed). SQS hands out at most 10 messages a
receive and cannot list a queue, so it receives 10 at a time, keeping what it read hidden for
120 s, until a receive brings no message it has not seen, or it has read --max-messages or for
90 s (then it says so: the DLQ may hold more). Each read raises every message's receive count
by one.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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

HELP = (
    "peek at the DLQ: counts, and samples with the reason and the original message id; "
    "--by-reason: every message counted by reason"
)
PEEK_VISIBILITY_SECONDS = 30  # long enough to collect all samples before handing them back
DEFAULT_REASON = "maxReceiveCount exceeded"  # SQS moved it: the worker set no reason
SCAN_VISIBILITY_SECONDS = 120  # a full read hides what it read this long (released at its end)
SCAN_READ_SECONDS = 90  # and ends by then, before what it read first can be visible again
DEFAULT_MAX_MESSAGES = 1000  # a full read stops here (100 receives)
DEFAULT_IDS_SHOWN = 5  # message ids printed per reason


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


@dataclass
class Scan:
    """The messages a full read of a queue holds hidden, by their id on that queue (as last
    received: its receipt handle is the one to delete with). A command that deletes one removes
    it here, so that the end of the read does not hand it back."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    read: int = 0  # how many it read (messages deleted since stay counted)
    stopped_at: str | None = None  # what ended it before the queue's end: it may hold more

    @property
    def complete(self) -> bool:
        """Whether it read until a receive brought nothing new (not stopped at a bound)."""
        return self.stopped_at is None


@contextmanager
def read_all(target: Target, url: str, max_messages: int = DEFAULT_MAX_MESSAGES) -> Iterator[Scan]:
    """Every message of queue `url` (at most `max_messages`), hidden while the block runs and
    made visible again when it ends, whatever happens in it.

    Receives 10 at a time (SQS's most; it cannot list a queue) with a one-second wait (a long
    poll asks every SQS server) until a receive brings no message it has not seen. It stops
    earlier (``stopped_at``) when it holds `max_messages`, or after SCAN_READ_SECONDS: later,
    what it read first could be visible again and seem all there is. Each receive raises the
    receive count of what it got.
    """
    scan = Scan()
    started = time.monotonic()
    try:
        while True:
            room = max_messages - len(scan.messages)
            if room <= 0:
                scan.stopped_at = f"--max-messages {max_messages}"
                break
            if scan.messages and time.monotonic() - started > SCAN_READ_SECONDS:
                scan.stopped_at = f"{SCAN_READ_SECONDS} s of reading"
                break
            messages = target.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, room),
                VisibilityTimeout=SCAN_VISIBILITY_SECONDS,
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            new = [message for message in messages if message["MessageId"] not in scan.messages]
            scan.messages.update((message["MessageId"], message) for message in messages)
            if not new:
                break
        scan.read = len(scan.messages)
        yield scan
    finally:
        release(target.sqs, url, [message["ReceiptHandle"] for message in scan.messages.values()])


def by_reason(described: Sequence[dict[str, Any]], ids_shown: int) -> list[dict[str, Any]]:
    """Described messages grouped by reason, largest group first (then by reason): each with
    its count and the ids of its first `ids_shown` messages, oldest first (then by id)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for message in sorted(described, key=lambda m: (m["sent_at"], m["source_message_id"])):
        groups.setdefault(message["reason"], []).append(message)
    return [
        {
            "reason": reason,
            "count": len(messages),
            "messages": [
                {key: m[key] for key in ("source_message_id", "message_id")}
                for m in messages[:ids_shown]
            ],
        }
        for reason, messages in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    ]


def describe(message: dict[str, Any], preview_chars: int = 120) -> dict[str, Any]:
    """The fields an operator looks at: ids, sent time, receive count, reason, body preview;
    on a FIFO DLQ also the message's group (`message_group_id`).

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
    described = {
        "message_id": message["MessageId"],
        "source_message_id": source_id or message["MessageId"],
        "sent_at": iso_time(attributes["SentTimestamp"]) if "SentTimestamp" in attributes else "",
        "receive_count": int(attributes.get("ApproximateReceiveCount", 0)),
        "reason": reason or DEFAULT_REASON,
        "body_preview": preview,
    }
    if "MessageGroupId" in attributes:  # a FIFO DLQ's message
        described["message_group_id"] = attributes["MessageGroupId"]
    return described


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
    parser.add_argument(
        "--by-reason",
        action="store_true",
        help="read every message (not samples) and count them by reason, largest first; "
        "raises each message's receive count by one",
    )
    parser.add_argument(
        "--ids",
        type=non_negative_int,
        metavar="N",
        default=DEFAULT_IDS_SHOWN,
        help=f"with --by-reason: message ids shown per reason (default {DEFAULT_IDS_SHOWN})",
    )
    add_max_messages_option(parser, "with --by-reason: ")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def add_max_messages_option(parser: Parser, when: str = "") -> None:
    """--max-messages: the bound of a full read (`when`: what its help starts with)."""
    parser.add_argument(
        "--max-messages",
        type=positive_int,
        metavar="N",
        default=DEFAULT_MAX_MESSAGES,
        help=f"{when}read at most this many DLQ messages (default {DEFAULT_MAX_MESSAGES})",
    )


def limit_note(scan: Scan) -> str:
    """What a text line adds when the read stopped before the DLQ's end ('' otherwise)."""
    if scan.complete:
        return ""
    return f" (stopped at {scan.stopped_at}: the DLQ may hold more)"


def execute(args: argparse.Namespace) -> int:
    """Print the DLQ's counts and samples, or (--by-reason) every message counted by reason."""
    target = Target(args)
    url = target.dlq_url()
    if args.by_reason:
        return print_by_reason(target, url, args)
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


def print_by_reason(target: Target, url: str, args: argparse.Namespace) -> int:
    """dlq --by-reason: read the whole DLQ, print its messages counted by reason."""
    with read_all(target, url, args.max_messages) as scan:
        described = [describe(message) for message in scan.messages.values()]
    groups = by_reason(described, args.ids)
    if args.json:
        print_json(
            {
                "queue": queue_name(url),
                "queue_url": url,
                "read": len(described),
                "max_messages": args.max_messages,
                "complete": scan.complete,
                "stopped_at": scan.stopped_at,
                "reasons": groups,
            }
        )
        return 0
    print(
        f"{queue_name(url)}: read {len(described)} messages, {len(groups)} reasons"
        f"{limit_note(scan)}"
    )
    width = len(str(groups[0]["count"])) if groups else 1
    for group in groups:
        print(f"{group['count']:>{width}}  {group['reason']}")
        for message in group["messages"]:
            print(f"{'':>{width}}    {message['source_message_id']}")
        if group["count"] > len(group["messages"]):
            print(f"{'':>{width}}    ... and {group['count'] - len(group['messages'])} more")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.dlq`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
