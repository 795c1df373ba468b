"""Several queues and fleets in one simulated day (issue 20): who waits, and what the month costs.

A layout is one or more fleets, each consuming its own queues in priority order (a free process
takes the oldest visible message of the first queue that has one, as Laravel's
`queue:work --queue=high,default`). No queue is consumed by two fleets (stacks/config.py refuses
it), so fleets share nothing the simulator models and each runs as its own
:class:`~scripts.capacity.sim.engine.Simulation` on the same day. A fleet's scaling reads the
sum of the backlog of every queue it consumes (its alarms' queue metrics are the queues' sums;
the age of the oldest message the oldest of any): that is how the stacks will wire a worker of
several queues.

The month (:func:`month`) is scripts/capacity/bill.py's, per fleet: the first fleet's templates
as synthesized, plus, for each further queue it consumes, that queue's two alarms (DLQ messages,
oldest message age: one metric each, as the stacks' monitoring builds them for a queue) and the
queue's metrics that each scaling alarm reads of the first (visible and in-flight counts; the
backlog alarm without a window only the visible count): the sum is metric math over them. Each
further fleet adds what its own assembly's templates hold except what an environment has once
(the KMS key, dashboard, NAT gateway, interface endpoints): its alarms, its job metrics (metric
filters, billed in hours with data), its service, and, as usage, its task-hours (public IPv4,
flow-log records), its jobs' log lines and SQS requests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from scripts.capacity import bill
from scripts.capacity.sim.engine import DAY, Simulation
from scripts.capacity.sim.report import Report, clock


@dataclass(frozen=True)
class QueueFigures:
    """One queue of a layout: waits (arrival to first start, seconds; a message not started
    by 24:00 counts its wait until then) and when its last message was done."""

    name: str
    fleet: str
    priority: int  # its place in its fleet's order, 1 first
    messages: int
    wait_p50: int
    wait_p95: int
    wait_max: int
    wait_p95_during_drain: int | None  # arrivals while the deadline queue drains
    finish: str | None  # None: not all done by 24:00
    deadline_met: bool | None  # None: messages still arrive after the deadline


@dataclass(frozen=True)
class FleetFigures:
    """One fleet of a layout: its day (report.build) and its month."""

    name: str
    queues: tuple[str, ...]
    processes: int
    task_shape: str
    peak_tasks: int
    task_hours: float
    compute_per_day: float
    month: dict[str, float | None]  # bill.Bill.totals() of what this fleet adds


@dataclass(frozen=True)
class LayoutFigures:
    """A layout: every queue, every fleet and the whole month."""

    label: str
    deadline: str
    deadline_queue: str
    queues: tuple[QueueFigures, ...]
    fleets: tuple[FleetFigures, ...]
    task_hours: float
    compute_per_day: float
    month: dict[str, float | None]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[int], share: float) -> int:
    """The nearest-rank percentile (`share` in 0..100) of `values`; 0 when empty."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


def _waits(sim: Simulation, place: int, since: int = 0, until: int = DAY) -> list[int]:
    return [
        (m.started if m.started is not None else DAY) - m.sent
        for m in sim.messages
        if m.queue == place and since <= m.sent <= until
    ]


def _finish(sim: Simulation, place: int) -> int | None:
    mine = [m for m in sim.messages if m.queue == place]
    if not mine or any(m.settled is None for m in mine):
        return None
    return max(m.settled for m in mine if m.settled is not None)


def queue_figures(
    fleets: Sequence[tuple[str, Simulation]], deadline_queue: str
) -> tuple[QueueFigures, ...]:
    """Per queue of every fleet, in fleet then priority order. The drain is from the first
    arrival of `deadline_queue` to its last finish (24:00 when it does not finish)."""
    drain = (0, DAY)
    for _, sim in fleets:
        if deadline_queue in sim.queue_order:
            place = sim.queue_order.index(deadline_queue)
            sent = [m.sent for m in sim.messages if m.queue == place]
            end = _finish(sim, place)
            drain = (min(sent, default=0), DAY if end is None else end)
    found = []
    for fleet, sim in fleets:
        deadline = sim.config.deadline
        for place, name in enumerate(sim.queue_order):
            waits = _waits(sim, place)
            during = _waits(sim, place, *drain)
            end = _finish(sim, place)
            last_sent = max((m.sent for m in sim.messages if m.queue == place), default=0)
            found.append(
                QueueFigures(
                    name=name,
                    fleet=fleet,
                    priority=place + 1,
                    messages=len(waits),
                    wait_p50=percentile(waits, 50),
                    wait_p95=percentile(waits, 95),
                    wait_max=max(waits, default=0),
                    wait_p95_during_drain=percentile(during, 95) if during else None,
                    finish=None if end is None else clock(end),
                    deadline_met=None
                    if last_sent > deadline
                    else end is not None and end <= deadline,
                )
            )
    return tuple(found)


def _templates(paths: Sequence[Path]) -> list[dict[str, Any]]:
    return [json.loads(Path(p).read_text()) for p in paths]


def with_queues(facts: bill.Facts, extra_queues: int, window: bool) -> bill.Facts:
    """`facts` of one fleet's templates when its fleet consumes `extra_queues` more queues:
    each adds its two alarms (one metric each) and the metrics of its queue that each scaling
    alarm reads of the first (stacks: the fleet-size alarm its visible and in-flight counts, the
    backlog alarm its visible count, with a window also in-flight)."""
    if not extra_queues:
        return facts
    metrics = list(facts.alarm_metrics)
    for base, more in (
        (bill.BACKLOG_ALARM_METRICS[window], 1 + window),
        (bill.FLEET_SIZE_ALARM_METRICS[window], 2),
    ):
        if base in metrics:  # the scaling alarm as the stacks build it
            metrics.remove(base)
            metrics.append(base + more * extra_queues)
    metrics += [1, 1] * extra_queues
    return replace(facts, alarm_metrics=tuple(sorted(metrics)))


def shared_removed(facts: bill.Facts) -> bill.Facts:
    """What a further fleet adds: its templates' facts less what an environment has once."""
    return replace(facts, kms_keys=0, dashboards=0, nat_gateways=0, interface_endpoint_azs=0)


def usage(sim: Simulation, day: Report) -> bill.Usage:
    """The fleet's simulated day as the bill's usage (its own mean job)."""
    jobs = len(sim.messages)
    mean = sum(m.duration for m in sim.messages) / jobs if jobs else 0.0
    return bill.Usage(
        messages_per_day=jobs,
        mean_job_seconds=mean,
        processes=day.processes_per_task,
        task_hours_per_day=day.task_hours,
        compute_per_day=day.cost,
        active_hours_per_day=bill.active_hours(day.task_hours, day.peak_tasks),
    )


@dataclass(frozen=True)
class Fleet:
    """One simulated fleet of a layout, with its templates (to count what it adds)."""

    name: str
    sim: Simulation
    day: Report
    templates: tuple[Path, ...]


def month(fleets: Sequence[Fleet], region: str) -> list[bill.Bill]:
    """Each fleet's share of the month: the first with everything its templates hold (and its
    further queues), each further one what it adds (:func:`shared_removed`)."""
    bills = []
    for index, fleet in enumerate(fleets):
        facts = bill.facts(_templates(fleet.templates), region)
        window = bool(fleet.sim.model.scheduled_actions)
        facts = with_queues(facts, len(fleet.sim.queue_order) - 1, window)
        if index:
            facts = shared_removed(facts)
        bills.append(bill.bill(facts, usage(fleet.sim, fleet.day)))
    return bills


def build(label: str, fleets: Sequence[Fleet], deadline_queue: str, region: str) -> LayoutFigures:
    """The layout's figures from its simulated fleets."""
    bills = month(fleets, region)
    whole = bill.Bill(tuple(line for b in bills for line in b.lines))
    return LayoutFigures(
        label=label,
        deadline=clock(fleets[0].sim.config.deadline),
        deadline_queue=deadline_queue,
        queues=queue_figures([(f.name, f.sim) for f in fleets], deadline_queue),
        fleets=tuple(
            FleetFigures(
                name=f.name,
                queues=f.sim.queue_order,
                processes=f.day.processes_per_task,
                task_shape=f.day.task_shape,
                peak_tasks=f.day.peak_tasks,
                task_hours=f.day.task_hours,
                compute_per_day=f.day.cost,
                month=b.totals(),
            )
            for f, b in zip(fleets, bills, strict=True)
        ),
        task_hours=round(sum(f.day.task_hours for f in fleets), 2),
        compute_per_day=round(sum(f.day.cost for f in fleets), 4),
        month=whole.totals(),
    )


def text(layout: LayoutFigures) -> str:
    """A human-readable summary."""
    lines = [f"{layout.label}: deadline {layout.deadline} for queue {layout.deadline_queue}"]
    for fleet in layout.fleets:
        lines.append(
            f"  fleet {fleet.name}: queues {', '.join(fleet.queues)} (priority order), "
            f"{fleet.processes} process(es) per task ({fleet.task_shape}), peak {fleet.peak_tasks} "
            f"tasks, {fleet.task_hours} task-hours, compute ${fleet.compute_per_day:.4f} a day, "
            f"month ${fleet.month['total']:.2f}"
        )
    for q in layout.queues:
        during = "n/a" if q.wait_p95_during_drain is None else f"{q.wait_p95_during_drain} s"
        met = {None: "n/a", True: "met", False: "MISSED"}[q.deadline_met]
        lines.append(
            f"  queue {q.name} ({q.fleet} #{q.priority}): {q.messages} messages, wait p50 "
            f"{q.wait_p50} s, p95 {q.wait_p95} s, max {q.wait_max} s; p95 while "
            f"{layout.deadline_queue} drains {during}; finish {q.finish or 'not all by 24:00'}, "
            f"deadline {met}"
        )
    m = layout.month
    lines.append(
        f"  month: ${m['total']:.2f} (compute {m['compute']:.2f}, fixed {m['fixed']:.2f}, "
        f"other usage {m['usage']:.2f}); {layout.task_hours} task-hours a day"
    )
    return "\n".join(lines)


MARKDOWN_HEADER = (
    "| layout | fleets (queues in priority order) | {q}: wait p50 / p95 / max (s) | {q}: p95 "
    "while {d} drains (s) | {d}: finish | {d}: deadline | task-hours a day | compute a day "
    "(USD) | whole month (USD) | of it fixed (USD) |\n"
    "| --- | --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"
)


def markdown_header(watched: str, deadline_queue: str) -> str:
    return MARKDOWN_HEADER.format(q=watched, d=deadline_queue)


def markdown_row(layout: LayoutFigures, watched: str) -> str:
    """One row of the layouts table: the `watched` queue's waits, the deadline queue's end."""
    by_name = {q.name: q for q in layout.queues}
    w, d = by_name[watched], by_name[layout.deadline_queue]
    fleets = "; ".join(
        f"{f.name}: {' > '.join(f.queues)}, {f.processes} x {f.task_shape}, peak {f.peak_tasks}"
        for f in layout.fleets
    )
    cells = [
        layout.label,
        fleets,
        f"{w.wait_p50} / {w.wait_p95} / {w.wait_max}",
        "n/a" if w.wait_p95_during_drain is None else str(w.wait_p95_during_drain),
        d.finish or "not done by 24:00",
        f"{'met' if d.deadline_met else 'MISSED'} ({layout.deadline})",
        f"{layout.task_hours:.2f}",
        f"{layout.compute_per_day:.2f}",
        f"{layout.month['total']:.2f}",
        f"{layout.month['fixed']:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"
