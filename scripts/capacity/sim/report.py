"""The simulated day's figures: text, JSON, a markdown table row and a chart."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scripts.capacity import pricing
from scripts.capacity.sim.engine import ON_DEMAND, SPOT, Simulation


@dataclass(frozen=True)
class Report:
    """What one simulated day comes to (times as HH:MM:SS local, money in USD)."""

    label: str
    messages: int
    processes_per_task: int
    task_shape: str
    finish: str | None  # when the last message was done or dead-lettered; None: not all
    deadline: str
    deadline_source: str
    deadline_met: bool
    max_tasks: int  # the highest task count the scalable target allowed that day
    tasks_needed_for_deadline: int | None  # at least this many tasks; None: no time at all
    verdict: str  # met | missed, max_tasks allowed it | missed, max_tasks cannot
    remaining: int  # messages neither done nor in the DLQ at the end of the day
    peak_tasks: int
    task_hours: float
    cost: float
    ideal_cost: float
    cost_ratio: float
    ideal_finish: str
    killed_by_scale_in: int
    handed_back: int
    duplicate_runs: int
    duplicates_by_scaling: int
    duplicates_by_visibility: int
    dead_lettered: int
    lost: int
    scaling_actions: int
    alarms_fired: dict[str, str]  # notify-only alarm (deadline, DLQ, ...) -> first ALARM time
    spot: bool  # the service's strategy has Spot
    cost_by_capacity: dict[str, float]  # on-demand (worker service), spot, fallback (on-demand)
    spot_interruptions: int
    jobs_interrupted: int  # running at a 2-minute warning
    reruns_after_interruption: int  # of those, handed back unfinished and run again
    killed_by_interruption: int
    peak_unplaced: int  # worker tasks ECS could not place, at most

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def clock(seconds: float) -> str:
    """HH:MM:SS from seconds after local midnight."""
    whole = round(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def tasks_needed(sim: Simulation) -> int | None:
    """A lower bound of the tasks any scaling needs to finish by the deadline.

    For each batch, the work of it and of every later batch (a first run that fails counts
    twice) must fit between its first arrival plus the reaction of a scaling that reads the
    queue (its first datapoint published, at the slowest of --sqs-lag, and one task start)
    and the deadline: ceil(job-seconds / (processes x seconds)). None when that leaves no time.
    """
    reaction = sim.config.sqs_lag[1] + sim.config.start_latency
    deadline = sim.config.deadline - reaction
    needed = 0
    for batch in sim.config.batches:
        work = sum(m.duration * (1 + m.fails_first) for m in sim.messages if m.sent >= batch.start)
        if work == 0:
            continue
        if batch.start >= deadline:
            return None
        needed = max(needed, math.ceil(work / (sim.processes * (deadline - batch.start))))
    return needed


def verdict(met: bool, max_tasks: int, needed: int | None) -> str:
    """Did we make it, and if not, could max_tasks have made it?"""
    if met:
        return "met"
    if needed is not None and needed <= max_tasks:
        return f"MISSED, though max_tasks {max_tasks} allowed it"
    wanted = "no task count can" if needed is None else f"it needs at least {needed}"
    return f"MISSED: max_tasks {max_tasks} cannot make it ({wanted})"


def build(sim: Simulation, label: str, deadline_source: str) -> Report:
    """Summarize a finished simulation."""
    messages = sim.messages
    settled = [m.settled for m in messages if m.settled is not None]
    remaining = sum(m.state in ("pending", "visible", "inflight") for m in messages)
    done = sum(m.state == "deleted" for m in messages)
    finish = max(settled) if settled and not remaining else None
    by_capacity = {ON_DEMAND: 0.0, SPOT: 0.0, "fallback": 0.0}
    billed = 0.0
    for ran in sim.tasks:
        seconds = pricing.billed_seconds(
            (ran.stopped if ran.stopped is not None else sim.now) - ran.requested
        )
        billed += seconds
        by_capacity["fallback" if ran.fallback else ran.capacity] += (
            seconds * sim.prices[ran.capacity]
        )
    # Every run the day needs: a message whose first run fails runs twice.
    job_seconds = sum(m.duration * (1 + m.fails_first) for m in messages)
    processes = sim.processes
    ideal_cost = job_seconds * sim.price_per_second / processes
    cost = sum(by_capacity.values())
    ideal_finish = max(b.end for b in sim.config.batches) + job_seconds / (
        sim.peak_max_capacity * processes
    )
    stats = sim.stats
    task = sim.model.task
    met = finish is not None and finish <= sim.config.deadline
    needed = tasks_needed(sim)
    max_tasks = sim.peak_max_capacity
    return Report(
        label=label,
        messages=len(messages),
        processes_per_task=processes,
        task_shape=f"{task.cpu}/{task.memory_mib} {task.architecture}"
        + (f" spot {task.spot_share:.0%}" if task.spot_share else ""),
        finish=None if finish is None else clock(finish),
        deadline=clock(sim.config.deadline),
        deadline_source=deadline_source,
        deadline_met=met,
        max_tasks=max_tasks,
        tasks_needed_for_deadline=needed,
        verdict=verdict(met, max_tasks, needed),
        remaining=remaining,
        peak_tasks=int(
            max(
                map(sum, zip(stats.series["running"], stats.series["fallback"], strict=True)),
                default=0,
            )
        ),
        task_hours=round(billed / 3600, 2),
        cost=round(cost, 4),
        ideal_cost=round(ideal_cost, 4),
        cost_ratio=round(cost / ideal_cost, 3) if ideal_cost else 0.0,
        ideal_finish=clock(ideal_finish),
        killed_by_scale_in=stats.killed_by_scale_in,
        handed_back=stats.handed_back,
        duplicate_runs=stats.duplicates_by_scaling + stats.duplicates_by_visibility,
        duplicates_by_scaling=stats.duplicates_by_scaling,
        duplicates_by_visibility=stats.duplicates_by_visibility,
        dead_lettered=sim.dlq,
        lost=len(messages) - done - sim.dlq - remaining,
        scaling_actions=len(stats.scaling_actions),
        alarms_fired={name: clock(t) for name, t in sim.notifications().items()},
        spot=bool(task.strategy.spot_weight),
        cost_by_capacity={k: round(v, 4) for k, v in by_capacity.items()},
        spot_interruptions=stats.spot_interruptions,
        jobs_interrupted=stats.jobs_interrupted,
        reruns_after_interruption=stats.reruns_after_interruption,
        killed_by_interruption=stats.killed_by_interruption,
        peak_unplaced=stats.peak_unplaced,
    )


def text(report: Report) -> str:
    """A human-readable summary."""
    finish = report.finish or f"not finished ({report.remaining} left at 24:00)"
    lines = [
        f"{report.label}: {report.messages} messages, {report.processes_per_task} process(es) "
        f"per task ({report.task_shape})",
        f"  finish           {finish}  (ideal {report.ideal_finish})",
        f"  deadline         {report.deadline} ({report.deadline_source}): {report.verdict}",
        f"  peak tasks       {report.peak_tasks}",
        f"  task-hours       {report.task_hours}",
        f"  compute          ${report.cost:.4f}  (ideal ${report.ideal_cost:.4f}, "
        f"x{report.cost_ratio:.2f})",
        f"  killed by scale-in {report.killed_by_scale_in}, handed back {report.handed_back}",
        *(
            [
                f"  Spot             {report.spot_interruptions} interruptions, "
                f"{report.jobs_interrupted} jobs interrupted, "
                f"{report.reruns_after_interruption} re-run, "
                f"{report.killed_by_interruption} killed; "
                f"at most {report.peak_unplaced} tasks unplaced",
                "  cost by capacity "
                + ", ".join(f"{k} ${v:.4f}" for k, v in report.cost_by_capacity.items()),
            ]
            if report.spot
            else []
        ),
        f"  duplicate runs   {report.duplicate_runs} (scaling {report.duplicates_by_scaling}, "
        f"visibility {report.duplicates_by_visibility})",
        f"  dead-lettered    {report.dead_lettered}, lost {report.lost}",
        f"  scaling actions  {report.scaling_actions}",
        "  notify-only alarms that fired: "
        + (", ".join(f"{n} at {t}" for n, t in report.alarms_fired.items()) or "none"),
    ]
    return "\n".join(lines)


MARKDOWN_HEADER = (
    "| setup | messages | procs/task | finish | all done by deadline | peak tasks | task-hours "
    "| compute (USD) | compute / ideal | killed by scale-in | duplicates: scaling / visibility "
    "| handed back | DLQ | lost |\n"
    "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- "
    "| ---: | ---: | ---: |"
)


def summary(days: list[Report], seeds: str) -> str:
    """One line over several simulated days (seeds) of the same setup."""
    finishes = sorted(day.finish or "never" for day in days)
    missed = sum(not day.deadline_met for day in days)
    costs = [day.cost for day in days]
    return (
        f"{days[0].label}, {seeds}: finish {finishes[0]}-{finishes[-1]}, deadline "
        f"{'met every day' if not missed else f'MISSED {missed} of {len(days)} days'}; compute "
        f"${min(costs):.2f}-{max(costs):.2f}; Spot interruptions "
        f"{sum(d.spot_interruptions for d in days)}, jobs interrupted "
        f"{sum(d.jobs_interrupted for d in days)}, re-run "
        f"{sum(d.reruns_after_interruption for d in days)}; killed "
        f"{sum(d.killed_by_scale_in + d.killed_by_interruption for d in days)}; lost "
        f"{sum(d.lost for d in days)}; remaining {sum(d.remaining for d in days)}"
    )


SPOT_MARKDOWN_HEADER = (
    "| setup | finish | all done by deadline | peak tasks | compute (USD) | on-demand / Spot / "
    "fallback (USD) | Spot interruptions | jobs interrupted / re-run | most tasks unplaced "
    "| killed | lost |\n"
    "| --- | --- | --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |"
)


def spot_markdown_row(report: Report) -> str:
    """One row of the Spot benchmarks table (header: SPOT_MARKDOWN_HEADER)."""
    costs = report.cost_by_capacity
    cells = [
        report.label,
        report.finish or f"not done ({report.remaining} left at 24:00)",
        f"{'yes' if report.deadline_met else 'no'} ({report.deadline})",
        str(report.peak_tasks),
        f"{report.cost:.2f}",
        " / ".join(f"{costs[k]:.2f}" for k in (ON_DEMAND, SPOT, "fallback")),
        str(report.spot_interruptions),
        f"{report.jobs_interrupted} / {report.reruns_after_interruption}",
        str(report.peak_unplaced),
        str(report.killed_by_scale_in + report.killed_by_interruption),
        str(report.lost),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown_row(report: Report) -> str:
    """One row of the benchmarks table (header: MARKDOWN_HEADER)."""
    finish = report.finish or f"not done ({report.remaining} left at 24:00)"
    met = f"{'yes' if report.deadline_met else 'no'} ({report.deadline})"
    if not report.deadline_met:
        needed = report.tasks_needed_for_deadline
        if needed is not None and needed <= report.max_tasks:
            met += f"; max_tasks {report.max_tasks} allowed it"
        else:
            met += f"; max_tasks {report.max_tasks} cannot: needs {needed or 'more'}"
    cells = [
        report.label,
        f"{report.messages:,}",
        str(report.processes_per_task),
        finish,
        met,
        str(report.peak_tasks),
        f"{report.task_hours:.2f}",
        f"{report.cost:.2f}",
        f"{report.cost_ratio:.2f}x" if report.finish else "n/a (unfinished)",
        str(report.killed_by_scale_in),
        f"{report.duplicates_by_scaling} / {report.duplicates_by_visibility}",
        str(report.handed_back),
        str(report.dead_lettered),
        str(report.lost),
    ]
    return "| " + " | ".join(cells) + " |"


def _hours(clock_text: str) -> float:
    hours, minutes = clock_text.split(":")[:2]
    return int(hours) + int(minutes) / 60


def chart(sim: Simulation, path: str, result: Report) -> None:
    """The day as a PNG that answers "did we make it?": queue and tasks over the day, the
    window and the deadline, max_tasks (behind the fleet, which stays visible where it meets
    the limit), each notify-only alarm that fired with its time in the legend; the verdict,
    the messages left at the deadline and the compute in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = sim.stats.series
    hours = [minute / 60 for minute in range(len(series["visible"]))]
    figure, (queue_axis, task_axis) = plt.subplots(2, 1, sharex=True, figsize=(13, 7))
    queue_axis.plot(hours, series["visible"], label="visible")
    queue_axis.plot(hours, series["in_flight"], label="in flight")
    queue_axis.set_ylabel("messages")
    task_axis.step(hours, series["running"], where="post", label="running", zorder=3, linewidth=2)
    if sim.model.task.strategy.spot_weight:
        task_axis.step(hours, series["spot"], where="post", label="of them Spot")
        task_axis.step(hours, series["fallback"], where="post", label="on-demand fallback")
    task_axis.step(hours, series["desired"], where="post", label="desired", linestyle="--")
    task_axis.step(
        hours,
        series["max_tasks"],
        where="post",
        label="max_tasks",
        color="grey",
        linewidth=4,
        alpha=0.35,
        zorder=1,
    )
    task_axis.set_ylim(0, max(series["max_tasks"]) * 1.25 + 1)
    deadline = sim.config.deadline / 3600
    for axis in (queue_axis, task_axis):
        if sim.model.window is not None:
            start, end = (_hours(t) for t in sim.model.window)
            axis.axvspan(start, end, color="tab:green", alpha=0.08, label="batch window")
        axis.axvline(deadline, color="tab:red", linewidth=1.5, label=f"deadline {result.deadline}")
        if result.finish is not None:
            axis.axvline(_hours(result.finish), color="tab:purple", linestyle=":", label="finish")
    fired = [(t / 3600, name) for t, name, state in sim.stats.alarm_log if state == "ALARM"]
    notify = set(sim.notifications())
    scaling = [t for t, name in fired if name not in notify]
    top = max(series["max_tasks"]) * 1.15 + 0.5
    if scaling:
        task_axis.scatter(
            scaling,
            [top] * len(scaling),
            marker="|",
            color="tab:orange",
            label="scaling alarm in ALARM",
        )
    styles = iter(["--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 3))] * 4)
    for t, name in fired:
        if name in notify:
            label = f"{name[:40]} at {clock(t * 3600)[:5]}"
            task_axis.axvline(t, color="tab:red", linestyle=next(styles), alpha=0.7, label=label)
    starts = [b.start / 3600 for b in sim.config.batches]
    ends = [deadline, 24.0 if result.finish is None else _hours(result.finish)]
    if sim.model.window is not None:
        starts.append(_hours(sim.model.window[0]))
        ends.append(_hours(sim.model.window[1]))
    task_axis.set_xlim(max(0.0, min(starts) - 0.5), min(24.0, max(ends) + 0.5))
    task_axis.set_ylabel("tasks")
    task_axis.set_xlabel(f"hour of the simulated day ({sim.config.timezone})")
    for axis in (queue_axis, task_axis):  # beside the plot: nothing drawn hides behind them
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    minute = min(int(sim.config.deadline // 60), len(series["visible"]) - 1)
    left = round(series["visible"][minute] + series["in_flight"][minute])
    queue_axis.set_title(
        f"{result.label}: {result.messages:,} messages, finish {result.finish or 'never'}, "
        f"{left:,} left at the deadline\n"
        f"deadline {result.deadline} {result.verdict}\n"
        f"compute \\${result.cost:.2f} = {result.cost_ratio:.2f}x the ideal of the shape "
        f"(\\${result.ideal_cost:.2f}); killed by scale-in {result.killed_by_scale_in}"
        + (
            f"; Spot: {result.spot_interruptions} interruptions, "
            f"{result.reruns_after_interruption} jobs re-run, on-demand fallback "
            f"\\${result.cost_by_capacity['fallback']:.2f}"
            if result.spot
            else ""
        ),
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
