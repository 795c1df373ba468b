"""Capacity planner: the Fargate shape of the cheapest whole month, and the scaling settings for
a daily batch.

    queue-worker plan --messages 2000 --duration uniform:30:300 --env prod
    queue-worker plan --messages 2000 --duration-mean 165 --duration-max 300 --json

For each valid CPU/memory pair (stacks.fargate.VALID_MEMORY_MIB), on each architecture (x86_64,
arm64: Graviton's lower price) and capacity (on-demand, Fargate Spot at --spot-discount off, 50%
by default: scripts/capacity/pricing.py says why) that --architecture and --capacity allow
(default: all), the processes per task are those that fit: memory (the kit's own share in
--handler-mode, stacks/sizing.py, as the config check counts it, + --process-memory each) and
CPU (--process-cpu each, up to 80% of the task's vCPU); with --measured FILE, both (and the
handler mode) are those `queue-worker measure` found in the team's image. The batch arrives at
the window start; the target backlog per process paces the work to end before the deadline
(window end minus --margin) after reserving the task start, the scale-out delay of an idle
queue's metrics and one longest job:

    target = floor((window - margin - start latency - scale-out delay - max duration) / mean)
    window min tasks = ceil(messages / (target x processes))
    max tasks = ceil(growth x messages / (target x processes)), capped by the database cap

Compute a day: (messages x mean / processes + window min tasks x (start latency + max duration))
task-seconds at the task's price; on Spot, each of --spot-interruptions-per-hour interruptions
per task-hour adds half a mean job (the jobs handed back run again) and a task start. With Spot
the block turns on the on-demand fallback, which counts in the database cap (max tasks x 2 x
processes). Shapes are ranked by the whole month (scripts/capacity/bill.py, 30.4 days of this
batch): the compute, plus what the environment pays besides it, counted from its config
(--env's, else the config's defaults; the block's one window): alarms (Spot's fallback adds two
and Container Insights), the dashboard, the KMS key, public IPv4 per task-hour or a NAT gateway
or endpoints, logs, SQS requests. Ties (whole months less than TIE_TOLERANCE of the cheapest's
compute above the cheapest) go to the fewest processes. The floor is compute only: the
workload's job-seconds at the cheapest on-demand price per process of any shape and
architecture, what no configuration's compute beats without Spot. Prints the chosen shape and
why first, its whole month line by line, then the cheapest shapes (all with --all) with the
chosen one marked, then a cdk.json block. The database cap (total processes) is
--max-total-processes, else the environment's scaling.max_total_processes (--env); it is never
raised: when no shape fits under it, plan says what cap would fit and exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from scripts import _cli
from scripts._aws import cdk_json, environment
from scripts._cli import OpsError, Parser, UsageError, print_json, table
from scripts.capacity import bill, measured, pricing
from scripts.capacity.sim.inputs import Durations, Problems, add_spot_arguments
from scripts.cdk_json import write_plan
from stacks import sizing
from stacks.config import EnvironmentBlock, EnvironmentConfig
from stacks.fargate import VALID_MEMORY_MIB

CPU_HEADROOM = 0.8  # busy processes may use up to this share of the task's vCPU
# Whole months within this share of the cheapest's compute of the cheapest count as ties (the
# compute estimate is not finer than that); ties go to fewer processes per task: finer scaling
# steps, shorter idle tails.
TIE_TOLERANCE = 0.05
HELP = "the Fargate shape of the cheapest whole month and scaling settings for a daily batch"
ON_DEMAND = "on-demand"
SPOT = "spot"
CAPACITIES = (ON_DEMAND, SPOT)
# Planning assumption: 1 interruption per 100 Spot task-hours (AWS publishes no Fargate Spot
# interruption rate; docs/architecture.md, "Spot and its fallback").
SPOT_INTERRUPTIONS_PER_HOUR = 0.01
DEFAULTS_IN_HELP = True  # option help leaves the defaults to argparse
PROCESS_MEMORY_MIB = 200  # the reference workload's MiB per process (docs/architecture.md)
PROCESS_CPU = 0.05  # and its vCPU per busy process
DEFAULT_REGION = "ap-northeast-1"  # without --region or --env
SHORT_TABLE_ROWS = 8  # rows shown without --all (the chosen one always among them)


@dataclass(frozen=True)
class Shape:
    """One task shape, what the batch's compute costs a day with it and the environment's whole
    month (``month``, scripts/capacity/bill.py)."""

    cpu: int
    memory_mib: int
    processes: int
    architecture: str
    capacity: str  # on-demand | spot
    price_per_hour: float
    target_backlog_per_process: int
    window_min_tasks: int
    max_tasks: int
    expected_finish: str
    compute_per_day: float  # USD, the Fargate tasks only
    task_hours_per_day: float
    month: bill.Bill = field(repr=False, compare=False)
    feasible: bool
    note: str = ""

    @property
    def whole_month(self) -> float:
        """USD: compute and everything else the environment pays in a month."""
        return self.month.total()

    def as_dict(self, lines: bool = False) -> dict[str, Any]:
        """JSON fields; the month's totals (and its lines with ``lines``) as ``whole_month``."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "month"}
        return {**out, "whole_month": self.month.as_dict() if lines else self.month.totals()}


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


def options(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(architecture, capacity) pairs that --architecture and --capacity allow."""
    chosen = args.architecture or "any"
    architectures = pricing.ARCHITECTURES if chosen == "any" else (chosen,)
    capacities = CAPACITIES if args.capacity == "any" else (args.capacity,)
    return [(a, c) for a in architectures for c in capacities]


def priced_environment(
    args: argparse.Namespace, env_config: EnvironmentConfig | None
) -> dict[str, bill.Facts]:
    """What the planned environment's templates would hold, per capacity: --env's config
    (``env_config``: its monitoring, network, logs; None: the config's defaults) in
    args.region, with the block's one batch window; on Spot with the on-demand fallback
    (unless the config turns it off)."""
    config = env_config or EnvironmentBlock.model_validate({"region": args.region})
    planned = replace(bill.Settings.of(config), region=args.region, batch_windows=1)
    fallback = config.worker.capacity.fallback_after_minutes is not None
    return {
        ON_DEMAND: bill.facts_of(replace(planned, fallback=False)),
        SPOT: bill.facts_of(replace(planned, fallback=fallback)),
    }


def evaluate(
    args: argparse.Namespace,
    durations: Durations,
    start: int,
    end: int,
    facts: Mapping[str, bill.Facts],
) -> list[Shape]:
    """Every shape that hosts at least one process, on every allowed option, the cheapest whole
    month (``facts``: the environment per capacity) first."""
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
            for architecture, capacity in options(args):
                shapes.append(
                    _shape(
                        args,
                        durations,
                        (start, deadline, usable, target),
                        cpu,
                        memory,
                        processes,
                        (architecture, capacity),
                        facts[capacity],
                    )
                )
    shapes.sort(key=lambda s: (not s.feasible, s.whole_month, s.cpu, s.memory_mib))
    return shapes


def _shape(
    args: argparse.Namespace,
    durations: Durations,
    timing: tuple[int, int, int, int],
    cpu: int,
    memory: int,
    processes: int,
    option: tuple[str, str],
    facts: bill.Facts,
) -> Shape:
    """The shape's day and, with the environment's ``facts``, its whole month."""
    start, deadline, usable, target = timing
    architecture, capacity = option
    spot = capacity == SPOT
    price = pricing.task_price_per_second(
        cpu, memory, args.region, architecture, spot, args.spot_discount
    )
    window_min = math.ceil(args.messages / (target * processes))
    max_tasks = math.ceil(args.growth * args.messages / (target * processes))
    note = ""
    feasible = usable > 0
    if args.db_connections is not None:
        # With Spot, the on-demand fallback may run beside the worker tasks (config check).
        cap = args.db_connections // processes // (2 if spot else 1)
        if cap < window_min:
            feasible = False
            note = f"{window_min} x {processes} processes exceed the database cap"
            note += " (with the fallback)" if spot else ""
        max_tasks = min(max_tasks, cap)
    per_process = math.ceil(args.messages / (window_min * processes))
    finish = start + args.start_latency + per_process * durations.mean
    finish += durations.high - durations.mean
    task_seconds = args.messages * durations.mean / processes
    task_seconds += window_min * (args.start_latency + durations.high)
    if spot:  # each interruption: half a mean job runs again, and a task starts again
        interruptions = args.spot_interruptions_per_hour * task_seconds / 3600
        task_seconds += interruptions * (durations.mean / 2 + args.start_latency)
    compute, task_hours = round(task_seconds * price, 4), round(task_seconds / 3600, 4)
    usage = bill.Usage(
        messages_per_day=args.messages,
        mean_job_seconds=durations.mean,
        processes=processes,
        task_hours_per_day=task_hours,
        compute_per_day=compute,
        active_hours_per_day=bill.active_hours(task_hours, window_min),
    )
    return Shape(
        cpu=cpu,
        memory_mib=memory,
        processes=processes,
        architecture=architecture,
        capacity=capacity,
        price_per_hour=round(price * 3600, 5),
        target_backlog_per_process=target,
        window_min_tasks=window_min,
        max_tasks=max(max_tasks, window_min),
        expected_finish=_clock(finish),
        compute_per_day=compute,
        task_hours_per_day=task_hours,
        feasible=feasible and finish <= deadline,
        month=bill.bill(facts, usage),
        note=note or ("" if finish <= deadline else "finishes after the deadline"),
    )


@dataclass(frozen=True)
class Floor:
    """The workload's job-seconds at the cheapest on-demand price per process (compute only)."""

    compute_per_day: float
    cpu: int
    memory_mib: int
    processes: int
    architecture: str


def floor(args: argparse.Namespace, durations: Durations) -> Floor:
    """min over every shape and architecture of on-demand task price / processes that fit,
    times messages x mean job seconds."""
    best: tuple[float, int, int, int, str] | None = None
    for cpu, memories in VALID_MEMORY_MIB.items():
        for memory in memories:
            processes = processes_that_fit(
                cpu, memory, args.process_memory, args.process_cpu, args.handler_mode
            )
            for architecture in pricing.ARCHITECTURES if processes else ():
                price = pricing.task_price_per_second(cpu, memory, args.region, architecture)
                candidate = (price / processes, cpu, memory, processes, architecture)
                best = candidate if best is None or candidate < best else best
    assert best is not None, "a 0.25 vCPU task hosts at least one process"
    per_process, cpu, memory, processes, architecture = best
    cost = round(args.messages * durations.mean * per_process, 4)
    return Floor(cost, cpu, memory, processes, architecture)


def choose(shapes: list[Shape]) -> Shape | None:
    """The feasible shape with the fewest processes among those whose whole month is within
    TIE_TOLERANCE of the cheapest's compute of the cheapest whole month (then the cheapest of
    them); None when no shape meets the deadline."""
    feasible = [s for s in shapes if s.feasible]
    if not feasible:
        return None
    cheapest = min(feasible, key=lambda s: s.whole_month)
    limit = cheapest.whole_month + TIE_TOLERANCE * cheapest.month.compute
    ties = [s for s in feasible if s.whole_month <= limit]
    return min(ties, key=lambda s: (s.processes, s.whole_month, s.cpu, s.memory_mib))


def cdk_block(args: argparse.Namespace, shape: Shape, durations: Durations) -> dict[str, Any]:
    """The cdk.json environment block (only keys the config parser knows). The connection
    cap is the database cap given (--env or --max-total-processes), else max tasks x
    processes, which the output asks the reader to check against the database. The mean job
    seconds and the margin go with it: the window's deadline rule sizes the fleet by them."""
    spot = shape.capacity == SPOT
    cap = args.db_connections or shape.max_tasks * shape.processes * (2 if spot else 1)
    scaling: dict[str, Any] = {
        "min_tasks": 0,
        "max_tasks": shape.max_tasks,
        "max_total_processes": cap,
        "target_backlog_per_process": shape.target_backlog_per_process,
        "mean_job_seconds": max(1, math.ceil(durations.mean)),
    }
    return {
        "region": args.region,
        "worker": {
            "processes": shape.processes,
            "cpu": shape.cpu,
            "memory_mib": shape.memory_mib,
            "architecture": shape.architecture,
            **({"capacity": {"spot_weight": 1, "on_demand_weight": 0}} if spot else {}),
        },
        "scaling": scaling,
        "batch_window": {
            "start": args.window_start,
            "end": args.window_end,
            "timezone": args.timezone,
            "min_tasks": shape.window_min_tasks,
            "deadline_margin_minutes": args.margin,
        },
    }


def add_arguments(parser: Parser) -> None:
    """The command line."""
    parser.add_argument("--messages", type=int, required=True, help="messages per day")
    parser.add_argument(
        "--duration", help="job seconds: SECONDS, fixed:SECONDS or uniform:LOW:HIGH"
    )
    parser.add_argument(
        "--duration-mean", type=float, help="mean job seconds (with --duration-max)"
    )
    parser.add_argument("--duration-max", type=float, help="longest job seconds")
    parser.add_argument("--window-start", default="04:00", help="HH:MM; the batch arrives then")
    parser.add_argument("--window-end", default="09:00", help="HH:MM")
    parser.add_argument("--timezone", default="Asia/Tokyo")
    parser.add_argument("--margin", type=int, default=30, help="minutes before the window end")
    parser.add_argument(
        "--process-memory",
        type=int,
        help=f"MiB per process (default {PROCESS_MEMORY_MIB}, or --measured's)",
    )
    parser.add_argument(
        "--process-cpu",
        type=float,
        help=f"vCPU per busy process (default {PROCESS_CPU:g}, or --measured's)",
    )
    parser.add_argument(
        "--measured",
        type=Path,
        metavar="FILE",
        help="per-process memory, CPU and handler mode from `queue-worker measure --out FILE` "
        "(not with --process-memory, --process-cpu)",
    )
    parser.add_argument(
        "--handler-mode",
        choices=sorted(sizing.KIT_SLOT_OVERHEAD_MIB),
        help="whose memory the kit adds per process (default: --env's worker.handler_mode, "
        "else callable)",
    )
    parser.add_argument(
        "--region",
        choices=pricing.REGIONS,
        help="prices of this region (default: --env's region, else ap-northeast-1)",
    )
    parser.add_argument(
        "--architecture",
        choices=[*pricing.ARCHITECTURES, "any"],
        help="arm64 needs an arm64 (or multi-arch) image (default: any, but with --env whose "
        "worker.image is the team's own, that environment's worker.architecture)",
    )
    parser.add_argument(
        "--capacity",
        default="any",
        choices=[*CAPACITIES, "any"],
        help="spot needs jobs that survive a SIGTERM (the kit hands them back)",
    )
    add_spot_arguments(parser, SPOT_INTERRUPTIONS_PER_HOUR, "the cost of jobs that run again")
    parser.add_argument("--growth", type=float, default=10, help="max tasks cover this x volume")
    parser.add_argument(
        "--env",
        help="take the database cap (scaling.max_total_processes), region, handler mode and what "
        "the month pays besides compute (monitoring, network, logs) from this cdk.json environment",
    )
    parser.add_argument(
        "--max-total-processes",
        "--db-connections",
        dest="db_connections",
        metavar="N",
        type=int,
        help="the database cap: total worker processes (default: --env's, else none); with "
        "--env, what the plan would be if the database allowed N",
    )
    parser.add_argument(
        "--cdk-json", type=Path, help="where --env is read (default: the project's cdk.json)"
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
    parser.add_argument(
        "--write",
        action="store_true",
        help="with --env: write the plan into that environment of --cdk-json after showing "
        "the diff and asking (other keys are kept)",
    )
    parser.add_argument("--yes", action="store_true", help="with --write: do not ask")


def per_process_figures(args: argparse.Namespace) -> None:
    """args.process_memory, process_cpu (and handler_mode) from --measured, else the defaults
    where not given; ``args.figures_from`` says where they came from. UsageError when
    --measured comes with --process-memory or --process-cpu, or another --handler-mode."""
    args.figures_from = "--process-memory, --process-cpu"
    if args.measured is None:
        if args.process_memory is None and args.process_cpu is None:
            args.figures_from = "the reference workload's, the defaults"
        if args.process_memory is None:
            args.process_memory = PROCESS_MEMORY_MIB
        if args.process_cpu is None:
            args.process_cpu = PROCESS_CPU
        return
    given = [o for o, v in (("--process-memory", args.process_memory), ("--process-cpu",
             args.process_cpu)) if v is not None]  # fmt: skip
    if given:
        raise UsageError(f"--measured conflicts with {' and '.join(given)}: give one or the other")
    figures = measured.read(args.measured)
    if args.handler_mode not in (None, figures.handler_mode):
        raise UsageError(
            f"--handler-mode {args.handler_mode}: --measured {args.measured} was measured in "
            f"{figures.handler_mode} mode (measure again with that environment)"
        )
    args.process_memory, args.process_cpu = figures.process_memory_mib, figures.process_cpu
    args.handler_mode = figures.handler_mode
    args.figures_from = f"{figures.source()}, {args.measured}"


def _validate(args: argparse.Namespace) -> tuple[Durations, int, int]:
    per_process_figures(args)
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
    problems.spot(args)
    problems.at_least("--start-latency", args.start_latency, 0)
    problems.at_least("--scale-out-delay", args.scale_out_delay, 0)
    if not problems.items and end - start - args.margin * 60 <= 0:
        problems.add("--margin", args.margin, "leaves no time in the window")
    problems.fail()
    if args.write and (not args.env or args.json):
        raise UsageError("--write needs --env (the environment to write) and no --json")
    if args.yes and not args.write:
        raise UsageError("--yes goes with --write")
    return durations, start, end


def cap_source(args: argparse.Namespace, config: EnvironmentConfig | None) -> str:
    """Where the database cap comes from (reading --env's ``config`` into args.db_connections
    and, unless --region or --handler-mode is given, its region and handler mode into args)."""
    if config is not None:
        given = args.db_connections is not None
        if not given:
            args.db_connections = config.scaling.max_total_processes
        args.handler_mode = args.handler_mode or config.worker.handler_mode
        if args.architecture is None and config.worker.image is not None:
            # The team's own image is built for (or pulled as) what the environment runs:
            # another architecture is the team's decision (--architecture any).
            args.architecture = config.worker.architecture
            args.architecture_of_image = f"{args.env}'s worker.image"
        if args.region is None:
            if config.region not in pricing.REGIONS:
                raise OpsError(
                    f"no Fargate prices for {args.env}'s region {config.region} (known: "
                    f"{', '.join(pricing.REGIONS)}): pass --region"
                )
            args.region = config.region
        return "--max-total-processes" if given else f"{args.env}'s scaling.max_total_processes"
    args.region = args.region or DEFAULT_REGION
    args.handler_mode = args.handler_mode or "callable"
    if args.db_connections is not None:
        return "--max-total-processes"
    return ""


def what_would_fit(
    args: argparse.Namespace,
    durations: Durations,
    window: tuple[int, int],
    facts: Mapping[str, bill.Facts],
) -> str:
    """Without the cap: the shape that would be chosen and the cap it needs."""
    best = choose(evaluate(replace_cap(args, None), durations, *window, facts))
    if best is None:
        return "no shape meets the deadline even without the cap: widen the window"
    # With Spot, the on-demand fallback counts in the cap too.
    need = best.window_min_tasks * best.processes * (2 if best.capacity == SPOT else 1)
    return (
        f"the shape it would choose (cpu {best.cpu}, {best.memory_mib} MiB, {best.processes} "
        f"processes) "
        f"needs {best.window_min_tasks} tasks x {best.processes}"
        f"{' x 2 (its on-demand fallback, for Spot)' if best.capacity == SPOT else ''} = {need} "
        f"processes in the window: raise the cap to at least {need}, or widen the window"
    )


def replace_cap(args: argparse.Namespace, cap: int | None) -> argparse.Namespace:
    """A copy of the arguments with another database cap."""
    return argparse.Namespace(**{**vars(args), "db_connections": cap})


def why(args: argparse.Namespace, best: Shape, source: str) -> str:
    """Why this shape, and what bounds it."""
    reason = (
        f"whole month within {TIE_TOLERANCE:.0%} of the cheapest's compute of the cheapest "
        "whole month that meets the deadline, then the fewest processes per task (finer scaling "
        "steps)"
    )
    fallback = " x 2 (with the on-demand fallback)" if best.capacity == SPOT else ""
    peak = best.max_tasks * best.processes * (2 if fallback else 1)
    tasks = f"{best.max_tasks} tasks x {best.processes}{fallback} = {peak} processes"
    if source:
        cap = f"database cap {args.db_connections} ({source}): {tasks} at most"
    else:
        cap = (
            f"no database cap given (--env or --max-total-processes): the block sets "
            f"max_total_processes to {tasks}; lower it to what your database allows"
        )
    return f"{reason}; {cap}"


def option_reason(args: argparse.Namespace, best: Shape, shapes: list[Shape]) -> str:
    """One sentence: why this architecture and capacity, against the same shape on the others
    (compute, and for Spot what its fallback adds to the month)."""
    same = {
        (s.architecture, s.capacity): s
        for s in shapes
        if (s.cpu, s.memory_mib) == (best.cpu, best.memory_mib)
    }
    parts = []
    image = getattr(args, "architecture_of_image", None)
    if image:
        parts.append(
            f"{image} is the team's own image, for worker.architecture {best.architecture}: "
            "no other architecture planned (--architecture any compares it)"
        )
    x86 = same.get(("x86_64", best.capacity))
    if best.architecture == "arm64" and x86:
        parts.append(
            f"arm64 (Graviton) costs {1 - best.month.compute / x86.month.compute:.0%} less "
            "compute than x86_64 (it needs an arm64 or multi-arch image)"
        )
    spot = same.get((best.architecture, SPOT))
    on_demand = same.get((best.architecture, ON_DEMAND))
    if spot and on_demand:
        saved = on_demand.month.compute - spot.month.compute
        added = (spot.whole_month - spot.month.compute) - (
            on_demand.whole_month - on_demand.month.compute
        )
        rest = (
            f"saves ${saved:.2f} of compute a month, its on-demand fallback's Container Insights, "
            f"alarms and logs add ${added:.2f}"
        )
        if best.capacity == SPOT:
            parts.append(
                f"Spot, planned at {args.spot_discount:.0%} off with "
                f"{args.spot_interruptions_per_hour:g} interruptions per task-hour, {rest}: its "
                f"whole month is ${on_demand.whole_month - spot.whole_month:.2f} below "
                "on-demand's (jobs survive the 2-minute warning: the kit hands them back; the "
                "fallback covers a Spot shortfall)"
            )
        elif not spot.feasible:
            parts.append(f"Spot does not fit ({spot.note})")
        else:
            parts.append(
                f"Spot {rest}: its whole month is ${spot.whole_month - best.whole_month:.2f} "
                "above on-demand's"
            )
    if not parts:
        return f"{best.architecture} {best.capacity}: the cheapest option allowed"
    return f"{best.architecture} {best.capacity}: " + "; ".join(parts)


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
            s.architecture,
            s.capacity,
            s.cpu,
            s.memory_mib,
            s.processes,
            f"{s.price_per_hour:.5f}",
            s.target_backlog_per_process,
            s.window_min_tasks,
            s.max_tasks,
            s.expected_finish,
            f"{s.compute_per_day:.4f}",
            f"{s.whole_month:.2f}",
            s.note,
        ]
        for s in shapes
    ]


HEADER = [
    "",
    "arch",
    "capacity",
    "cpu",
    "MiB",
    "procs",
    "$/task-h",
    "target",
    "win min",
    "max",
    "finish",
    "compute $/day",
    "whole $/month",
]


def execute(args: argparse.Namespace) -> int:
    """Plan; print the chosen shape first. Exit 1 when no shape fits."""
    durations, start, end = _validate(args)
    config = environment(cdk_json(args), args.env) if args.env else None
    source = cap_source(args, config)
    facts = priced_environment(args, config)
    shapes = evaluate(args, durations, start, end, facts)
    best = choose(shapes)
    block = cdk_block(args, best, durations) if best else None
    problem = "" if best else what_would_fit(args, durations, (start, end), facts)
    lowest = floor(args, durations)
    against_floor = (
        f"compute floor ${lowest.compute_per_day:.4f}/day: {args.messages} x "
        f"{durations.mean:g} job-seconds at the cheapest on-demand price per process (cpu "
        f"{lowest.cpu}, {lowest.memory_mib} MiB, {lowest.processes} processes, "
        f"{lowest.architecture})"
    )
    to_floor = best and round(best.compute_per_day / lowest.compute_per_day, 3)
    if best is not None:
        against_floor += f"; the chosen shape's compute = {to_floor:.2f}x the floor"
    if best is None and not source:
        problem = "no shape finishes before the deadline: widen the window or lower the margin"
    cap = f" under the database cap {args.db_connections} ({source})" if source else ""
    if args.json:
        print_json(
            {
                "best": best and best.as_dict(lines=True),
                "why": why(args, best, source) if best else problem,
                "option": option_reason(args, best, shapes) if best else None,
                "floor": asdict(lowest),
                "compute_vs_floor": to_floor,
                "priced_as": priced_as(args),
                "per_process": {
                    "memory_mib": args.process_memory,
                    "cpu": args.process_cpu,
                    "handler_mode": args.handler_mode,
                    "from": args.figures_from,
                },
                "max_total_processes": args.db_connections,
                "max_total_processes_from": source or None,
                "cdk_json": block,
                "shapes": [s.as_dict() for s in shapes],
            }
        )
        if best is None:
            print(f"error: no shape fits{cap}: {problem}", file=sys.stderr)
        return 0 if best else 1
    workload = (
        f"{args.messages} messages/day, jobs {durations.low}-{durations.high} s "
        f"(mean {durations.mean:g}), window {args.window_start}-{args.window_end} "
        f"{args.timezone}, deadline {args.margin} min before its end"
    )
    if best is None:
        print(f"no shape fits{cap}: {problem}")
        print(f"({workload})")
    else:
        print(
            f"chosen: {best.architecture} {best.capacity}, cpu {best.cpu}, {best.memory_mib} MiB, "
            f"{best.processes} processes per task: whole month ${best.whole_month:.2f} (compute "
            f"${best.month.compute:.2f}, the rest ${best.whole_month - best.month.compute:.2f}), "
            f"expected finish {best.expected_finish}"
        )
        print(f"why: {option_reason(args, best, shapes)}.")
        print(f"shape: {why(args, best, source)}")
        print(against_floor)
        print(f"for: {workload}")
        print(f"per process: {per_process_text(args)}")
        print(f"\nwhole month of the chosen shape ({priced_as(args)}):")
        print("\n".join(bill.text(best.month)))
    listed = shown(shapes, best, args.all)
    print()
    print("\n".join(table(rows(listed, best), [*HEADER, "note"])))
    if len(listed) < len(shapes):
        print(f"({len(shapes) - len(listed)} more shapes: --all)")
    if best is None:
        print(f"error: no shape fits{cap}: {problem}", file=sys.stderr)  # after the table
        return 1
    print("\ncdk.json environment block:")
    print(json.dumps(block, indent=2))
    if args.write and block is not None:
        write_plan(cdk_json(args), args.env, block, args.yes)
    return 0


def per_process_text(args: argparse.Namespace) -> str:
    """The figures a process is planned with, and where they came from."""
    return (
        f"{args.process_memory} MiB and {args.process_cpu:g} vCPU busy, plus the kit's own "
        f"share in {args.handler_mode} mode (stacks/sizing.py): {args.figures_from}"
    )


def priced_as(args: argparse.Namespace) -> str:
    """Whose settings the month is priced with."""
    settings = f"{args.env}'s settings in cdk.json" if args.env else "the config's defaults"
    return (
        f"{bill.DAYS_PER_MONTH:.1f} days of this batch, {settings} with the block's window, "
        f"{args.region} prices (scripts/capacity/pricing.py)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.capacity.plan`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
