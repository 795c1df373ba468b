"""Fleet throughput benchmark: the local run (scripts.devtools.local_run) with the sleep handler.

    queue-worker bench [--env dev] [--prefetch 3 5 10 ...] [--json]

200 messages of 1 s on 8 processes, no poison, with the environment's synthesized settings
(PREFETCH_SECONDS included, unless --prefetch gives values to compare): reports the wall
time against the ideal (messages x duration / processes) and the SQS requests the workers made
per processed message. Exits 1 when a run loses a message, or is below 90 % of the ideal, or
above 0.5 requests per message (the bars of docs/benchmarks.md), after the table, with one
`error:` line on stderr naming each run that missed and which bar. The runs' progress goes to
stderr; stdout is the table (with --json, the JSON document alone).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from scripts import _cli
from scripts._cli import OpsError, Parser, non_negative_float, positive_int, print_json
from scripts.devtools.local_run import Report, run, say

HELP = "fleet throughput benchmark: local runs of the sleep handler against the ideal"

MIN_EFFICIENCY = 0.9
MAX_REQUESTS_PER_MESSAGE = 0.5


def add_arguments(parser: Parser) -> None:
    """The command line."""
    parser.add_argument("--env", default="dev", help="templates of this environment (dev)")
    parser.add_argument("--cdk-out", help="synthesized assemblies (default: the project's cdk.out)")
    parser.add_argument("--messages", type=positive_int, default=200)
    parser.add_argument("--duration", type=non_negative_float, default=1.0)
    parser.add_argument("--processes", type=positive_int, default=8)
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
        say(f"--- PREFETCH_SECONDS={'the template setting' if prefetch is None else prefetch}")
        run_args = argparse.Namespace(
            env=args.env,
            project=args.project,
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
    if args.json:
        print_json(
            [
                {
                    "prefetch_seconds": prefetch,
                    **asdict(r),
                    "efficiency": r.efficiency,
                    # None when nothing was processed (JSON has no infinity)
                    "requests_per_message": r.requests_per_message if r.processed else None,
                }
                for prefetch, r in results
            ]
        )
        return verdict(results)
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
    return verdict(results)


def verdict(results: list[tuple[float | None, Report]]) -> int:
    """0 when every run meets the bars; else OpsError naming each miss (exit 1, one line)."""
    misses = []
    for prefetch, r in results:
        missed = []
        if r.lost > 0:
            missed.append(f"{r.lost} lost (none allowed)")
        if r.efficiency < MIN_EFFICIENCY:
            missed.append(f"{r.efficiency:.0%} of ideal (at least {MIN_EFFICIENCY:.0%})")
        if r.processed and r.requests_per_message > MAX_REQUESTS_PER_MESSAGE:
            missed.append(
                f"{r.requests_per_message:.2f} SQS requests per message "
                f"(at most {MAX_REQUESTS_PER_MESSAGE:g})"
            )
        if missed:
            label = "template" if prefetch is None else f"{prefetch:g}"
            misses.append(f"PREFETCH_SECONDS={label}: {', '.join(missed)}")
    if misses:
        raise OpsError(f"below the bars of docs/benchmarks.md: {'; '.join(misses)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m scripts.devtools.bench`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
