"""Capacity planner: the cheapest Fargate shape and the scaling settings for a daily batch.

    python -m scripts plan --messages 2000 --duration uniform:30:300 --env prod
    python -m scripts plan --messages 2000 --duration-mean 165 --duration-max 300 --json

For each valid CPU/memory pair (stacks.fargate.VALID_MEMORY_MIB) the processes per task are
those that fit: memory (the kit's own share in --handler-mode, stacks/sizing.py, as the config
check counts it, + --process-memory each) and CPU (--process-cpu each, up to 80% of the task's
vCPU). The batch arrives at the window start;
the target backlog per process paces the work to end before the deadline (window end minus
--margin) after reserving the task start, the scale-out delay of an idle queue's metrics and
one longest job:

    target = floor((window - margin - start latency - scale-out delay - max duration) / mean)
    window min tasks = ceil(messages / (target x processes))
    max tasks = ceil(growth x messages / (target x processes)), capped by the database cap

Cost/day estimate: (messages x mean / processes + window min tasks x (start latency + max
duration)) task-seconds at the task's price. Prints the chosen shape and why first, then the
cheapest shapes (all with --all) with the chosen one marked, then a cdk.json block. The
database cap (total processes) is the environment's scaling.max_total_processes (--env) or
--max-total-processes; it is never raised: when no shape fits under it, plan says what cap
would fit and exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts import _cli, pricing
from scripts._aws import ROOT, environment
from scripts._cli import Parser, print_json, table
from scripts.sim.inputs import Durations, Problems
from stacks import sizing
from stacks.fargate import VALID_MEMORY_MIB

CPU_HEADROOM = 0.8  # busy processes may use up to this share of the task's vCPU
# Cost estimates within this share of the cheapest count as ties (the estimate is not finer
# than that); ties go to fewer processes per task: finer scaling steps, shorter idle tails.
TIE_TOLERANCE = 0.05
HELP = "the cheapest Fargate shape and scaling settings for a daily batch (and why)"
DEFAULTS_IN_HELP = True  # option help leaves the defaults to argparse
SHORT_TABLE_ROWS = 8  # rows shown without --all (the chosen one always among them)


@dataclass(frozen=True)
class Shape:
    """One task shape and what the batch costs with it."""

    cpu: int
    memory_mib: int
    processes: int
    price_per_hour: float
    target_backlog_per_process: int
    window_min_tasks: int
    max_tasks: int
    expected_finish: str
    cost_per_day: float
    feasible: bool
    note: str = ""


def processes_that_fit(
    cpu: int, memory_mib: int, process_memory: int, process_cpu: float, handler_mode: str
) -> int:
    """Worker processes a task of this shape can host (memory and CPU headroom)."""
    by_memory = sizing.processes_that_fit(memory_mib, process_memory, handler_mode)
    by_cpu = math.floor(cpu / 1024 * CPU_HEADROOM / process_cpu + 1e-9)
    return max(0, min(by_memory, by_cpu))


def _clock(seconds: float) -> str:
    whole = math.ceil(seconds / 60)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def evaluate(args: argparse.Namespace, durations: Durations, start: int, end: int) -> list[Shape]:
    """Every shape that hosts at least one process, cheapest first."""
    deadline = end - args.margin * 60
    usable = deadline - start - args.start_latency - args.scale_out_delay - durations.high
    target = max(1, math.floor(usable / durations.mean))
    shapes = []
    for cpu, memories in VALID_MEMORY_MIB.items():
        for memory in memories:
            processes = processes_that_fit(
                cpu, memory, args.process_memory, args.process_cpu, args.handler_mode
            )
            if processes < 1:
                continue
            price = pricing.task_price_per_second(
                cpu, memory, args.region, args.architecture, args.spot
            )
            window_min = math.ceil(args.messages / (target * processes))
            max_tasks = math.ceil(args.growth * args.messages / (target * processes))
            note = ""
            feasible = usable > 0
            if args.db_connections is not None:
                cap = args.db_connections // processes
                if cap < window_min:
                    feasible = False
                    note = f"{window_min} x {processes} processes exceed the database cap"
                max_tasks = min(max_tasks, cap)
            per_process = math.ceil(args.messages / (window_min * processes))
            finish = start + args.start_latency + per_process * durations.mean
            finish += durations.high - durations.mean
            task_seconds = args.messages * durations.mean / processes
            task_seconds += window_min * (args.start_latency + durations.high)
            shapes.append(
                Shape(
                    cpu=cpu,
                    memory_mib=memory,
                    processes=processes,
                    price_per_hour=round(price * 3600, 5),
                    target_backlog_per_process=target,
                    window_min_tasks=window_min,
                    max_tasks=max(max_tasks, window_min),
                    expected_finish=_clock(finish),
                    cost_per_day=round(task_seconds * price, 4),
                    feasible=feasible and finish <= deadline,
                    note=note or ("" if finish <= deadline else "finishes after the deadline"),
                )
            )
    shapes.sort(key=lambda s: (not s.feasible, s.cost_per_day, s.cpu, s.memory_mib))
    return shapes


def choose(shapes: list[Shape]) -> Shape | None:
    """The feasible shape with the fewest processes among those within TIE_TOLERANCE of the
    cheapest (then the cheapest of them); None when no shape meets the deadline."""
    feasible = [s for s in shapes if s.feasible]
    if not feasible:
        return None
    limit = feasible[0].cost_per_day * (1 + TIE_TOLERANCE)
    ties = [s for s in feasible if s.cost_per_day <= limit]
    return min(ties, key=lambda s: (s.processes, s.cost_per_day, s.cpu, s.memory_mib))


def cdk_block(args: argparse.Namespace, shape: Shape) -> dict[str, Any]:
    """The cdk.json environment block (only keys the config parser knows). The connection
    cap is the database cap given (--env or --max-total-processes), else max tasks x
    processes, which the output asks the reader to check against the database."""
    cap = args.db_connections or shape.max_tasks * shape.processes
    scaling: dict[str, Any] = {
        "min_tasks": 0,
        "max_tasks": shape.max_tasks,
        "max_total_processes": cap,
        "target_backlog_per_process": shape.target_backlog_per_process,
    }
    return {
        "region": args.region,
        "worker": {
            "processes": shape.processes,
            "cpu": shape.cpu,
            "memory_mib": shape.memory_mib,
            "architecture": args.architecture,
            "spot": args.spot,
        },
        "scaling": scaling,
        "batch_window": {
            "start": args.window_start,
            "end": args.window_end,
            "timezone": args.timezone,
            "min_tasks": shape.window_min_tasks,
        },
    }


def add_arguments(parser: Parser) -> None:
    """The command line."""
    parser.add_argument("--messages", type=int, required=True, help="messages per day")
    parser.add_argument("--duration", help="uniform:LOW:HIGH or fixed:SECONDS (job seconds)")
    parser.add_argument(
        "--duration-mean", type=float, help="mean job seconds (with --duration-max)"
    )
    parser.add_argument("--duration-max", type=float, help="longest job seconds")
    parser.add_argument("--window-start", default="04:00", help="HH:MM; the batch arrives then")
    parser.add_argument("--window-end", default="09:00", help="HH:MM")
    parser.add_argument("--timezone", default="Asia/Tokyo")
    parser.add_argument("--margin", type=int, default=30, help="minutes before the window end")
    parser.add_argument("--process-memory", type=int, default=200, help="MiB per process")
    parser.add_argument("--process-cpu", type=float, default=0.05, help="vCPU per busy process")
    parser.add_argument(
        "--handler-mode", default="callable", choices=sorted(sizing.KIT_SLOT_OVERHEAD_MIB)
    )
    parser.add_argument("--region", default="ap-northeast-1", choices=pricing.REGIONS)
    parser.add_argument("--architecture", default="x86_64", choices=pricing.ARCHITECTURES)
    parser.add_argument("--spot", action="store_true", help="Fargate Spot prices")
    parser.add_argument("--growth", type=float, default=10, help="max tasks cover this x volume")
    cap = parser.add_mutually_exclusive_group()
    cap.add_argument(
        "--env",
        help="take the database cap (scaling.max_total_processes) from this cdk.json environment",
    )
    cap.add_argument(
        "--max-total-processes",
        "--db-connections",
        dest="db_connections",
        metavar="N",
        type=int,
        help="the database cap: total worker processes (default: none; see --env)",
    )
    parser.add_argument(
        "--cdk-json", type=Path, default=ROOT / "cdk.json", help="where --env is read"
    )
    parser.add_argument("--start-latency", type=int, default=60, help="seconds to start a task")
    parser.add_argument(
        "--scale-out-delay",
        type=int,
        default=720,
        help="seconds before scaling sees a woken queue (metric wake-up lag + alarm)",
    )
    parser.add_argument("--all", action="store_true", help="every shape, not the cheapest few")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _validate(args: argparse.Namespace) -> tuple[Durations, int, int]:
    problems = Problems()
    problems.at_least("--messages", args.messages, 1)
    if args.duration:
        durations = problems.durations("--duration", args.duration)
    elif args.duration_mean is not None and args.duration_max is not None:
        durations = Durations(0, 0)
        mean, longest = args.duration_mean, args.duration_max
        if not 0 < mean <= longest:
            problems.add("--duration-mean", mean, f"must be > 0 and <= --duration-max ({longest})")
        else:  # a uniform distribution with this mean and max
            durations = Durations(max(1, round(2 * mean - longest)), round(longest))
    else:
        problems.add(
            "--duration", None, "give --duration or both --duration-mean and --duration-max"
        )
        durations = Durations(1, 1)
    start = problems.clock("--window-start", args.window_start)
    end = problems.clock("--window-end", args.window_end)
    if end <= start:
        problems.add(
            "--window-end", args.window_end, f"must be after --window-start ({args.window_start})"
        )
    problems.timezone("--timezone", args.timezone)
    problems.at_least("--margin", args.margin, 0)
    problems.at_least("--process-memory", args.process_memory, 1)
    if not 0 < args.process_cpu <= 16:
        problems.add("--process-cpu", args.process_cpu, "must be a vCPU fraction > 0 (max 16)")
    problems.at_least("--growth", args.growth, 1)
    if args.db_connections is not None:
        problems.at_least("--max-total-processes", args.db_connections, 1)
    if args.spot and args.architecture != "x86_64":
        problems.add("--architecture", args.architecture, "Fargate Spot runs x86_64 tasks only")
    problems.at_least("--start-latency", args.start_latency, 0)
    problems.at_least("--scale-out-delay", args.scale_out_delay, 0)
    if not problems.items and end - start - args.margin * 60 <= 0:
        problems.add("--margin", args.margin, "leaves no time in the window")
    problems.fail("plan")
    return durations, start, end


def cap_source(args: argparse.Namespace) -> str:
    """Where the database cap comes from (reading --env's config into args.db_connections)."""
    if args.env:
        config = environment(args.cdk_json, args.env)
        args.db_connections = config.scaling.max_total_processes
        return f"{args.env}'s scaling.max_total_processes"
    if args.db_connections is not None:
        return "--max-total-processes"
    return ""


def what_would_fit(args: argparse.Namespace, durations: Durations, start: int, end: int) -> str:
    """Without the cap: the shape that would be chosen and the cap it needs."""
    best = choose(evaluate(replace_cap(args, None), durations, start, end))
    if best is None:
        return "no shape meets the deadline even without the cap: widen the window"
    need = best.window_min_tasks * best.processes
    return (
        f"the cheapest shape (cpu {best.cpu}, {best.memory_mib} MiB, {best.processes} processes) "
        f"needs {best.window_min_tasks} tasks x {best.processes} = {need} processes in the "
        f"window: raise the cap to at least {need}, or widen the window"
    )


def replace_cap(args: argparse.Namespace, cap: int | None) -> argparse.Namespace:
    """A copy of the arguments with another database cap."""
    return argparse.Namespace(**{**vars(args), "db_connections": cap})


def why(args: argparse.Namespace, best: Shape, source: str) -> str:
    """Why this shape, and what bounds it."""
    reason = (
        f"cheapest within {TIE_TOLERANCE:.0%} of the cheapest shape that meets the deadline, "
        f"then the fewest processes per task (finer scaling steps)"
    )
    total = best.max_tasks * best.processes
    if source:
        cap = f"database cap {args.db_connections} ({source}): {best.max_tasks} tasks x "
        cap += f"{best.processes} = {total} processes at most"
    else:
        cap = (
            f"no database cap given (--env or --max-total-processes): the block sets "
            f"max_total_processes to {best.max_tasks} x {best.processes} = {total}; lower it "
            f"to what your database allows"
        )
    return f"{reason}; {cap}"


def shown(shapes: list[Shape], best: Shape | None, everything: bool) -> list[Shape]:
    """The rows of the table: all, or the cheapest few plus the chosen one."""
    if everything:
        return shapes
    rows = shapes[:SHORT_TABLE_ROWS]
    if best is not None and best not in rows:
        rows.append(best)
    return rows


def rows(shapes: list[Shape], best: Shape | None) -> list[list[Any]]:
    """Table cells; the chosen shape's first cell is `*`."""
    return [
        [
            "*" if s == best else "",
            s.cpu,
            s.memory_mib,
            s.processes,
            f"{s.price_per_hour:.5f}",
            s.target_backlog_per_process,
            s.window_min_tasks,
            s.max_tasks,
            s.expected_finish,
            f"{s.cost_per_day:.4f}",
            s.note,
        ]
        for s in shapes
    ]


HEADER = ["", "cpu", "MiB", "procs", "$/task-h", "target", "win min", "max", "finish", "$/day"]


def execute(args: argparse.Namespace) -> int:
    """Plan; print the chosen shape first. Exit 1 when no shape fits."""
    durations, start, end = _validate(args)
    source = cap_source(args)
    shapes = evaluate(args, durations, start, end)
    best = choose(shapes)
    block = cdk_block(args, best) if best else None
    problem = "" if best else what_would_fit(args, durations, start, end)
    if best is None and not source:
        problem = "no shape finishes before the deadline: widen the window or lower the margin"
    if args.json:
        print_json(
            {
                "best": best and asdict(best),
                "why": why(args, best, source) if best else problem,
                "max_total_processes": args.db_connections,
                "max_total_processes_from": source or None,
                "cdk_json": block,
                "shapes": [asdict(s) for s in shapes],
            }
        )
        return 0 if best else 1
    workload = (
        f"{args.messages} messages/day, jobs {durations.low}-{durations.high} s "
        f"(mean {durations.mean:g}), window {args.window_start}-{args.window_end} "
        f"{args.timezone}, deadline {args.margin} min before its end"
    )
    if best is None:
        cap = f" under the database cap {args.db_connections} ({source})" if source else ""
        print(f"no shape fits{cap}: {problem}")
        print(f"({workload})")
    else:
        print(
            f"chosen: cpu {best.cpu}, {best.memory_mib} MiB, {best.processes} processes per "
            f"task, ${best.cost_per_day:.4f}/day, expected finish {best.expected_finish}"
        )
        print(f"why: {why(args, best, source)}")
        print(f"for: {workload}")
    listed = shown(shapes, best, args.all)
    print()
    print("\n".join(table(rows(listed, best), [*HEADER, "note"])))
    if len(listed) < len(shapes):
        print(f"({len(shapes) - len(listed)} more shapes: --all)")
    if best is None:
        return 1
    print("\ncdk.json environment block:")
    print(json.dumps(block, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.plan`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
