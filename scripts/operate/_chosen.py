"""What `retry` and `forget` share: the DLQ messages an operator names by id or by reason.

An ID is a message's id in the DLQ or its original id on the work queue (what `dlq`, `dlq
--by-reason` and the worker's log lines print); `--reason TEXT` names every message whose reason
is exactly TEXT (as `dlq --by-reason` prints it). The DLQ is read whole (dlq.read_all): SQS
cannot fetch a message by id.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

from scripts._aws import add_queue_options, queue_name
from scripts._cli import OpsError, Parser, UsageError, print_json
from scripts.operate.dlq import Scan, add_max_messages_option, describe, limit_note


def add_arguments(parser: Parser, verb: str) -> None:
    """ID..., --reason, --max-messages, --dry-run, --json, and the queue options."""
    add_queue_options(parser)
    parser.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help="a DLQ message's id, or its original id on the work queue (as `dlq` prints it)",
    )
    parser.add_argument(
        "--reason",
        metavar="TEXT",
        help=f"{verb} every message whose reason is exactly TEXT (as `dlq --by-reason` prints it)",
    )
    add_max_messages_option(parser)
    parser.add_argument("--dry-run", action="store_true", help=f"print what would {verb}; do none")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def check(args: argparse.Namespace) -> None:
    """IDs or --reason, not both, not neither (exit 2)."""
    if bool(args.ids) == (args.reason is not None):
        raise UsageError("give message IDs or --reason TEXT (one of them)")


def choose(scan: Scan, args: argparse.Namespace, nothing_done: str) -> list[dict[str, Any]]:
    """The messages of `scan` that args.ids or args.reason name, oldest first (then by id).

    OpsError when an ID names no message (every such ID in one line), or when no message has
    the reason; `nothing_done` ends that line ("nothing retried").
    """
    described = {id_: describe(message) for id_, message in scan.messages.items()}
    if args.reason is not None:
        chosen = [id_ for id_, d in described.items() if d["reason"] == args.reason]
        if not chosen:
            raise OpsError(
                f"no DLQ message has the reason {args.reason!r}{limit_note(scan)}; {nothing_done}"
            )
    else:
        wanted = set(args.ids)
        chosen = [
            id_
            for id_, d in described.items()
            if wanted & {d["message_id"], d["source_message_id"]}
        ]
        found = {
            described[id_][key] for id_ in chosen for key in ("message_id", "source_message_id")
        }
        unknown = [id_ for id_ in dict.fromkeys(args.ids) if id_ not in found]
        if unknown:
            raise OpsError(
                f"not in the DLQ: {', '.join(unknown)}{limit_note(scan)}; {nothing_done}"
            )
    chosen.sort(key=lambda id_: (described[id_]["sent_at"], described[id_]["source_message_id"]))
    return [scan.messages[id_] for id_ in chosen]


def summary(message: dict[str, Any], new_id: str | None = None) -> dict[str, Any]:
    """What the output says of one chosen message (and its new id on the work queue)."""
    described = describe(message)
    fields = ("message_id", "source_message_id", "sent_at", "receive_count", "reason")
    result = {key: described[key] for key in fields}
    if new_id is not None:
        result["new_message_id"] = new_id
    return result


def line(summary: dict[str, Any]) -> str:
    """One message of a text listing: its original id, its new one if retried, its reason."""
    new_id = f"  now {summary['new_message_id']}" if "new_message_id" in summary else ""
    return f"- {summary['source_message_id']}{new_id}  reason: {summary['reason']}"


def listing(header: str, summaries: Sequence[dict[str, Any]], out: TextIO | None = None) -> None:
    """`header`, then one line a message, on `out` (default: stdout)."""
    print(header, file=out)
    for summary in summaries:
        print(line(summary), file=out)


def report(
    args: argparse.Namespace,
    scan: Scan,
    dlq_url: str,
    done: str,
    summaries: Sequence[dict[str, Any]],
    **extra: Any,
) -> None:
    """The --json document: what `done` (e.g. "retried") was done to which messages."""
    print_json(
        {
            "dlq": queue_name(dlq_url),
            **extra,
            "dry_run": bool(args.dry_run),
            done: len(summaries) if not args.dry_run else 0,
            "read": scan.read,
            "complete": scan.complete,
            "stopped_at": scan.stopped_at,
            "messages": list(summaries),
        }
    )
