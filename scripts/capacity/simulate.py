"""Simulate one day of the synthesized templates: SQS, Fargate tasks, alarms and scaling.

    queue-worker simulate --env prod
    queue-worker simulate --cdk-out cdk.out/prod
    queue-worker simulate --template a.json --template b.json --messages 20000 --json
    queue-worker simulate --cdk-out cdk.out/prod --markdown-row --label "kit 1x"
    queue-worker simulate --cdk-out cdk.out/prod --batch 1000@07:30 --chart day.png
    queue-worker simulate --cdk-out cdk.out/prod --fail-on-miss

Reads what CloudFormation would deploy (not the Python config): `--env NAME` the assembly
`make synth ENV=NAME` wrote (cdk.out/NAME), `--cdk-out DIR` another assembly, or `--template`
the given templates. Defaults: the reference day
(2,000 messages sent 03:55-04:00, durations uniform 30-300 s, 60 s task start, 2026-11-24 in
the scheduled actions' timezone or Asia/Tokyo). `--batch COUNT@HH:MM[-HH:MM]` adds a batch
(repeat it). With Spot in the template's strategy, `--spot-interruptions-per-hour RATE`
(per Spot task-hour) sends each Spot task a 2-minute warning (SIGTERM) at random, and
`--spot-capacity N` lets ECS place at most N Spot tasks; the report counts jobs interrupted
and re-run, and the cost by capacity type. `--sqs-lag`, `--ecs-lag` and `--job-lag` set
how late each source's datapoints arrive (a range draws each one's delay), `--metric-gap`
drops a source's datapoints for a while, `--first-attempt-failures` fails that share of first
runs. The deadline is --deadline, else the template's
metadata or output naming it (the kit's `Deadline0400To0900`: the window's end minus its
margin), else 08:30. Exit 0 whatever the outcome (read the report), unless --fail-on-miss
and the deadline was missed (exit 1, after the report, with one `error:` line on stderr); 2 on
bad input.

Several queues and fleets (issue 20; scripts/capacity/sim/layout.py says what is modelled):

    queue-worker simulate --cdk-out cdk.out/prod --queue emails=5000@00:00-24:00,fixed:5 \
        --priority emails,default
    queue-worker simulate --cdk-out cdk.out/prod --queue emails=5000@00:00-24:00,fixed:5 \
        --fleet mail=emails@/tmp/mail-assembly --markdown-row

The template's queue is `default` (--messages, --arrival, --batch, --duration). `--queue
NAME=COUNT@HH:MM[-HH:MM][,DURATION]` adds a queue with its own arrivals (uniform in the window)
and job durations (--duration's syntax, default fixed:5). The template's fleet consumes
`default` and every added queue no `--fleet` takes, in `--priority` order (default: `default`,
then the queues as given). `--fleet NAME=QUEUE[,QUEUE...]@ASSEMBLY` runs another fleet, read from
that assembly's templates (its scaling, windows, task), on those queues in that order. The report
gives each queue's waits (arrival to start: p50, p95, max, p95 while `default` drains), its
last finish against the deadline, each fleet's task-hours, and the whole month (bill's lines).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from scripts import _cli
from scripts._cli import OpsError, Parser
from scripts.capacity.sim import layout, report
from scripts.capacity.sim.engine import Batch, Gap, QueueLoad, SimConfig, Simulation
from scripts.capacity.sim.inputs import Problems, add_spot_arguments
from scripts.capacity.sim.template import Model, TemplateError, find_templates, read_model

DEFAULT_DEADLINE = "08:30"
DEFAULT_REGION = "ap-northeast-1"
DEFAULT_TIMEZONE = "Asia/Tokyo"
LAG_SOURCES = {
    "sqs": "the queue's (AWS/SQS)",
    "ecs": "Container Insights'",
    "job": "the kit's job metric",
}
HELP = "simulate one day of the synthesized templates (scaling, cost, deadline)"
DEFAULTS_IN_HELP = True  # option help leaves the defaults to argparse
MAIN_QUEUE = "default"  # the template's queue, as stacks/config.py names a single queue
QUEUE_NAME = re.compile(r"[a-z0-9_-]{1,40}")
DEFAULT_QUEUE_DURATION = "fixed:5"


def add_arguments(parser: Parser) -> None:
    """The command line."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--env",
        metavar="NAME",
        help="environment NAME of cdk.json: its synthesized assembly, the project's cdk.out/NAME "
        "(make synth ENV=NAME)",
    )
    source.add_argument(
        "--cdk-out", type=Path, help="cloud assembly dir: reads its *.template.json"
    )
    source.add_argument(
        "--template", type=Path, action="append", help="a template (repeat to merge resources)"
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--arrival", default="03:55-04:00", help="HH:MM-HH:MM, local time")
    parser.add_argument(
        "--batch",
        action="append",
        default=[],
        metavar="COUNT@HH:MM[-HH:MM]",
        help="another batch on top of --messages, e.g. 1000@07:30 (repeatable)",
    )
    parser.add_argument(
        "--duration",
        default="uniform:30:300",
        help="job seconds: SECONDS, fixed:SECONDS or uniform:LOW:HIGH (default uniform:30:300)",
    )
    parser.add_argument("--start-latency", type=int, default=60, help="seconds to start a task")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="simulate seeds --seed .. --seed + N - 1 and print one summary line (Spot's "
        "interruptions are random)",
    )
    parser.add_argument("--date", default="2026-11-24", help="the simulated day, YYYY-MM-DD")
    parser.add_argument(
        "--timezone", help="default: the scheduled actions' timezone, else Asia/Tokyo"
    )
    parser.add_argument("--region", help="default: the templates' region, else ap-northeast-1")
    parser.add_argument(
        "--deadline", help="HH:MM local; default: the template's deadline metadata, else 08:30"
    )
    parser.add_argument(
        "--poison-fraction", type=float, default=0.0, help="share of always-failing messages"
    )
    parser.add_argument(
        "--wake-lag", type=int, default=600, help="extra SQS metric lag after a long idle, s"
    )
    for lag_source, published_by in LAG_SOURCES.items():
        parser.add_argument(
            f"--{lag_source}-lag",
            default="60",
            metavar="S[-S]",
            help=f"seconds {published_by} datapoints take to publish, or a range drawn from "
            "uniformly",
        )
    parser.add_argument(
        "--metric-gap",
        action="append",
        default=[],
        metavar="SOURCE@HH:MM-HH:MM",
        help=f"datapoints of SOURCE ({', '.join(LAG_SOURCES)}) for those minutes never arrive "
        "(repeatable)",
    )
    parser.add_argument(
        "--first-attempt-failures",
        type=float,
        default=0.0,
        help="share of messages whose first run fails after its duration (then retried)",
    )
    parser.add_argument("--processes", type=int, help="what-if: override WORKER_PROCESSES")
    add_spot_arguments(
        parser, 0.0, "each Spot task gets its 2-minute warning (SIGTERM) at this rate"
    )
    parser.add_argument(
        "--spot-capacity",
        metavar="N[@HH:MM-HH:MM]",
        help="Spot tasks that can run at once, all day or between two times; ECS cannot place "
        "more (default: no shortfall)",
    )
    parser.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="NAME=COUNT@HH:MM[-HH:MM][,DURATION]",
        help="another queue: COUNT messages sent uniformly in the window, jobs of DURATION "
        f"(--duration's syntax, default {DEFAULT_QUEUE_DURATION}); repeatable",
    )
    parser.add_argument(
        "--priority",
        metavar="NAME,NAME...",
        help="the order the template's fleet takes its queues (default: default, then the "
        "--queue ones it consumes as given)",
    )
    parser.add_argument(
        "--fleet",
        action="append",
        default=[],
        metavar="NAME=QUEUE[,QUEUE...]@ASSEMBLY",
        help="another fleet, from that cloud assembly's templates, consuming those --queue "
        "queues in that order; repeatable",
    )
    parser.add_argument("--label", help="the setup's name in the report (default: the source)")
    parser.add_argument("--chart", help="write a PNG chart of the day here")
    parser.add_argument(
        "--fail-on-miss", action="store_true", help="exit 1 when the deadline is missed (for CI)"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as JSON")
    output.add_argument(
        "--markdown-row", action="store_true", help="print one benchmarks table row"
    )
    parser.add_argument(
        "--markdown-header", action="store_true", help="with --markdown-row: the header first"
    )


def configure(args: argparse.Namespace, model: Model) -> tuple[SimConfig, str]:
    """The simulation inputs from the flags and the model, and where the deadline came from."""
    problems = Problems()
    problems.at_least("--messages", args.messages, 1)
    problems.at_least("--start-latency", args.start_latency, 0)
    problems.at_least("--seeds", args.seeds, 1)
    problems.at_least("--wake-lag", args.wake_lag, 0)
    for flag in ("--poison-fraction", "--first-attempt-failures"):
        share = getattr(args, flag[2:].replace("-", "_"))
        if not 0 <= share <= 1:
            problems.add(flag, share, "must be between 0 and 1")
    lags = {
        source: _lag(f"--{source}-lag", getattr(args, f"{source}_lag"), problems)
        for source in LAG_SOURCES
    }
    gaps = tuple(_gap(text, problems) for text in args.metric_gap)
    if args.processes is not None:
        problems.at_least("--processes", args.processes, 1)
    problems.spot(args)
    spot_capacity, spot_short = _spot_capacity(args.spot_capacity, problems)
    start_text, _, end_text = args.arrival.partition("-")
    arrival_start = problems.clock("--arrival", start_text)
    arrival_end = problems.clock("--arrival", end_text or start_text)
    if arrival_end < arrival_start:
        problems.add("--arrival", args.arrival, "the end must not be before the start")
    durations = problems.durations("--duration", args.duration)
    more = tuple(_batch(text, problems) for text in args.batch)
    zones = [a.timezone for a in model.scheduled_actions if a.timezone]
    timezone = problems.timezone(
        "--timezone", args.timezone or (zones[0] if zones else DEFAULT_TIMEZONE)
    )
    if args.deadline:
        deadline_text, source = args.deadline, "--deadline"
    elif model.deadline:
        deadline_text, source = model.deadline, "template"
    else:
        deadline_text, source = DEFAULT_DEADLINE, "default"
    deadline = problems.clock("--deadline", deadline_text)
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        problems.add("--date", args.date, "expected YYYY-MM-DD")
        day = date(2026, 11, 24)
    problems.fail()
    config = SimConfig(
        messages=args.messages,
        arrival_start=arrival_start,
        arrival_end=arrival_end,
        duration_low=durations.low,
        duration_high=durations.high,
        start_latency=args.start_latency,
        seed=args.seed,
        day=day,
        timezone=timezone,
        region=args.region or model.region or DEFAULT_REGION,
        poison_fraction=args.poison_fraction,
        wake_lag=args.wake_lag,
        deadline=deadline,
        processes=args.processes,
        more_batches=more,
        spot_interruptions_per_hour=args.spot_interruptions_per_hour,
        spot_capacity=spot_capacity,
        spot_short=spot_short,
        spot_discount=args.spot_discount,
        sqs_lag=lags["sqs"],
        ecs_lag=lags["ecs"],
        job_lag=lags["job"],
        gaps=gaps,
        first_attempt_failures=args.first_attempt_failures,
    )
    return config, source


def _lag(flag: str, text: str, problems: Problems) -> tuple[int, int]:
    """S or LOW-HIGH seconds, 0 <= LOW <= HIGH."""
    low, _, high = text.partition("-")
    if not low.isdigit() or not (high or low).isdigit() or int(high or low) < int(low):
        problems.add(flag, text, "expected SECONDS or LOW-HIGH seconds, LOW <= HIGH")
        return (60, 60)
    return (int(low), int(high or low))


def _gap(text: str, problems: Problems) -> Gap:
    """SOURCE@HH:MM-HH:MM."""
    source, _, window = text.partition("@")
    start_text, _, end_text = window.partition("-")
    if source not in LAG_SOURCES or not end_text:
        problems.add(
            "--metric-gap", text, f"expected SOURCE@HH:MM-HH:MM, SOURCE one of {list(LAG_SOURCES)}"
        )
        return Gap("sqs", 0, 0)
    start = problems.clock("--metric-gap", start_text)
    end = problems.clock("--metric-gap", end_text)
    if end <= start:
        problems.add("--metric-gap", text, "the end must be after the start")
    return Gap("jobs" if source == "job" else source, start, end)


def _spot_capacity(text: str | None, problems: Problems) -> tuple[int | None, tuple[int, int]]:
    """N or N@HH:MM-HH:MM: the Spot tasks ECS can place (between the two times)."""
    whole_day = (0, 24 * 3600)
    if text is None:
        return None, whole_day
    count, _, window = text.partition("@")
    if not count.isdigit():
        problems.add("--spot-capacity", text, "expected N or N@HH:MM-HH:MM, N >= 0")
        return None, whole_day
    if not window:
        return int(count), whole_day
    start_text, _, end_text = window.partition("-")
    start = problems.clock("--spot-capacity", start_text)
    end = problems.clock("--spot-capacity", end_text or "")
    if end <= start:
        problems.add("--spot-capacity", text, "the end must be after the start")
    return int(count), (start, end)


def _batch(text: str, problems: Problems) -> Batch:
    """COUNT@HH:MM or COUNT@HH:MM-HH:MM."""
    count_text, _, window = text.partition("@")
    start_text, _, end_text = window.partition("-")
    if not count_text.isdigit() or int(count_text) < 1 or not start_text:
        problems.add("--batch", text, "expected COUNT@HH:MM or COUNT@HH:MM-HH:MM, COUNT >= 1")
        return Batch(0, 0, 0)
    start = problems.clock("--batch", start_text)
    end = problems.clock("--batch", end_text) if end_text else start
    if end < start:
        problems.add("--batch", text, "the end must not be before the start")
    return Batch(int(count_text), start, end)


def _queue_load(text: str, problems: Problems) -> QueueLoad:
    """NAME=COUNT@HH:MM[-HH:MM][,DURATION]."""
    name, equals, rest = text.partition("=")
    window, _, duration = rest.partition(",")
    count_text, _, times = window.partition("@")
    start_text, _, end_text = times.partition("-")
    expected = (
        "expected NAME=COUNT@HH:MM[-HH:MM][,DURATION], e.g. emails=5000@00:00-24:00,fixed:5 "
        "(NAME 1-40 of a-z 0-9 _ -, COUNT >= 1)"
    )
    if not (equals and QUEUE_NAME.fullmatch(name) and count_text.isdigit() and start_text):
        problems.add("--queue", text, expected)
        return QueueLoad(name, (), 1, 1)
    if name == MAIN_QUEUE:
        problems.add("--queue", text, f"{MAIN_QUEUE!r} is the template's queue: name another")
    if int(count_text) < 1:
        problems.add("--queue", text, expected)
    start = problems.clock("--queue", start_text)
    end = problems.clock("--queue", end_text) if end_text else start
    if end < start:
        problems.add("--queue", text, "the end must not be before the start")
    durations = problems.durations(f"--queue {name}", duration or DEFAULT_QUEUE_DURATION)
    return QueueLoad(name, (Batch(int(count_text), start, end),), durations.low, durations.high)


def _fleet(text: str, problems: Problems) -> tuple[str, tuple[str, ...], Path]:
    """NAME=QUEUE[,QUEUE...]@ASSEMBLY."""
    name, equals, rest = text.partition("=")
    queues_text, at, assembly = rest.partition("@")
    queues = tuple(queues_text.split(","))
    if not (equals and at and assembly and QUEUE_NAME.fullmatch(name)) or not all(
        QUEUE_NAME.fullmatch(q) for q in queues
    ):
        problems.add(
            "--fleet", text, "expected NAME=QUEUE[,QUEUE...]@ASSEMBLY, e.g. mail=emails@/tmp/mail"
        )
    return name, queues, Path(assembly)


def layout_fleets(
    args: argparse.Namespace, config: SimConfig
) -> list[tuple[str, SimConfig, Path | None]]:
    """Each fleet's simulation inputs: the template's fleet first (assembly None), then every
    --fleet. Every queue is consumed by exactly one fleet."""
    problems = Problems()
    loads = {}
    for text in args.queue:
        load = _queue_load(text, problems)
        if load.name in loads:
            problems.add("--queue", text, f"queue {load.name!r} is given twice")
        loads[load.name] = load
    others = [_fleet(text, problems) for text in args.fleet]
    problems.fail()
    taken: dict[str, str] = {}
    for name, queues, _ in others:
        if name == MAIN_QUEUE or [n for n, _, _ in others].count(name) > 1:
            problems.add("--fleet", name, "a fleet name once, not 'default' (the template's)")
        for queue in queues:
            if queue not in loads:
                problems.add("--fleet", queue, f"not a --queue; allowed: {sorted(loads)}")
            elif queue in taken:
                problems.add("--fleet", queue, f"already consumed by fleet {taken[queue]!r}")
            taken[queue] = name
    rest = [MAIN_QUEUE, *(q for q in loads if q not in taken)]
    order = tuple(args.priority.split(",")) if args.priority else tuple(rest)
    if sorted(order) != sorted(rest):
        problems.add(
            "--priority",
            args.priority,
            f"name each queue of the template's fleet once: {', '.join(rest)}",
        )
    problems.fail()
    fleets: list[tuple[str, SimConfig, Path | None]] = [
        (
            MAIN_QUEUE,
            replace(
                config,
                queue_name=MAIN_QUEUE,
                other_queues=tuple(loads[q] for q in order if q != MAIN_QUEUE),
                priority=order,
            ),
            None,
        )
    ]
    for name, queues, assembly in others:
        first = loads[queues[0]]
        fleets.append(
            (
                name,
                replace(
                    config,
                    messages=first.batches[0].count,
                    arrival_start=first.batches[0].start,
                    arrival_end=first.batches[0].end,
                    more_batches=first.batches[1:],
                    duration_low=first.duration_low,
                    duration_high=first.duration_high,
                    poison_fraction=0.0,
                    first_attempt_failures=0.0,
                    processes=None,
                    queue_name=first.name,
                    other_queues=tuple(loads[q] for q in queues[1:]),
                    priority=queues,
                ),
                assembly,
            )
        )
    return fleets


def execute_layout(
    args: argparse.Namespace, model: Model, config: SimConfig, paths: list[Path], label: str
) -> int:
    """Several queues (and fleets): each fleet simulated, the layout's figures printed."""
    if not args.queue:
        raise _cli.UsageError("--fleet and --priority need at least one --queue")
    if args.seeds > 1 or args.chart:
        raise _cli.UsageError("--queue and --fleet take neither --seeds above 1 nor --chart")
    fleets = []
    for name, fleet_config, assembly in layout_fleets(args, config):
        fleet_paths = paths
        fleet_model = model
        if assembly is not None:
            try:
                fleet_paths = find_templates(assembly)
                fleet_model = read_model(fleet_paths)
            except (TemplateError, OSError, KeyError) as error:
                raise OpsError(f"--fleet {name}: cannot read the templates: {error}") from None
        sim = Simulation(fleet_model, fleet_config).run()
        day = report.build(sim, name, "")
        fleets.append(layout.Fleet(name, sim, day, tuple(fleet_paths)))
    result = layout.build(label, fleets, MAIN_QUEUE, config.region)
    watched = next(q.name for q in result.queues if q.name != MAIN_QUEUE)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    elif args.markdown_row:
        if args.markdown_header:
            print(layout.markdown_header(watched, MAIN_QUEUE))
        print(layout.markdown_row(result, watched))
    else:
        print(layout.text(result))
    deadline_met = next(q.deadline_met for q in result.queues if q.name == MAIN_QUEUE)
    if args.fail_on_miss and deadline_met is False:
        raise OpsError(f"--fail-on-miss: queue {MAIN_QUEUE} missed deadline {result.deadline}")
    return 0


def execute(args: argparse.Namespace) -> int:
    """Simulate the day and print the report."""
    if args.env:
        args.cdk_out = _cli.synthesized(Path(args.project) / "cdk.out", args.env)
    try:
        paths = find_templates(args.cdk_out) if args.cdk_out else list(args.template)
        model = read_model(paths)
    except (TemplateError, OSError, KeyError) as error:
        raise OpsError(f"cannot read the templates: {error}") from None
    config, deadline_source = configure(args, model)
    source = f"cdk.out/{args.env}" if args.env else args.cdk_out
    label = args.label or str(source or ", ".join(p.name for p in args.template))
    if args.queue or args.fleet or args.priority:
        return execute_layout(args, model, config, paths, label)
    if args.seeds > 1:
        days = [
            report.build(Simulation(model, replace(config, seed=seed)).run(), label, "")
            for seed in range(args.seed, args.seed + args.seeds)
        ]
        print(report.summary(days, f"seeds {args.seed}-{args.seed + args.seeds - 1}"))
        missed = sum(not d.deadline_met for d in days)
        if args.fail_on_miss and missed:
            raise OpsError(
                f"--fail-on-miss: the deadline was missed on {missed} of {len(days)} days"
            )
        return 0
    sim = Simulation(model, config).run()
    result = report.build(sim, label, deadline_source)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    elif args.markdown_row:
        spot = result.spot
        if args.markdown_header:
            print(report.SPOT_MARKDOWN_HEADER if spot else report.MARKDOWN_HEADER)
        print(report.spot_markdown_row(result) if spot else report.markdown_row(result))
    else:
        print(report.text(result))
    if args.chart:
        report.chart(sim, args.chart, result)
        print(
            f"chart: {Path(args.chart).resolve()}",
            file=sys.stderr if args.json or args.markdown_row else sys.stdout,
        )
    if args.fail_on_miss and not result.deadline_met:
        raise OpsError(f"--fail-on-miss: deadline {result.deadline} {result.verdict}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.capacity.simulate`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
