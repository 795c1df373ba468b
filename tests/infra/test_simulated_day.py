"""The synthesized prod template, simulated on the reference day (scripts/capacity/simulate).

The acceptance check of the scaling design: what CloudFormation would deploy finishes the
batch by the deadline it carries (08:30: the window's end minus its margin) at close to the
ideal cost, kills no job and, at 10x, works once only the limits are raised; when they are
not, the deadline alarm fires. Days that differ from the plan (a second batch late in the
window, three times the volume, jobs twice as long, a fifth of first runs failing) still
finish on time while max_tasks allows it, with the metrics the scaling reads minutes late.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from scripts.capacity import simulate
from tests.infra.conftest import ROOT, Synthesized, synthesize


def simulated(s: Synthesized, capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    templates = sorted(str(p) for p in Path(s.outdir).glob("*.template.json"))
    args = [arg for path in templates for arg in ("--template", path)]
    assert simulate.main([*args, "--json", *flags]) == 0
    day = dict(json.loads(capsys.readouterr().out))
    assert (day["deadline"], day["deadline_source"]) == ("08:30:00", "template")
    return day


def test_reference_day_finishes_by_0830_near_the_ideal_cost(
    prod: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    day = simulated(prod, capsys)
    assert day["messages"] == 2000 and day["deadline_met"] is True
    assert day["cost_ratio"] <= 1.05  # the target: within 5% of the ideal of the shape
    assert day["killed_by_scale_in"] == 0 and day["duplicates_by_scaling"] == 0
    assert day["lost"] == 0 and day["remaining"] == 0
    assert day["alarms_fired"] == {}  # neither the deadline nor the backlog alarm


def test_a_second_batch_late_in_the_window_still_makes_the_deadline(
    prod: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,000 more messages at 07:30, when the fleet has already gone back to zero: an hour
    left, and the backlog rule alone would run 2 tasks (about 3 hours of work for them)."""
    day = simulated(prod, capsys, "--batch", "1000@07:30")
    assert day["messages"] == 3000
    assert day["deadline_met"] is True, day["verdict"]
    assert day["killed_by_scale_in"] == 0 and day["lost"] == 0 and day["remaining"] == 0
    assert day["peak_tasks"] <= prod.config.scaling.max_tasks
    assert day["cost_ratio"] <= 1.15


def test_three_times_the_volume_makes_the_deadline_within_the_same_limits(
    prod: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    day = simulated(prod, capsys, "--messages", "6000")
    assert day["deadline_met"] is True, day["verdict"]
    assert day["killed_by_scale_in"] == 0 and day["lost"] == 0
    assert day["cost_ratio"] <= 1.15


def test_the_verdict_says_when_max_tasks_cannot_make_it(
    prod: Synthesized, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    day = simulated(prod, capsys, "--messages", "20000")
    assert day["deadline_met"] is False
    assert day["tasks_needed_for_deadline"] > day["max_tasks"] == prod.config.scaling.max_tasks
    assert day["verdict"].startswith("MISSED: max_tasks 12 cannot")
    templates = sorted(str(p) for p in Path(prod.outdir).glob("*.template.json"))
    args = [arg for path in templates for arg in ("--template", path)]
    chart = tmp_path / "day.png"
    flags = ["--messages", "20000", "--fail-on-miss", "--chart", str(chart)]
    assert simulate.main([*args, *flags]) == 1
    captured = capsys.readouterr()
    assert f"chart: {chart}" in captured.out
    assert captured.err == (
        "error: --fail-on-miss: deadline 08:30:00 MISSED: max_tasks 12 cannot make it "
        f"(it needs at least {day['tasks_needed_for_deadline']})\n"
    )
    assert chart.read_bytes().startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def raised() -> Synthesized:
    """prod with the limits the planner gives 10x: ceil(20000 / (80 x 8)) = 32 tasks."""
    return synthesize("prod", scaling={"max_tasks": 32, "max_total_processes": 256})


def test_ten_times_the_volume_needs_only_higher_limits(
    raised: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    day = simulated(raised, capsys, "--messages", "20000")
    assert day["deadline_met"] is True
    assert day["cost_ratio"] <= 1.15
    assert day["killed_by_scale_in"] == 0 and day["lost"] == 0


# AWS late: the queue's datapoints up to 2 minutes later than usual (1-3 min to publish), the
# job metric too, Container Insights' up to 3 minutes later (1-4 min) and missing for five
# minutes as the batch arrives. The scaling reads no Container Insights metric; a late queue
# or job datapoint must delay a decision, never multiply the fleet or stop its scale-in.
LATE = (
    *("--sqs-lag", "60-180", "--job-lag", "60-180"),
    *("--ecs-lag", "60-240", "--metric-gap", "ecs@04:05-04:10"),
)
LONGER_JOBS = ("--duration", "uniform:60:600")  # twice the configured mean job
FAILURES = ("--first-attempt-failures", "0.2")  # a fifth of first runs fail and are retried


def assert_met_near_the_ideal(day: dict[str, Any], ratio: float, quiet: bool = True) -> None:
    """Done by the deadline, nothing killed or lost, and a fleet that went back to zero: one
    left running for the rest of the day would cost several times the ideal. ``quiet``: and
    the early warning did not fire (a day done in time wakes nobody)."""
    assert day["deadline_met"] is True, day["verdict"]
    assert day["remaining"] == 0 and day["lost"] == 0 and day["killed_by_scale_in"] == 0
    assert day["duplicates_by_scaling"] == 0
    assert day["cost_ratio"] <= ratio, day["cost_ratio"]
    warned = [a for a in day["alarms_fired"] if a.startswith("ScalingBacklogBeyondMaxTasks")]
    assert not (quiet and warned), day["alarms_fired"]


@pytest.mark.parametrize(
    "day_flags",
    [(), ("--batch", "1000@07:30"), LONGER_JOBS, FAILURES],
    ids=["reference", "late-batch", "longer-jobs", "failures"],
)
def test_late_metrics_delay_decisions_and_never_multiply_the_fleet(
    prod: Synthesized, capsys: pytest.CaptureFixture[str], day_flags: tuple[str, ...]
) -> None:
    on_time = simulated(prod, capsys, *day_flags)
    late = simulated(prod, capsys, *day_flags, *LATE)
    for day in (on_time, late):
        assert_met_near_the_ideal(day, 1.10)
        assert day["peak_tasks"] <= prod.config.scaling.max_tasks
    # The same work on the same day: late metrics cost at most a few per cent more.
    assert late["cost"] <= on_time["cost"] * 1.10


@pytest.mark.parametrize(
    "day_flags", [LATE, (*LATE, *FAILURES)], ids=["late-metrics", "late-metrics-failures"]
)
def test_ten_times_the_volume_holds_with_late_metrics(
    raised: Synthesized, capsys: pytest.CaptureFixture[str], day_flags: tuple[str, ...]
) -> None:
    day = simulated(raised, capsys, "--messages", "20000", *day_flags)
    # With the failures' extra fifth of work it ends minutes before the deadline: so close a
    # call warns (the early warning, and the deadline alarm too).
    assert_met_near_the_ideal(day, 1.05, quiet=FAILURES[0] not in day_flags)


def test_ten_times_with_more_work_than_max_tasks_allows_says_so_and_the_room_makes_it(
    raised: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    """10x and half of it again at 07:00 (or jobs twice as long), metrics late: 32 tasks
    cannot make it and the verdict names the count needed; with that many, it is met."""
    flags = ("--messages", "20000", "--batch", "10000@07:00", *LATE)
    short = simulated(raised, capsys, *flags)
    assert short["deadline_met"] is False
    needed = short["tasks_needed_for_deadline"]
    assert needed > 32 and short["verdict"].startswith("MISSED: max_tasks 32 cannot")
    # The early warning comes when the second batch does, hours before the deadline.
    (early,) = [a for a in short["alarms_fired"] if a.startswith("ScalingBacklogBeyondMaxTasks")]
    assert "07:00:00" < short["alarms_fired"][early] < "07:30:00"
    room = needed + 3  # the bound assumes every task starts at once; a few more for the ramp
    enough = synthesize("prod", scaling={"max_tasks": room, "max_total_processes": 8 * room})
    assert_met_near_the_ideal(simulated(enough, capsys, *flags), 1.05)


def test_the_deadline_alarm_fires_when_the_limits_are_too_low(
    prod: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    day = simulated(prod, capsys, "--messages", "20000")
    assert day["deadline_met"] is False
    fired = day["alarms_fired"]
    (deadline,) = [name for name in fired if name.startswith("BatchWindowsDeadline")]
    assert fired[deadline] < "09:00:00"
    # The backlog alarm says so hours earlier, while there is time to raise the limits.
    (early,) = [name for name in fired if name.startswith("ScalingBacklogBeyondMaxTasks")]
    assert fired[early] < "04:30:00"


def test_poison_messages_reach_the_dlq_and_its_alarm(
    prod: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    day = simulated(prod, capsys, "--poison-fraction", "0.01")
    assert day["dead_lettered"] == 20 and day["lost"] == 0
    assert any("dlqmessages" in name for name in day["alarms_fired"])


def test_the_chart_answers_did_we_make_it(
    prod: Synthesized, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The missed 10x day's figure, caught where it is saved: verdict, compute and what was
    left at the deadline in the title, the window shaded, the deadline and max_tasks drawn,
    each notify-only alarm that fired marked and named in the legend with its time."""
    from matplotlib.figure import Figure

    figures: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: figures.append(self))
    day = simulated(prod, capsys, "--messages", "20000", "--chart", "unused.png")
    (figure,) = figures
    queue_axis, task_axis = figure.axes
    title = queue_axis.get_title()
    assert "deadline 08:30:00 MISSED: max_tasks 12 cannot" in title
    assert f"compute \\${day['cost']:.2f} = {day['cost_ratio']:.2f}x the ideal" in title
    labels: dict[object, Any] = {line.get_label(): line for line in task_axis.get_lines()}
    assert set(labels[f"deadline {day['deadline']}"].get_xdata()) == {8.5}
    assert max(labels["max_tasks"].get_ydata()) == prod.config.scaling.max_tasks
    window: list[Any] = [p for p in task_axis.patches if p.get_label() == "batch window"]
    assert window and window[0].get_x() == 4.0 and window[0].get_width() == 5.0
    for alarm, fired in day["alarms_fired"].items():  # named in the legend, with the time
        marks = [line for name, line in labels.items() if str(name).startswith(alarm[:40])]
        assert [str(m.get_label()) for m in marks] == [f"{alarm[:40]} at {fired[:5]}"]
    # The fleet is drawn over the limit: at max_tasks all day it still shows.
    assert labels["running"].get_zorder() > labels["max_tasks"].get_zorder()
    assert max(labels["running"].get_ydata()) == prod.config.scaling.max_tasks
    # What was left at the deadline: the 10x day is far from done.
    left = re.search(r", ([\d,]+) left at the deadline\n", title)
    assert left and int(left.group(1).replace(",", "")) > 1000
    assert task_axis.get_xlabel() == "hour of the simulated day (Asia/Tokyo)"


def kit_project(directory: Path) -> Path:
    """A project of the kit in ``directory``: its cdk.json and an empty cdk.out."""
    (directory / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    (directory / "cdk.out").mkdir()
    return directory


def test_env_reads_the_environments_synthesized_assembly(
    prod: Synthesized,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """`simulate --env prod` is `--cdk-out cdk.out/prod` of the project, as `make synth
    ENV=prod` writes it."""
    project = kit_project(tmp_path)
    (project / "cdk.out" / "prod").symlink_to(prod.outdir)
    assert simulate.main(["--project", str(project), "--env", "prod", "--json"]) == 0
    day = json.loads(capsys.readouterr().out)
    assert day["label"] == "cdk.out/prod"
    assert day["deadline_met"] is True and day["messages"] == 2000


def test_env_not_synthesized_says_to_synth(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = kit_project(tmp_path)
    assert simulate.main(["--project", str(project), "--env", "stg"]) == 1
    assert capsys.readouterr().err == (
        f"error: no synthesized templates in {project}/cdk.out/stg: run `make synth ENV=stg` "
        "first\n"
    )


def test_env_is_one_source_among_cdk_out_and_template(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        simulate.main(["--env", "prod", "--cdk-out", "cdk.out/prod"])
    assert exited.value.code == 2
    assert "argument --cdk-out: not allowed with argument --env" in capsys.readouterr().err
