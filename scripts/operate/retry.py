"""Send chosen DLQ messages back to the work queue: one, some, or every one with a reason.

    queue-worker retry --env prod ID [ID...]          # a DLQ id or an original id
    queue-worker retry --env prod --reason "maxReceiveCount exceeded" --dry-run
    queue-worker retry --queue NAME|URL ID --json

Horizon's `queue:retry ID` for SQS (`redrive` is `queue:retry all`). It reads the whole DLQ as
`dlq --by-reason` does (each read raises every message's receive count by one; --max-messages
bounds it), then sends each chosen message to the work queue with its body and message
attributes, as `redrive --method copy` does, and deletes it from the DLQ only after the send
succeeded: a crash between the two leaves the message in both queues (the job may run twice),
never in neither. An ID that names no message is an error naming every such ID, and nothing
moves. The copy starts again with receive count 1 and a new id on the work queue, printed
(`logs --message-id NEW_ID`); the worker takes the kit's failure attributes off before the
handler sees it. On a FIFO queue each copy keeps its group, is sent in its group's order (as
read) and is deduplicated by its DLQ message id (`redrive.fifo_fields`). SQS hands out none of
a group's messages while some of it are hidden, so a read of a FIFO DLQ sees of each group
only what its first receive gave: run it again for the rest (or `redrive`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from worker.contract import is_fifo_queue

from scripts import _cli
from scripts._aws import Target, queue_name
from scripts._cli import Interrupted, OpsError, Parser, uninterrupted
from scripts.operate import _chosen
from scripts.operate.dlq import Scan, read_all
from scripts.operate.redrive import copy_batch

HELP = "send chosen DLQ messages (by id, or all with a reason) back to the work queue"


def add_arguments(parser: Parser) -> None:
    """The command line."""
    _chosen.add_arguments(parser, "retry")


def send_back(
    sqs: Any, dlq_url: str, queue_url: str, scan: Scan, chosen: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Copy `chosen` (messages of `scan`) to the queue 10 at a time, each deleted from the DLQ
    once sent (redrive.copy_batch); their summaries with the new ids. What is sent leaves
    `scan`, so the end of the read does not hand it back. To a FIFO queue they go in the order
    read (SQS hands out each group in order; moto's SequenceNumber is not ordered)."""
    if is_fifo_queue(queue_url):
        read = {message_id: index for index, message_id in enumerate(scan.messages)}
        chosen = sorted(chosen, key=lambda message: read[message["MessageId"]])
    done: list[dict[str, Any]] = []
    try:
        for start in range(0, len(chosen), 10):
            batch = chosen[start : start + 10]
            with uninterrupted():
                try:
                    sent = copy_batch(sqs, dlq_url, queue_url, batch)
                except OpsError as error:
                    raise OpsError(f"retried {len(done)} of {len(chosen)}, then: {error}") from None
                for message in batch:
                    if message["MessageId"] in sent:
                        scan.messages.pop(message["MessageId"], None)
                        done.append(_chosen.summary(message, sent[message["MessageId"]]))
    except KeyboardInterrupt:
        raise Interrupted(
            f"retried {len(done)} of {len(chosen)} (the rest stay in the DLQ)"
        ) from None
    return done


def execute(args: argparse.Namespace) -> int:
    """Retry the chosen messages; print them with their new ids (or, --dry-run, them only)."""
    _chosen.check(args)
    target = Target(args)
    queue_url, dlq_url = target.queue_url(), target.dlq_url()
    if queue_url == dlq_url:
        raise OpsError("the queue and the DLQ are the same queue")
    with read_all(target, dlq_url, args.max_messages) as scan:
        chosen = _chosen.choose(scan, args, "nothing retried")
        if args.dry_run:
            summaries = [_chosen.summary(message) for message in chosen]
        else:
            summaries = send_back(target.sqs, dlq_url, queue_url, scan, chosen)
    if args.json:
        _chosen.report(args, scan, dlq_url, "retried", summaries, queue=queue_name(queue_url))
        return 0
    route = f"{queue_name(dlq_url)} to {queue_name(queue_url)}"
    verb = "dry run: would retry" if args.dry_run else "retried"
    _chosen.listing(f"{verb} {len(summaries)} messages from {route}:", summaries)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.retry`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
