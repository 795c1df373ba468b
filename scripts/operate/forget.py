"""Delete chosen DLQ messages: one, some, or every one with a reason, after confirmation.

    queue-worker forget --env prod ID [ID...]          # asks you to type the count or yes
    queue-worker forget --env prod --reason "maxReceiveCount exceeded" --yes
    queue-worker forget --queue NAME|URL ID --dry-run --json

Horizon's `queue:forget ID` for SQS (`purge --dlq` forgets them all). It reads the whole DLQ as
`dlq --by-reason` does (each read raises every message's receive count by one; --max-messages
bounds it), lists the chosen messages and asks on the terminal to type their count or `yes`.
--yes skips the question; without a terminal and without --yes it refuses (exit 1), as `purge`
does. While it asks, the messages are visible again; once confirmed it reads the DLQ again and
deletes those same messages (by their DLQ id): one that arrived meanwhile is not deleted, even
with the reason, and one that left meanwhile is counted as gone. An ID that names no message is
an error naming every such ID, and nothing is deleted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from scripts import _cli
from scripts._aws import Target, queue_name
from scripts._cli import Interrupted, OpsError, Parser, confirm, uninterrupted
from scripts.operate import _chosen
from scripts.operate.dlq import Scan, limit_note, read_all

HELP = "delete chosen DLQ messages (by id, or all with a reason), after confirmation"


def add_arguments(parser: Parser) -> None:
    """The command line."""
    _chosen.add_arguments(parser, "forget")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def delete(sqs: Any, url: str, scan: Scan, messages: Sequence[dict[str, Any]]) -> set[str]:
    """Delete `messages` (of `scan`) from queue `url`, 10 at a time; the ids deleted, which
    leave `scan`. OpsError after the others when SQS refuses some (they stay)."""
    deleted: set[str] = set()
    failed: list[dict[str, Any]] = []
    try:
        for start in range(0, len(messages), 10):
            batch = messages[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ]
            with uninterrupted():
                response = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
                for ok in response.get("Successful", []):
                    message_id = batch[int(ok["Id"])]["MessageId"]
                    deleted.add(message_id)
                    scan.messages.pop(message_id, None)
            failed += response.get("Failed", [])
    except KeyboardInterrupt:
        raise Interrupted(f"deleted {len(deleted)} of {len(messages)} (the rest stay)") from None
    if failed:
        first = failed[0]
        raise OpsError(
            f"deleted {len(deleted)} of {len(messages)}; {len(failed)} stay in the DLQ "
            f"({first.get('Code', '')}: {first.get('Message', '')})"
        )
    return deleted


def execute(args: argparse.Namespace) -> int:
    """Forget the chosen messages after confirmation; print them (or, --dry-run, them only)."""
    _chosen.check(args)
    target = Target(args)
    url = target.dlq_url()
    name = queue_name(url)
    with read_all(target, url, args.max_messages) as scan:
        chosen = _chosen.choose(scan, args, "nothing deleted")
        summaries = [_chosen.summary(message) for message in chosen]
        deleted: set[str] = set()
        if args.yes and not args.dry_run:
            deleted = delete(target.sqs, url, scan, chosen)
    gone, where = 0, ""
    if not args.yes and not args.dry_run:
        out = sys.stderr if args.json else sys.stdout
        _chosen.listing(f"{len(chosen)} messages of {name} to forget:", summaries, out)
        question = f"type {len(chosen)} or yes to delete them: "
        if not confirm(question, {str(len(chosen)), "yes"}, "forget", on_stderr=args.json):
            raise OpsError("aborted: not confirmed; nothing deleted")
        wanted = {message["MessageId"] for message in chosen}
        with read_all(target, url, args.max_messages) as again:
            still = [m for message_id, m in again.messages.items() if message_id in wanted]
            deleted = delete(target.sqs, url, again, still)
        gone = len(chosen) - len(deleted)
        where = (
            " had left the DLQ meanwhile"
            if again.complete
            else f" not read again{limit_note(again)}"
        )
    if not args.dry_run:
        summaries = [s for s in summaries if s["message_id"] in deleted]
    if args.json:
        _chosen.report(args, scan, url, "forgot", summaries, gone=gone)
        return 0
    if args.dry_run or args.yes:  # what was not listed before the question
        verb = "dry run: would forget" if args.dry_run else "forgot"
        _chosen.listing(f"{verb} {len(summaries)} messages of {name}:", summaries)
    else:
        left = f" ({gone}{where})" if gone else ""
        print(f"forgot {len(summaries)} messages of {name}{left}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.forget`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
