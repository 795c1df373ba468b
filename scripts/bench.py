"""Fleet throughput benchmark: the local run (scripts.local_run) with the sleep handler.

    .venv/bin/python -m scripts bench [--env dev] [--prefetch 3 5 10 ...] [--json]

200 messages of 1 s on 8 processes, no poison, with the environment's synthesized settings
(PREFETCH_SECONDS included, unless --prefetch gives values to compare): reports the wall
time against the ideal (messages x duration / processes) and the SQS requests the workers made
per processed message. Exits 1 when a run loses a message, or is below 90 % of the ideal, or
above 0.5 requests per message (the bars of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from scripts import _cli
from scripts._cli import Parser, print_json
from scripts.local_run import ROOT, Report, run

HELP = "fleet throughput benchmark: local runs of the sleep handler against the ideal"

MIN_EFFICIENCY = 0.9
MAX_REQUESTS_PER_MESSAGE = 0.5


def add_arguments(parser: Parser) -> None:
    """The command line."""
    parser.add_argument("--env", default="dev", help="templates of this environment (dev)")
    parser.add_argument("--cdk-out", default=str(ROOT / "cdk.out"))
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument(
        "--prefetch",
        type=float,
        nargs="+",
        default=[None],
        help="PREFETCH_SECONDS values to compare (default: the environment's setting)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def execute(args: argparse.Namespace) -> int:
    """Run once per --prefetch value; print the table; 1 when a run misses a bar."""
    results: list[tuple[float | None, Report]] = []
    for prefetch in args.prefetch:
        print(f"--- PREFETCH_SECONDS={'the template setting' if prefetch is None else prefetch}")
        run_args = argparse.Namespace(
            env=args.env,
            cdk_out=args.cdk_out,
            messages=args.messages,
            duration=args.duration,
            poison=0,
            malformed=0,
            processes=args.processes,
            prefetch=prefetch,
            timeout=300,
            run_dir="/tmp/queue-worker-bench",
            fleet_log="",
        )
        report = run(run_args)
        if not args.json:
            print("\n".join(report.lines()))
        results.append((prefetch, report))
    failed = any(
        r.lost > 0
        or r.efficiency < MIN_EFFICIENCY
        or r.requests_per_message > MAX_REQUESTS_PER_MESSAGE
        for _, r in results
    )
    if args.json:
        print_json(
            [
                {
                    "prefetch_seconds": prefetch,
                    **asdict(r),
                    "efficiency": r.efficiency,
                    "requests_per_message": r.requests_per_message,
                }
                for prefetch, r in results
            ]
        )
        return 1 if failed else 0
    print(
        f"\n{args.messages} messages x {args.duration:g} s on {args.processes} processes\n"
        "| PREFETCH_SECONDS | wall (s) | ideal (s) | of ideal | SQS requests / message | lost |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    for prefetch, r in results:
        print(
            f"| {'template' if prefetch is None else f'{prefetch:g}'} | "
            f"{r.wall_seconds:.1f} | {r.ideal_seconds:.1f} | "
            f"{r.efficiency:.0%} | {r.requests_per_message:.2f} | {r.lost} |"
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m scripts.bench`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
