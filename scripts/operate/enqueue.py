"""Load generator: send example-handler jobs (or given bodies) to the work queue.

    queue-worker enqueue --env dev --count 2000 --duration uniform:30:300 --rate 20
    queue-worker enqueue --queue NAME|URL --count 50 --poison 2 --malformed 1 --seed 7
    queue-worker enqueue --queue NAME|URL --body-file bodies.jsonl
    queue-worker enqueue --queue NAME.fifo --count 20 --duration uniform:30:300 --group-id g1

Generated bodies are `{"duration_seconds": x}` (the example handler sleeps x seconds); poison
bodies add `"fail": true`; malformed bodies are not JSON. `make_bodies` is the reusable part.
A FIFO queue (`*.fifo`) needs --group-id (every message goes to that group, in order) and,
unless the queue has content-based deduplication, --deduplication-id (one message only). With
content-based deduplication SQS keeps one of equal bodies sent within 5 minutes (and still
counts the others as sent): --duration uniform:... makes generated bodies differ.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from worker.contract import is_fifo_queue

from scripts import _cli
from scripts._aws import Pacer, Target, add_queue_options, queue_name
from scripts._cli import (
    Interrupted,
    OpsError,
    Parser,
    UsageError,
    non_negative_float,
    non_negative_int,
    positive_int,
    progress,
    uninterrupted,
)

HELP = "send example jobs (or given bodies) to the work queue"

BATCH_SIZE = 10  # SendMessageBatch's maximum
SEND_ATTEMPTS = 3  # tries for entries SQS failed on its side (SenderFault false)


def parse_duration(spec: str | float) -> Callable[[random.Random], float]:
    """A duration sampler from `SECONDS`, `fixed:SECONDS` (1.5) or `uniform:LOW:HIGH`: the
    planner's and the simulator's syntax, with fractions of a second allowed."""
    text = str(spec)
    kind, _, bounds = text.partition(":")
    try:
        if kind == "uniform":
            low, high = (float(bound) for bound in bounds.split(":"))
            if 0 <= low <= high < math.inf:
                return lambda rng: round(rng.uniform(low, high), 3)
        else:
            fixed = float(bounds if kind == "fixed" else text)
            if 0 <= fixed < math.inf and (kind == "fixed" or not bounds):
                return lambda _rng: fixed
    except ValueError:
        pass
    raise ValueError(
        f"bad duration {text!r}: use SECONDS, fixed:SECONDS (e.g. 1.5) or uniform:LOW:HIGH"
    )


def make_bodies(
    count: int,
    duration: str | float = 1.0,
    poison: int = 0,
    malformed: int = 0,
    seed: int | None = None,
) -> list[str]:
    """`count` message bodies for the example handler; `poison` + `malformed` of them are bad.

    Defaults: 1 s jobs, no bad bodies, unseeded. Poison bodies are valid JSON with `"fail": true`
    (the handler raises, so they end in the DLQ); malformed bodies are not JSON. Bad bodies sit at
    random positions; the same `seed` gives the same list.
    """
    if min(count, poison, malformed) < 0:
        raise ValueError("count, poison and malformed must not be negative")
    if poison + malformed > count:
        raise ValueError(f"poison + malformed ({poison + malformed}) exceeds count ({count})")
    rng = random.Random(seed)
    sample = parse_duration(duration)
    kinds = ["poison"] * poison + ["malformed"] * malformed + ["ok"] * (count - poison - malformed)
    rng.shuffle(kinds)
    bodies = []
    for number, kind in enumerate(kinds):
        if kind == "malformed":
            bodies.append(f"malformed #{number}: {{not json")
        else:
            job: dict[str, Any] = {"duration_seconds": sample(rng)}
            if kind == "poison":
                job["fail"] = True
            bodies.append(json.dumps(job))
    return bodies


def send_bodies(
    sqs: Any,
    queue_url: str,
    bodies: Sequence[str],
    rate: float = 0,
    fields: Mapping[str, str] | None = None,
) -> int:
    """Send `bodies` with SendMessageBatch, at most `rate` a second (0, the default: no limit),
    each entry with `fields` too (a FIFO queue's MessageGroupId...; default none).

    Returns how many were sent; entries SQS rejects as the sender's fault raise OpsError.
    """
    batch_size = BATCH_SIZE if rate == 0 else max(1, min(BATCH_SIZE, int(rate)))
    pacer = Pacer(rate)
    sent = 0
    with progress("enqueue", len(bodies)) as bar:
        try:
            for start in range(0, len(bodies), batch_size):
                pacer.wait(start)
                with uninterrupted():
                    batch = _send_batch(
                        sqs, queue_url, bodies[start : start + batch_size], fields or {}
                    )
                    sent += batch
                    bar.advance(batch)
        except KeyboardInterrupt:
            raise Interrupted(f"sent {bar.of_total()}") from None
    return sent


def _send_batch(sqs: Any, queue_url: str, batch: Sequence[str], fields: Mapping[str, str]) -> int:
    pending = {str(index): body for index, body in enumerate(batch)}
    for _ in range(SEND_ATTEMPTS):
        entries = [{"Id": key, "MessageBody": body, **fields} for key, body in pending.items()]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        for ok in response.get("Successful", []):
            del pending[ok["Id"]]
        for failed in response.get("Failed", []):
            if failed.get("SenderFault"):
                raise OpsError(f"SQS rejected a message: {failed['Code']}: {failed['Message']}")
        if not pending:
            return len(batch)
    raise OpsError(f"SQS kept failing {len(pending)} message(s) after {SEND_ATTEMPTS} tries")


def read_body_file(path: str) -> list[str]:
    """The non-empty lines of `path` (`-` = stdin), each one message body as given."""
    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
    except OSError as error:
        raise OpsError(f"cannot read --body-file: {error}") from None
    return [line for line in lines if line.strip()]


def add_arguments(parser: Parser) -> None:
    """The command line; --count or --body-file is required (checked by `check`)."""
    add_queue_options(parser)
    parser.add_argument("--count", type=positive_int, help="how many messages to generate")
    parser.add_argument(
        "--duration",
        default="1.0",
        help="job duration: SECONDS, fixed:SECONDS or uniform:LOW:HIGH (default: 1.0)",
    )
    parser.add_argument(
        "--rate", type=non_negative_float, default=0.0, help="messages a second (default 0: max)"
    )
    parser.add_argument(
        "--poison", type=non_negative_int, default=0, help='K of the bodies get "fail": true'
    )
    parser.add_argument(
        "--malformed", type=non_negative_int, default=0, help="K of the bodies are not JSON"
    )
    parser.add_argument("--seed", type=int, help="random seed for durations and positions")
    parser.add_argument("--body-file", help="send these lines (one body each; - = stdin) instead")
    parser.add_argument("--group-id", help="FIFO queue only, required there: the MessageGroupId")
    parser.add_argument(
        "--deduplication-id",
        help="FIFO queue, one message: its MessageDeduplicationId (default: the queue's "
        "content-based deduplication)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be sent; send none"
    )


def check(args: argparse.Namespace) -> None:
    """Options that do not go together (exit 2)."""
    if (args.count is None) == (args.body_file is None):
        raise UsageError("give exactly one of --count and --body-file")
    if args.body_file and (args.poison or args.malformed or args.seed is not None):
        raise UsageError(
            "--poison, --malformed and --seed only apply to generated bodies (--count)"
        )
    if args.count is not None:
        try:
            parse_duration(args.duration)
        except ValueError as error:
            raise UsageError(str(error)) from None
        if args.poison + args.malformed > args.count:
            raise UsageError("--poison + --malformed must not exceed --count")


def message_fields(
    target: Target, url: str, args: argparse.Namespace, count: int
) -> dict[str, str]:
    """What each message to queue `url` carries besides its body: on a FIFO queue its group and
    any --deduplication-id; none on a standard queue. UsageError (exit 2) when the options do
    not fit the queue."""
    given = {"MessageGroupId": args.group_id, "MessageDeduplicationId": args.deduplication_id}
    fields = {name: value for name, value in given.items() if value}
    if not is_fifo_queue(url):
        if fields:
            raise UsageError(
                f"--group-id and --deduplication-id apply to a FIFO queue (*.fifo) only; "
                f"{queue_name(url)} is a standard queue"
            )
        return fields
    if not args.group_id:
        raise UsageError(f"{queue_name(url)} is a FIFO queue: give --group-id (SQS needs a group)")
    if args.deduplication_id:
        if count != 1:
            raise UsageError(f"--deduplication-id names one message, not {count}")
        return fields
    content = target.attributes(url, "ContentBasedDeduplication").get("ContentBasedDeduplication")
    if content != "true":
        raise UsageError(
            f"{queue_name(url)} has no content-based deduplication: give --deduplication-id "
            "(one message at a time)"
        )
    return fields


def execute(args: argparse.Namespace) -> int:
    """Send the messages; print how many were sent (or would be, with --dry-run)."""
    check(args)
    if args.body_file:
        bodies = read_body_file(args.body_file)
        what = f"from {args.body_file}"
    else:
        bodies = make_bodies(args.count, args.duration, args.poison, args.malformed, args.seed)
        what = f"({args.poison} poison, {args.malformed} malformed, duration {args.duration})"
    target = Target(args)
    url = target.queue_url()
    fields = message_fields(target, url, args, len(bodies))
    if args.dry_run:
        print(f"dry run: would send {len(bodies)} messages to {queue_name(url)} {what}")
        for body in bodies[:3]:
            print(f"  e.g. {body}")
        return 0
    started = time.monotonic()
    sent = send_bodies(target.sqs, url, bodies, args.rate, fields)
    elapsed = time.monotonic() - started
    print(f"sent {sent} messages to {queue_name(url)} {what} in {elapsed:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.enqueue`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
