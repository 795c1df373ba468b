"""Capacity planner: the cheapest Fargate shape and the scaling settings for a daily batch.

    python -m scripts.plan --messages 2000 --duration uniform:30:300
    python -m scripts.plan --messages 2000 --duration-mean 165 --duration-max 300 --json

For each valid CPU/memory pair (stacks.fargate.VALID_MEMORY_MIB) the processes per task are
those that fit: memory (the kit's own share in --handler-mode, stacks/sizing.py, as the config
check counts it, + --process-memory each) and CPU (--process-cpu each, up to 80% of the task's
vCPU). The batch arrives at the window start;
the target backlog per process paces the work to end before the deadline (window end minus
--margin) after reserving the task start, the scale-out delay of an idle queue's metrics and
one longest job:

    target = floor((window - margin - start latency - scale-out delay - max duration) / mean)
    window min tasks = ceil(messages / (target x processes))
    max tasks = ceil(growth x messages / (target x processes)), capped by --db-connections

Cost/day estimate: (messages x mean / processes + window min tasks x (start latency + max
duration)) task-seconds at the task's price. Prints the shapes by cost and a cdk.json block.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from scripts import pricing
from scripts.sim.inputs import Durations, Problems
from stacks import sizing
from stacks.fargate import VALID_MEMORY_MIB

CPU_HEADROOM = 0.8  # busy processes may use up to this share of the task's vCPU
# Cost estimates within this share of the cheapest count as ties (the estimate is not finer
# than that); ties go to fewer processes per task: finer scaling steps, shorter idle tails.
TIE_TOLERANCE = 0.05


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
                    note = f"{window_min} x {processes} processes exceed --db-connections"
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
    cap is --db-connections, else max tasks x processes (the parser's default cap is lower)."""
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.plan",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
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
    parser.add_argument("--db-connections", type=int, help="cap on total worker processes")
    parser.add_argument("--start-latency", type=int, default=60, help="seconds to start a task")
    parser.add_argument(
        "--scale-out-delay",
        type=int,
        default=720,
        help="seconds before scaling sees a woken queue (metric wake-up lag + alarm)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


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
        problems.at_least("--db-connections", args.db_connections, 1)
    if args.spot and args.architecture != "x86_64":
        problems.add("--architecture", args.architecture, "Fargate Spot runs x86_64 tasks only")
    problems.at_least("--start-latency", args.start_latency, 0)
    problems.at_least("--scale-out-delay", args.scale_out_delay, 0)
    if not problems.items and end - start - args.margin * 60 <= 0:
        problems.add("--margin", args.margin, "leaves no time in the window")
    problems.fail("plan")
    return durations, start, end


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    durations, start, end = _validate(args)
    shapes = evaluate(args, durations, start, end)
    best = choose(shapes)
    block = cdk_block(args, best) if best else None
    if args.json:
        print(
            json.dumps(
                {
                    "best": best and asdict(best),
                    "cdk_json": block,
                    "shapes": [asdict(s) for s in shapes],
                },
                indent=2,
            )
        )
        return 0 if best else 1
    print(
        f"{args.messages} messages/day, jobs {durations.low}-{durations.high} s "
        f"(mean {durations.mean:g}), window {args.window_start}-{args.window_end} "
        f"{args.timezone}, deadline {args.margin} min before its end"
    )
    print(
        f"{'cpu':>5} {'MiB':>6} {'procs':>5} {'$/task-h':>9} {'target':>6} {'win min':>7} "
        f"{'max':>4} {'finish':>6} {'$/day':>8}  note"
    )
    for s in shapes:
        print(
            f"{s.cpu:>5} {s.memory_mib:>6} {s.processes:>5} {s.price_per_hour:>9.5f} "
            f"{s.target_backlog_per_process:>6} {s.window_min_tasks:>7} {s.max_tasks:>4} "
            f"{s.expected_finish:>6} {s.cost_per_day:>8.4f}  {s.note}"
        )
    if best is None:
        print("no shape finishes before the deadline: widen the window or lower the margin")
        return 1
    print(
        f"\nchosen (cheapest within {TIE_TOLERANCE:.0%}, fewest processes): cpu {best.cpu}, "
        f"{best.memory_mib} MiB, {best.processes} processes per task, "
        f"${best.cost_per_day:.4f}/day, expected finish {best.expected_finish}"
    )
    print("cdk.json environment block:")
    print(json.dumps(block, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
