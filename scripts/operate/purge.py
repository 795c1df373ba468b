"""Delete every message of the work queue (or, with --dlq, of the dead-letter queue).

    queue-worker purge --env dev --dlq          # asks you to type the queue's name
    queue-worker purge --queue NAME|URL --yes   # no question (scripts, CI)

Shows the approximate count first. Without --yes it needs a terminal to ask on and refuses
otherwise. SQS allows one purge per queue every 60 seconds and takes up to 60 s to finish.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import ClientError

from scripts import _cli
from scripts._aws import Target, add_queue_options, describe_counts, queue_counts, queue_name
from scripts._cli import OpsError, Parser, confirm, error_code

HELP = "delete every message of the work queue (or of the DLQ with --dlq), after confirmation"


def add_arguments(parser: Parser) -> None:
    """The command line."""
    add_queue_options(parser)
    parser.add_argument("--dlq", action="store_true", help="purge the DLQ instead of the queue")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="print what would be purged")


def execute(args: argparse.Namespace) -> int:
    """Purge after confirmation; exit 1 if the operator does not confirm."""
    target = Target(args)
    url = target.dlq_url() if args.dlq else target.queue_url()
    name = queue_name(url)
    print(describe_counts(name, queue_counts(target, url)))
    if args.dry_run:
        print(f"dry run: would purge {name}")
        return 0
    question = f"type the queue name ({name}) to purge it: "
    if not args.yes and not confirm(question, {name}, "purge"):
        raise OpsError("aborted: the name did not match; nothing purged")
    try:
        target.sqs.purge_queue(QueueUrl=url)
    except ClientError as error:
        if "PurgeQueueInProgress" in error_code(error):
            raise OpsError(f"{name} was purged less than 60 s ago; try again later") from None
        raise
    print(f"purged {name} (SQS may take up to 60 s to delete everything)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.purge`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
