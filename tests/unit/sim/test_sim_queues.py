"""Several queues in one simulated fleet, and several fleets (issue 20, item 5): the priority
rule, scaling on the summed backlog, the single-queue day unchanged, and the CLI's layouts."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from sim_fixtures import kit_template, write

from scripts.capacity import simulate
from scripts.capacity.sim import layout, report
from scripts.capacity.sim.engine import Batch, QueueLoad, SimConfig, Simulation
from scripts.capacity.sim.template import read_model

FOUR = 4 * 3600


def _fixed(processes: int, tasks: int) -> dict[str, Any]:
    """`tasks` tasks of `processes` from 04:00 all day, no scaling."""
    template = kit_template(processes=processes, scaling=False, window_min=None)
    target = template["Resources"]["Target"]["Properties"]
    target["MinCapacity"] = target["MaxCapacity"] = 0
    target["ScheduledActions"] = [
        {
            "ScheduledActionName": "set",
            "Schedule": "cron(0 4 * * ? *)",
            "Timezone": "Asia/Tokyo",
            "ScalableTargetAction": {"MinCapacity": tasks, "MaxCapacity": tasks},
        }
    ]
    return template


def _run(tmp_path: Path, template: dict[str, Any], **config: Any) -> Simulation:
    return Simulation(read_model([write(tmp_path, template)]), SimConfig(**config)).run()


def _load(name: str, count: int, start: int, end: int, seconds: int) -> QueueLoad:
    return QueueLoad(name, (Batch(count, start, end),), seconds, seconds)


def _starts(sim: Simulation, name: str) -> list[tuple[int, int]]:
    place = sim.queue_order.index(name)
    return [(m.sent, m.started or -1) for m in sim.messages if m.queue == place]


def test_a_message_of_the_first_queue_is_always_taken_before_one_of_the_second(
    tmp_path: Path,
) -> None:
    # One process; 20 batch jobs and 20 mails wait at 04:00, mails keep coming until 05:00.
    sim = _run(
        tmp_path,
        _fixed(processes=1, tasks=1),
        messages=20,
        arrival_start=FOUR - 600,
        arrival_end=FOUR - 600,
        duration_low=30,
        duration_high=30,
        other_queues=(_load("mail", 60, FOUR - 600, FOUR + 3600, 5),),
        priority=("mail", "default"),
    )
    mails, batch = _starts(sim, "mail"), _starts(sim, "default")
    assert all(started >= 0 for _, started in mails + batch)  # everything ran
    # Whenever a batch job started, no mail sent before then was still waiting.
    for _, begun in batch:
        assert not [sent for sent, started in mails if sent < begun < started]
    # The waiting mails went first: every batch job started after the 20 mails of 03:50.
    queued = sorted(started for sent, started in mails if sent < FOUR)
    assert min(started for _, started in batch) > queued[-1]


def test_the_second_queue_is_not_starved_when_the_first_is_empty(tmp_path: Path) -> None:
    # Mails (first) keep arriving from 04:00, about one a minute: the batch gets the processes
    # the mails leave free.
    sim = _run(
        tmp_path,
        _fixed(processes=2, tasks=1),
        messages=50,
        arrival_start=FOUR,
        arrival_end=FOUR,
        duration_low=60,
        duration_high=60,
        other_queues=(_load("mail", 1200, FOUR, 86_399, 5),),
        priority=("mail", "default"),
    )
    batch = report.build(sim, "x", "")
    place = sim.queue_order.index("default")
    finish = max(m.settled or 0 for m in sim.messages if m.queue == place)
    assert all(m.state == "deleted" for m in sim.messages if m.queue == place)
    # 50 jobs of 60 s on 2 processes: 25 minutes of work, a little more beside the mails.
    assert FOUR + 60 + 25 * 60 <= finish <= FOUR + 60 + 30 * 60
    assert batch.lost == 0


def test_the_fleet_scales_on_the_sum_of_its_queues_backlogs(tmp_path: Path) -> None:
    # The fleet alarm wants ceil(visible / 5) tasks of one process: 5 messages in each queue
    # are 10 visible, 2 tasks; either queue alone is 5, 1 task.
    template = kit_template(processes=1, target=5, window_min=None, max_tasks=10)
    common: dict[str, Any] = {
        "messages": 5,
        "arrival_start": FOUR,
        "arrival_end": FOUR,
        "duration_low": 3000,
        "duration_high": 3000,
    }
    alone = _run(tmp_path, template, **common)
    both = _run(
        tmp_path,
        template,
        **common,
        other_queues=(_load("mail", 5, FOUR, FOUR, 3000),),
    )
    assert max(alone.stats.series["desired"]) == 1
    assert max(both.stats.series["desired"]) == 2


def test_the_single_queue_day_is_unchanged(tmp_path: Path) -> None:
    """The figures main gave before several queues (the kit-shaped fixture, reference day with
    poison and failing first runs); an empty queue, ahead or behind, changes nothing."""
    template = kit_template()
    config: dict[str, Any] = {"poison_fraction": 0.01, "first_attempt_failures": 0.1}
    day = report.build(_run(tmp_path, template, **config), "x", "d")
    assert (day.finish, day.task_hours, day.cost, day.peak_tasks) == ("05:06:51", 29.86, 0.5425, 60)
    assert (day.scaling_actions, day.dead_lettered, day.duplicate_runs) == (27, 20, 0)
    empty = QueueLoad("mail", (), 5, 5)
    for order in (("mail", "default"), ("default", "mail")):
        sim = _run(tmp_path, template, **config, other_queues=(empty,), priority=order)
        assert asdict(report.build(sim, "x", "d")) == asdict(day)


def test_percentile_is_the_nearest_rank() -> None:
    assert layout.percentile([], 95) == 0
    assert layout.percentile(list(range(1, 101)), 95) == 95
    assert layout.percentile([7, 1, 3], 50) == 3
    assert layout.percentile([7, 1, 3], 100) == 7


def _assembly(tmp_path: Path, name: str, template: dict[str, Any]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    write(folder, template, name)
    return folder


def test_two_fleets_each_on_its_queues_with_the_month_of_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = _assembly(tmp_path, "batch", kit_template(processes=4, window_min=None))
    mail = _assembly(tmp_path, "mail", kit_template(processes=2, min_tasks=1, window_min=None))
    argv = ["--cdk-out", str(batch), "--messages", "200", "--deadline", "08:30", "--json"]
    mails = ["--queue", "emails=500@00:00-23:59,fixed:5"]
    assert simulate.main([*argv, *mails, "--fleet", f"mail=emails@{mail}"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert [(f["name"], f["queues"]) for f in two["fleets"]] == [
        ("default", ["default"]),
        ("mail", ["emails"]),
    ]
    queues = {q["name"]: q for q in two["queues"]}
    assert queues["default"]["deadline_met"] is True and queues["default"]["messages"] == 200
    assert queues["emails"]["messages"] == 500 and queues["emails"]["wait_p95"] < 60
    # The mail fleet adds its own alarms, metric filters and task-hours to the month.
    assert two["fleets"][1]["month"]["fixed"] > 0
    assert two["month"]["total"] == pytest.approx(
        sum(f["month"]["total"] for f in two["fleets"]), abs=0.02
    )
    # One fleet, mails first: the template's fleet takes both queues.
    assert simulate.main([*argv, *mails, "--priority", "emails,default"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert [f["queues"] for f in one["fleets"]] == [["emails", "default"]]
    assert one["task_hours"] < two["task_hours"] + 24  # no second fleet running all day


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--queue", "emails:5000@00:00"], "--queue 'emails:5000@00:00': expected NAME=COUNT@"),
        (["--queue", "emails=5000@25:00"], "--queue '25:00': expected HH:MM"),
        (["--queue", "emails=5000@00:00,fast"], "--queue emails 'fast': expected SECONDS"),
        (["--queue", "default=5@00:00"], "'default' is the template's queue"),
        (["--queue", "a=1@00:00", "--queue", "a=2@00:00"], "queue 'a' is given twice"),
        (["--queue", "a=1@00:00", "--priority", "a"], "name each queue of the template's"),
        (["--queue", "a=1@00:00", "--fleet", "m=b@/tmp"], "--fleet 'b': not a --queue"),
        (["--queue", "a=1@00:00", "--fleet", "m=a"], "expected NAME=QUEUE[,QUEUE...]@ASSEMBLY"),
        (["--queue", "a=1@00:00", "--seeds", "2"], "neither --seeds above 1 nor --chart"),
        (["--priority", "default"], "--fleet and --priority need at least one --queue"),
    ],
)
def test_bad_layout_input_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    path = write(tmp_path, kit_template(window_min=None))
    with pytest.raises(SystemExit) as exited:
        simulate.main(["--template", str(path), *flags])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
