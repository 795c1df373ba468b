"""Move messages from the dead-letter queue back to the work queue.

    queue-worker redrive --env prod                       # SQS move task, progress shown
    queue-worker redrive --env prod --max-per-second 20   # gentler on the handlers
    queue-worker redrive --queue NAME|URL --method copy --limit 100

Method `move` runs the SQS message move task (StartMessageMoveTask) and polls its progress.
Method `copy` receives from the DLQ, sends to the queue (same body and message attributes) and
deletes from the DLQ only what was sent: a failure can duplicate a message, never lose one. It
copies only the messages the DLQ held when it started (at most its count then): what reaches
the DLQ while it runs, such as the copies a worker dead-letters again at once, stays there, so
it ends even while the fleet runs, and says how many it left.
`auto` (the default) uses the move task and falls back to copy where the move task is not
supported (e.g. an emulator), or when --limit is given (the move task cannot stop at a count).

On a FIFO queue (`*.fifo`) the move task keeps each message's group; a copy sends each message
with its own `MessageGroupId`, in the order received (SQS hands a group out in order),
deduplicated by its DLQ message id (`fifo_fields`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from worker.contract import SOURCE_MESSAGE_ID_ATTRIBUTE, is_fifo_queue

from scripts import _cli
from scripts._aws import (
    Pacer,
    Target,
    add_queue_options,
    queue_counts,
    queue_name,
    release,
)
from scripts._cli import (
    Interrupted,
    OpsError,
    Parser,
    UsageError,
    error_code,
    positive_int,
    progress,
    uninterrupted,
)

HELP = "move messages from the DLQ back to the work queue"

COPY_VISIBILITY_SECONDS = 60  # a received DLQ message stays hidden this long while it is copied
MAX_MOVE_RATE = 500  # StartMessageMoveTask's MaxNumberOfMessagesPerSecond upper bound
# Error codes meaning "this endpoint has no move task". "500" is what moto's server answers
# (an HTML error page, no AWS error code); real AWS names its internal errors differently.
MOVE_TASK_UNSUPPORTED = {
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidAction",
    "NotImplemented",
    "500",
}
MESSAGE_ATTRIBUTE_KEYS = ("DataType", "StringValue", "BinaryValue")


def move_task(
    sqs: Any, dlq_arn: str, queue_arn: str, max_per_second: int | None, poll_seconds: float
) -> int:
    """Run an SQS message move task DLQ -> queue; poll until it ends; return messages moved.

    Raises NotImplementedError or ClientError as StartMessageMoveTask does (see `is_unsupported`).
    """
    request: dict[str, Any] = {"SourceArn": dlq_arn, "DestinationArn": queue_arn}
    if max_per_second:
        request["MaxNumberOfMessagesPerSecond"] = max_per_second
    handle = sqs.start_message_move_task(**request)["TaskHandle"]
    print(f"redrive: started move task {handle}", file=sys.stderr)
    moved = 0
    with progress("redrive (move task)", None) as bar:
        try:
            while True:
                time.sleep(poll_seconds)
                # At most one task runs per source; the newest is listed first.
                task = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)["Results"][0]
                total = task.get("ApproximateNumberOfMessagesToMove")
                if total is not None:
                    bar.total = int(total)
                moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
                bar.advance(moved - bar.done)
                if task["Status"] == "COMPLETED":
                    return moved
                if task["Status"] in ("FAILED", "CANCELLED"):
                    reason = task.get("FailureReason", "no reason given")
                    raise OpsError(f"move task {task['Status'].lower()} after {moved}: {reason}")
        except KeyboardInterrupt:
            raise Interrupted(
                f"moved {bar.of_total()} so far; the move task keeps running: stop it with "
                f"`aws sqs cancel-message-move-task --task-handle {handle}`"
            ) from None


def is_unsupported(error: Exception) -> bool:
    """Whether StartMessageMoveTask failed because the endpoint does not implement it."""
    if isinstance(error, NotImplementedError):  # moto in-process
        return True
    return isinstance(error, ClientError) and error_code(error) in MOVE_TASK_UNSUPPORTED


@dataclass(frozen=True)
class Copied:
    """What a copy did: `moved` messages to the queue; `left` in the DLQ because they reached it
    after the copy started (among them copies it had moved that failed again at once)."""

    moved: int
    left: int


# How much later than the copy's start SQS may date a message that was there before it.
CLOCK_MARGIN_MS = 1000


def copy_messages(
    sqs: Any,
    dlq_url: str,
    queue_url: str,
    limit: int | None = None,
    rate: float = 0,
    at_start: int | None = None,
) -> Copied:
    """Copy-then-delete DLQ -> queue, 10 at a time, the messages the DLQ held when it started.

    At most `at_start` (the DLQ's approximate visible count at the start; counted here when
    None) and `limit` messages; `rate` messages a second at most (0: no limit). A message sent
    after the start, or the DLQ copy of a message this copy moved (its id, or the source id a
    worker's copy names), is left in the DLQ: a worker that dead-letters at once (exit 65)
    would otherwise get it back round and round, and the copy would never end. It ends at the
    count, at a receive that is empty or holds only messages left before, and then makes the
    messages it left visible again.
    """
    if at_start is None:
        at_start = _visible(sqs, dlq_url)
    total = min(limit, at_start) if limit else at_start
    copy = _Copy(sqs, dlq_url, queue_url)
    with progress("redrive (copy)", total) as bar:
        try:
            copy.run(total, rate, bar)
        except KeyboardInterrupt:
            raise Interrupted(f"moved {bar.of_total()} (the rest stay in the DLQ)") from None
        finally:
            release(sqs, dlq_url, list(copy.left.values()))
    return Copied(copy.moved, len(copy.left))


def _visible(sqs: Any, url: str) -> int:
    """The approximate number of visible messages in queue `url`."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


class _Copy:
    """The copy loop's state: the ids it sent to the queue, the messages it leaves."""

    def __init__(self, sqs: Any, dlq_url: str, queue_url: str) -> None:
        self.sqs, self.dlq_url, self.queue_url = sqs, dlq_url, queue_url
        self.started_ms = int(time.time() * 1000)
        self.moved = 0
        self.sent_ids: set[str] = set()  # the new ids on the queue of what it moved
        self.left: dict[str, str] = {}  # message id -> receipt handle, hidden while it runs

    def run(self, total: int, rate: float, bar: Any) -> None:
        pacer = Pacer(rate)
        while self.moved < total:
            pacer.wait(self.moved)
            messages = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=min(10, total - self.moved),
                VisibilityTimeout=COPY_VISIBILITY_SECONDS,
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["SentTimestamp", "MessageGroupId"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not any(m["MessageId"] not in self.left for m in messages):
                return  # empty, or only messages it left before: nothing older is there
            wanted = []
            for message in messages:
                if self._arrived_since(message):
                    self.left[message["MessageId"]] = message["ReceiptHandle"]
                else:
                    wanted.append(message)
            if wanted:
                with uninterrupted():
                    sent = copy_batch(self.sqs, self.dlq_url, self.queue_url, wanted)
                    self.sent_ids.update(sent.values())
                    self.moved += len(sent)
                    bar.advance(len(sent))

    def _arrived_since(self, message: dict[str, Any]) -> bool:
        """Whether `message` reached the DLQ after the copy started: sent since, or a copy
        of (SQS's redrive keeps the id) or by a worker (its source id) of one it moved."""
        source = message.get("MessageAttributes", {}).get(SOURCE_MESSAGE_ID_ATTRIBUTE, {})
        if {message["MessageId"], source.get("StringValue")} & self.sent_ids:
            return True
        sent_ms = message.get("Attributes", {}).get("SentTimestamp")
        # SQS's clock against this machine's: a message of the last second before the start may
        # carry a later time. Within the margin it is copied (the start count still bounds the
        # copy; the ids above catch every copy of what it moved).
        return sent_ms is not None and int(sent_ms) > self.started_ms + CLOCK_MARGIN_MS


def fifo_fields(message: dict[str, Any]) -> dict[str, str]:
    """What a copy of DLQ `message` (received with its MessageGroupId) sends to a FIFO queue:
    its group, and its DLQ message id as deduplication id. Not the deduplication id it carries
    (SQS's redrive keeps the producer's, or the body's hash; a worker's copy has the message's
    id): SQS drops, for 5 minutes, a send with an id the queue has seen, so a message that
    failed at once, or was retried and failed again, would vanish. The DLQ id is new for each
    dead-lettering, and a copy sent again after a failed delete lands once."""
    return {
        "MessageGroupId": message.get("Attributes", {}).get("MessageGroupId", ""),
        "MessageDeduplicationId": message["MessageId"],
    }


def copy_batch(
    sqs: Any, dlq_url: str, queue_url: str, messages: Sequence[dict[str, Any]]
) -> dict[str, str]:
    """Send `messages` (at most 10, as received from the DLQ: body and message attributes) to
    the queue, then delete from the DLQ what was sent; {DLQ message id: its new id on the queue}.

    A send that fails leaves its message in the DLQ, visible again, and raises OpsError once the
    others are deleted; a delete that fails leaves a sent message in both queues (a warning):
    a duplicate, never a loss. The kit's own attributes travel with the copy (the worker takes
    them off before the handler sees the message). To a FIFO queue, each goes with
    `fifo_fields`, in the order given (SQS keeps a batch's order within a group).
    """
    fifo = is_fifo_queue(queue_url)
    entries = []
    for index, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
        if fifo:
            entry.update(fifo_fields(message))
        if message.get("MessageAttributes"):
            entry["MessageAttributes"] = {
                name: {key: value[key] for key in MESSAGE_ATTRIBUTE_KEYS if key in value}
                for name, value in message["MessageAttributes"].items()
            }
        entries.append(entry)
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    successful = response.get("Successful", [])
    sent = {messages[int(ok["Id"])]["MessageId"]: ok["MessageId"] for ok in successful}
    if sent:
        handles = [messages[int(ok["Id"])]["ReceiptHandle"] for ok in successful]
        deleted = sqs.delete_message_batch(
            QueueUrl=dlq_url,
            Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(handles)],
        )
        if deleted.get("Failed"):
            count = len(deleted["Failed"])
            print(f"warning: {count} copied message(s) stay in the DLQ too", file=sys.stderr)
    failed = response.get("Failed", [])
    if failed:
        release(sqs, dlq_url, [messages[int(entry["Id"])]["ReceiptHandle"] for entry in failed])
        first = failed[0]
        raise OpsError(
            f"could not send {len(failed)} message(s) to the queue; they stay in the DLQ "
            f"({first['Code']}: {first.get('Message', '')})"
        )
    return sent


def add_arguments(parser: Parser) -> None:
    """The command line; --limit does not combine with --method move."""
    add_queue_options(parser)
    parser.add_argument(
        "--method",
        choices=("auto", "move", "copy"),
        default="auto",
        help="move task, copy, or auto: move task with fallback to copy (default: auto)",
    )
    parser.add_argument(
        "--max-per-second",
        type=positive_int,
        help=f"at most this many messages a second (1 to {MAX_MOVE_RATE}; default: SQS's pace)",
    )
    parser.add_argument("--limit", type=positive_int, help="copy at most this many (copy only)")
    parser.add_argument(
        "--poll-seconds", type=float, default=2.0, help="move task progress interval (default 2)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would move; move none")


def check(args: argparse.Namespace) -> None:
    """Options that do not go together (exit 2)."""
    if args.max_per_second and args.max_per_second > MAX_MOVE_RATE:
        raise UsageError(f"--max-per-second must be at most {MAX_MOVE_RATE}")
    if args.limit and args.method == "move":
        raise UsageError("--limit needs --method copy (the move task cannot stop at a count)")


def execute(args: argparse.Namespace) -> int:
    """Redrive; print how many messages moved (or would move, with --dry-run)."""
    check(args)
    target = Target(args)
    queue_url, dlq_url = target.queue_url(), target.dlq_url()
    if queue_url == dlq_url:
        raise OpsError("the queue and the DLQ are the same queue")
    route = f"{queue_name(dlq_url)} to {queue_name(queue_url)}"
    method = "copy" if args.limit else args.method
    waiting = queue_counts(target, dlq_url)["visible"]
    if args.dry_run:
        count = min(waiting, args.limit) if args.limit else waiting
        print(f"dry run: would move about {count} messages from {route} (method {method})")
        return 0
    if method != "copy":
        try:
            dlq_arn, queue_arn = target.arn(dlq_url), target.arn(queue_url)
            moved = move_task(
                target.sqs, dlq_arn, queue_arn, args.max_per_second, args.poll_seconds
            )
        except (NotImplementedError, ClientError) as error:
            if not is_unsupported(error):
                raise
            if method == "move":
                raise OpsError("this endpoint has no SQS move task; use --method copy") from None
            print("redrive: move task not supported here; copying instead", file=sys.stderr)
        else:
            print(f"moved {moved} messages from {route} (move task)")
            return 0
    copied = copy_messages(
        target.sqs, dlq_url, queue_url, args.limit, args.max_per_second or 0, waiting
    )
    left = f"; left {copied.left} that reached the DLQ after it started" if copied.left else ""
    print(f"moved {copied.moved} messages from {route} (copy){left}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.redrive`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
