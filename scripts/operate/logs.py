"""Search and follow the worker's logs (CloudWatch Logs), one readable line per event.

    queue-worker logs --env prod --since 1h --outcome retry
    queue-worker logs --env prod --follow --process worker_03
    queue-worker logs --env prod --message-id ID --json
    queue-worker logs --env prod --worker mails --since 1h

FilterLogEvents on the worker's log group (output LogGroupName of QueueWorker-ENV-Worker, or
--log-group); an environment with several workers names one with --worker. The filters become a
JSON filter pattern that CloudWatch applies, and are applied again to each line here (so an
endpoint that ignores the pattern shows the same lines). Each JSON line is shown as: time,
process, event, message id, outcome, duration, error; --json prints the lines as the worker
wrote them. --follow polls every --poll-seconds until Ctrl-C (or until the reader of a pipe
stops: `--follow | head -5` ends after five lines).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from worker import contract

from scripts import _cli
from scripts._aws import LOG_GROUP_OUTPUT, Target, add_env_options, add_worker_option, iso_time
from scripts._cli import Interrupted, OpsError, Parser, UsageError, positive_int

HELP = "search and follow the worker's logs: --follow, --since, --process, --message-id, --outcome"
SINCE = re.compile(r"^(?P<amount>\d+)(?P<unit>[smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MAX_POLL_SECONDS = 60  # --follow never waits longer than this between polls


def add_arguments(parser: Parser) -> None:
    """The command line."""
    add_env_options(parser)
    add_worker_option(parser)
    parser.add_argument(
        "--log-group", help="the log group (default: the worker stack's output LogGroupName)"
    )
    parser.add_argument(
        "--since",
        default="10m",
        help="from this long ago (30s, 10m, 2h, 1d) or an ISO 8601 time (default: 10m)",
    )
    parser.add_argument("--process", help="only this process, e.g. worker_03")
    parser.add_argument("--message-id", help="only lines of this message (its work-queue id)")
    parser.add_argument(
        "--outcome", choices=contract.OUTCOMES, help="only job lines with this outcome"
    )
    parser.add_argument("--follow", action="store_true", help="keep polling for new lines")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=2.0,
        help=f"--follow: seconds between polls (default 2, at most {MAX_POLL_SECONDS})",
    )
    parser.add_argument(
        "--max-polls", type=positive_int, help="--follow: stop after this many polls"
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON lines")


def parse_since(text: str, now: datetime) -> datetime:
    """`10m`-style durations before `now`, or an ISO 8601 time (UTC if it names no zone)."""
    match = SINCE.match(text)
    if match:
        return now - timedelta(**{UNITS[match["unit"]]: int(match["amount"])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r}: use 30s, 10m, 2h, 1d or an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def wanted(args: argparse.Namespace) -> dict[str, str]:
    """The field filters the options ask for."""
    fields = {
        contract.PROCESS: args.process,
        contract.MESSAGE_ID: args.message_id,
        contract.OUTCOME: args.outcome,
    }
    return {name: value for name, value in fields.items() if value}


def filter_pattern(filters: dict[str, str]) -> str:
    """``{ $.process = "worker_03" && $.outcome = "retry" }`` ('' without filters)."""
    if not filters:
        return ""
    terms = " && ".join(f"$.{name} = {json.dumps(value)}" for name, value in filters.items())
    return f"{{ {terms} }}"


def matches(record: dict[str, Any] | None, filters: dict[str, str]) -> bool:
    """Whether a parsed line has every wanted field value (non-JSON lines: only unfiltered)."""
    if record is None:
        return not filters
    return all(str(record.get(name)) == value for name, value in filters.items())


def parse(message: str) -> dict[str, Any] | None:
    """The line as a JSON object, or None."""
    try:
        record = json.loads(message)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def render(event: dict[str, Any], record: dict[str, Any] | None) -> str:
    """One readable line: time, process, event, message id, outcome, duration, error."""
    if record is None:
        return f"{iso_time(event['timestamp'])}  {event['message'].rstrip()}"
    parts = [
        str(record.get(contract.TIME) or iso_time(event["timestamp"])),
        str(record.get(contract.PROCESS, "-")),
        str(record.get(contract.EVENT, "-")),
    ]
    if contract.MESSAGE_ID in record:
        parts.append(f"message {record[contract.MESSAGE_ID]}")
    if contract.OUTCOME in record:
        parts.append(str(record[contract.OUTCOME]))
    if contract.DURATION_SECONDS in record:
        parts.append(f"{record[contract.DURATION_SECONDS]} s")
    if contract.REASON in record:
        parts.append(f"reason: {record[contract.REASON]}")
    if contract.ERROR in record:
        parts.append(f"error: {record[contract.ERROR]}")
    return "  ".join(parts)


def fetch(
    client: Any, group: str, pattern: str, start_ms: int, seen: dict[str, int]
) -> Iterator[dict[str, Any]]:
    """Events of `group` from `start_ms` on, oldest first, skipping ids in `seen`.

    `seen` maps the ids shown to their timestamps; only those at `start_ms` can come again, so
    older ones are dropped (a long --follow keeps it small).
    """
    for event_id in [i for i, stamp in seen.items() if stamp < start_ms]:
        del seen[event_id]
    request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "interleaved": True}
    if pattern:
        request["filterPattern"] = pattern
    try:
        for page in client.get_paginator("filter_log_events").paginate(**request):
            for event in sorted(page.get("events", []), key=lambda e: e["timestamp"]):
                if event["eventId"] not in seen:
                    seen[event["eventId"]] = int(event["timestamp"])
                    yield event
    except client.exceptions.ResourceNotFoundException:
        raise OpsError(f"log group {group} does not exist") from None


def execute(args: argparse.Namespace) -> int:
    """Print the matching lines; with --follow keep polling."""
    if not 0 < args.poll_seconds <= MAX_POLL_SECONDS:
        raise UsageError(f"--poll-seconds must be > 0 and at most {MAX_POLL_SECONDS}")
    if args.max_polls and not args.follow:
        raise UsageError("--max-polls needs --follow")
    start = parse_since(args.since, datetime.now(UTC))
    target = Target(args)
    group = args.log_group or target.worker_output(LOG_GROUP_OUTPUT)
    client = target.client("logs")
    filters = wanted(args)
    pattern = filter_pattern(filters)
    start_ms = int(start.timestamp() * 1000)
    seen: dict[str, int] = {}
    shown = polls = 0
    try:
        while True:
            for event in fetch(client, group, pattern, start_ms, seen):
                record = parse(event["message"])
                start_ms = max(start_ms, int(event["timestamp"]))
                if not matches(record, filters):
                    continue
                print(event["message"].rstrip() if args.json else render(event, record))
                shown += 1
            sys.stdout.flush()
            polls += 1
            if not args.follow or (args.max_polls and polls >= args.max_polls):
                return 0
            wait(args.poll_seconds)
    except KeyboardInterrupt:
        raise Interrupted(f"showed {shown} lines") from None


def wait(seconds: float) -> None:
    """Sleep `seconds`, or raise BrokenPipeError as soon as the reader of stdout is gone."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if _cli.reader_gone():
            raise BrokenPipeError
        time.sleep(min(left, 0.5))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.logs`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
