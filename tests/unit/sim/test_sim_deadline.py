"""What the simulator learned for deadline-aware scaling: metric math time functions (UTC, as
CloudWatch computes them), expressions that read expressions, extra batches, the verdict."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sim_fixtures import kit_template, write

from scripts.capacity import simulate
from scripts.capacity.sim import report
from scripts.capacity.sim.engine import Batch, SimConfig, Simulation
from scripts.capacity.sim.mathexpr import Expression, MathError
from scripts.capacity.sim.template import read_model

# 2026-03-01 is a Sunday; 23:59 UTC there is 08:59 on Monday 2 March in Tokyo.
SUNDAY_NIGHT_UTC = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HOUR(m) * 60 + MINUTE(m)", 23 * 60 + 59),
        ("DAY(m)", 7),  # 1 = Monday .. 7 = Sunday
        ("DATE(m)", 1),
        ("MONTH(m)", 3),
    ],
)
def test_time_functions_read_the_datapoints_utc_timestamp(text: str, expected: int) -> None:
    tokyo = SUNDAY_NIGHT_UTC.astimezone(ZoneInfo("Asia/Tokyo"))  # the same instant
    assert Expression(text).evaluate({"m": 5.0}, tokyo) == expected


def test_a_time_function_of_a_missing_datapoint_is_missing() -> None:
    assert Expression("HOUR(m)").evaluate({"m": None}, SUNDAY_NIGHT_UTC) is None


def test_a_time_function_without_a_timestamp_is_an_error() -> None:
    with pytest.raises(MathError):
        Expression("MINUTE(m)").evaluate({"m": 1.0})


def _with_out_expression(template: dict[str, Any], expression: str) -> dict[str, Any]:
    """The kit template whose fleet-size alarm returns `expression` through two intermediate
    expressions listed before the ones they read (template order is not evaluation order)."""
    metrics = template["Resources"]["AlarmFleet"]["Properties"]["Metrics"]
    stats = [m for m in metrics if "MetricStat" in m]
    metrics[:] = [
        {"Id": "out", "Expression": "gate * needed", "ReturnData": True},
        {"Id": "gate", "Expression": expression, "ReturnData": False},
        {"Id": "needed", "Expression": "CEIL(visible / 80)", "ReturnData": False},
        *stats,
    ]
    return template


@pytest.mark.parametrize(("day", "local_hour"), [(date(2026, 1, 15), 4), (date(2026, 7, 1), 5)])
def test_the_engine_dates_datapoints_in_utc_across_daylight_saving(
    tmp_path: Path, day: date, local_hour: int
) -> None:
    """A scale-out gated on 09:00 UTC acts at 04:00 EST in winter and 05:00 EDT in summer."""
    template = _with_out_expression(kit_template(window_min=None), "IF(HOUR(visible) >= 9, 1, 0)")
    model = read_model([write(tmp_path, template)])
    config = SimConfig(
        messages=400,
        arrival_start=2 * 3600,
        arrival_end=2 * 3600,
        day=day,
        timezone="America/New_York",
        wake_lag=0,
    )
    sim = Simulation(model, config).run()
    first = next(t for t, reason, _, _ in sim.stats.scaling_actions if reason == "PolicyFleet")
    # The 09:00 UTC datapoint is published a minute later and read at the next evaluation.
    assert local_hour * 3600 + 60 <= first <= local_hour * 3600 + 180


def test_extra_batches_arrive_on_top_and_the_reference_day_is_unchanged(tmp_path: Path) -> None:
    model = read_model([write(tmp_path, kit_template())])
    plain = Simulation(model, SimConfig(messages=50)).run()
    same = Simulation(model, SimConfig(messages=50, more_batches=())).run()
    assert [m.duration for m in plain.messages] == [m.duration for m in same.messages]
    late = Batch(30, 7 * 3600 + 30 * 60, 7 * 3600 + 30 * 60)
    sim = Simulation(model, SimConfig(messages=50, more_batches=(late,))).run()
    assert len(sim.messages) == 80
    assert sum(m.sent == late.start for m in sim.messages) == 30
    assert report.build(sim, "two batches", "default").remaining == 0


def test_tasks_needed_is_the_tightest_batch_suffix(tmp_path: Path) -> None:
    model = read_model([write(tmp_path, kit_template(processes=4))])
    config = SimConfig(
        messages=40,
        arrival_start=4 * 3600,
        arrival_end=4 * 3600,
        duration_low=100,
        duration_high=100,
        more_batches=(Batch(80, 8 * 3600, 8 * 3600),),
        deadline=8 * 3600 + 600,
    )
    sim = Simulation(model, config).run()
    # The late batch: 8,000 job-seconds in 480 s (600 s less the queue metric's 60 s to
    # publish and a 60 s task start) on 4-process tasks need ceil(4.2) = 5.
    assert report.tasks_needed(sim) == 5
    # Each first run that fails counts twice.
    for message in sim.messages[-10:]:
        message.fails_first = True
    assert report.tasks_needed(sim) == math.ceil(9000 / (4 * 480))


@pytest.mark.parametrize(
    ("met", "needed", "expected"),
    [
        (True, 3, "met"),
        (False, 5, "MISSED, though max_tasks 12 allowed it"),
        (False, 25, "MISSED: max_tasks 12 cannot make it (it needs at least 25)"),
        (False, None, "MISSED: max_tasks 12 cannot make it (no task count can)"),
    ],
)
def test_verdict(met: bool, needed: int | None, expected: str) -> None:
    assert report.verdict(met, 12, needed) == expected


@pytest.mark.parametrize("value", ["x@07:30", "0@07:30", "10@", "10@08:00-07:00", "10@25:00"])
def test_bad_batches_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    write(tmp_path, kit_template())
    with pytest.raises(SystemExit) as exit_info:
        simulate.main(["--cdk-out", str(tmp_path), "--batch", value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("--batch '") == 1  # one problem, named by its flag


def test_fail_on_miss_exits_1_only_when_missed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, kit_template(max_tasks=1, window_min=1))
    args = ["--cdk-out", str(tmp_path), "--fail-on-miss", "--json"]
    assert simulate.main([*args, "--messages", "10"]) == 0
    assert simulate.main([*args, "--messages", "2000"]) == 1
    capsys.readouterr()
