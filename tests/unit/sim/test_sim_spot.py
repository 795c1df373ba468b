"""The simulator's Spot model: the strategy's split, interruptions, a capacity shortfall and the
on-demand fallback. Fleets are small and fixed (scheduled min = max) unless a test scales."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sim_fixtures import kit_template, write
from test_sim_engine import _fixed_fleet

from scripts.capacity import pricing
from scripts.capacity import simulate as simulate_cli
from scripts.capacity.sim import report
from scripts.capacity.sim.engine import ON_DEMAND, SPOT, SimConfig, Simulation
from scripts.capacity.sim.template import CapacityStrategy, FallbackSpec, read_model

MIXED = [
    {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
    {"CapacityProvider": "FARGATE_SPOT", "Weight": 3},
]
ALL_SPOT = [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
FALLBACK = {"max": 4, "out": 3, "in": 3}


def simulate(tmp_path: Path, template: dict[str, Any], **config: Any) -> Simulation:
    model = read_model([write(tmp_path, template)])
    settings: dict[str, Any] = {"arrival_start": 4 * 3600, "arrival_end": 4 * 3600}
    settings.update(config)
    return Simulation(model, SimConfig(**settings)).run()


def fleet(tasks: int, **template: Any) -> dict[str, Any]:
    """``tasks`` worker tasks from 04:00 to 10:00, none before or after."""
    return _fixed_fleet(
        kit_template(scaling=False, window_min=None, **template),
        [("cron(0 4 * * ? *)", tasks), ("cron(0 10 * * ? *)", 0)],
    )


@pytest.mark.parametrize(
    ("strategy", "desired", "spot"),
    [
        (CapacityStrategy(1, 1, 3), 9, 6),  # base 1, then 8 split 1:3 (on-demand rounded up)
        (CapacityStrategy(1, 1, 3), 1, 0),
        (CapacityStrategy(0, 0, 1), 5, 5),
        (CapacityStrategy(2, 1, 1), 5, 1),  # base 2, then 3 split 1:1: 2 on-demand, 1 Spot
        (CapacityStrategy(0, 1, 0), 5, 0),
    ],
)
def test_the_strategy_splits_like_ecs(strategy: CapacityStrategy, desired: int, spot: int) -> None:
    assert strategy.spot_tasks(desired) == spot


def test_the_template_strategy_and_fallback_are_read(tmp_path: Path) -> None:
    model = read_model([write(tmp_path, kit_template(strategy=MIXED, fallback=FALLBACK))])
    assert model.task.strategy == CapacityStrategy(1, 1.0, 3.0)
    fallback = model.fallback
    assert isinstance(fallback, FallbackSpec)
    assert (fallback.logical_id, fallback.max_tasks) == ("FallbackService", 4)
    assert (fallback.out_minutes, fallback.in_minutes) == (3, 3)
    assert [s.adjustment for s in fallback.out_policy.steps] == [1, 2, 3, 4]
    assert [s.adjustment for s in fallback.back_policy.steps] == [0]
    assert fallback.back.treat_missing == "breaching"
    # The fallback's alarms drive its own target: not the worker service's scaling.
    assert all("Fallback" not in a.logical_id for a in model.alarms + model.other_alarms)


def test_tasks_run_on_the_capacity_the_strategy_gives(tmp_path: Path) -> None:
    sim = simulate(tmp_path, fleet(9, strategy=MIXED), messages=1)
    capacities = sorted(t.capacity for t in sim.tasks)
    assert capacities == [ON_DEMAND] * 3 + [SPOT] * 6


def test_spot_costs_the_discounted_price(tmp_path: Path) -> None:
    sim = simulate(tmp_path, fleet(2, strategy=ALL_SPOT), messages=1)
    result = report.build(sim, "spot", "default")
    full = pricing.task_price_per_second(256, 1024, "ap-northeast-1")
    six_hours = 2 * 6 * 3600 * full * (1 - pricing.SPOT_DISCOUNT)
    assert result.cost_by_capacity == {ON_DEMAND: 0.0, SPOT: round(six_hours, 4), "fallback": 0.0}
    assert result.cost == pytest.approx(six_hours, abs=1e-4)


def test_an_interruption_hands_back_the_jobs_that_run_past_the_grace(tmp_path: Path) -> None:
    """One Spot task of 4 processes, jobs of 300 s, an interruption every 10 minutes on
    average: a job with more than the 100 s grace left is handed back and runs again on the
    replacement; none is lost, none is killed."""
    sim = simulate(
        tmp_path,
        fleet(1, strategy=ALL_SPOT),
        messages=40,
        duration_low=300,
        duration_high=300,
        spot_interruptions_per_hour=6,
    )
    result = report.build(sim, "interrupted", "default")
    assert result.spot_interruptions >= 3
    assert result.jobs_interrupted >= result.reruns_after_interruption >= 3
    assert result.handed_back == result.reruns_after_interruption
    assert result.killed_by_interruption == 0 and result.killed_by_scale_in == 0
    assert result.lost == 0 and result.remaining == 0
    assert result.duplicate_runs == 0  # a hand-back is not a duplicate: the run stopped first


def test_jobs_that_end_within_the_grace_finish(tmp_path: Path) -> None:
    sim = simulate(
        tmp_path,
        fleet(1, strategy=ALL_SPOT),
        messages=200,
        duration_low=30,
        duration_high=30,
        spot_interruptions_per_hour=20,
    )
    result = report.build(sim, "short jobs", "default")
    assert result.spot_interruptions >= 1 and result.jobs_interrupted >= 1
    assert result.reruns_after_interruption == 0  # 30 s jobs finish inside the 100 s grace
    assert result.lost == 0 and result.remaining == 0


def test_no_interruptions_on_demand(tmp_path: Path) -> None:
    sim = simulate(tmp_path, fleet(2), messages=8, spot_interruptions_per_hour=60)
    assert report.build(sim, "on-demand", "default").spot_interruptions == 0


def test_spot_beyond_the_capacity_is_not_placed(tmp_path: Path) -> None:
    sim = simulate(tmp_path, fleet(3, strategy=ALL_SPOT), messages=1, spot_capacity=1)
    result = report.build(sim, "short", "default")
    assert result.peak_unplaced == 2
    assert len(sim.tasks) == 1  # ECS retries each minute, never places more


def test_the_fallback_runs_what_spot_cannot_place_after_its_minutes(tmp_path: Path) -> None:
    sim = simulate(
        tmp_path,
        fleet(3, strategy=ALL_SPOT, fallback=FALLBACK),
        messages=24,
        duration_low=600,
        duration_high=600,
        spot_capacity=1,
    )
    result = report.build(sim, "fallback", "default")
    fallback = [t for t in sim.tasks if t.fallback]
    assert len(fallback) == 2 and all(t.capacity == ON_DEMAND for t in fallback)
    # Unplaced from 04:00: the datapoints of 04:00, 04:01 and 04:02 breach, the last one is
    # published at 04:03 (one minute's lag), the alarm acts then.
    assert min(t.requested for t in fallback) == 4 * 3600 + 3 * 60
    assert result.cost_by_capacity["fallback"] > 0 and result.cost_by_capacity[SPOT] > 0
    assert result.lost == 0 and result.remaining == 0
    # At 10:00 the worker service goes to 0: nothing unplaced, the fallback scales in too.
    assert all(t.stopped is not None and t.stopped < 10 * 3600 + 10 * 60 for t in fallback)


def test_the_fallback_stays_at_zero_when_spot_places_everything(tmp_path: Path) -> None:
    sim = simulate(tmp_path, fleet(3, strategy=ALL_SPOT, fallback=FALLBACK), messages=8)
    assert not [t for t in sim.tasks if t.fallback]


def test_the_fallback_never_exceeds_its_max(tmp_path: Path) -> None:
    sim = simulate(
        tmp_path, fleet(8, strategy=ALL_SPOT, fallback=FALLBACK), messages=8, spot_capacity=0
    )
    running = sim.stats.series["fallback"]
    assert max(running) == FALLBACK["max"]


def test_seeds_print_one_summary_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, fleet(2, strategy=ALL_SPOT))
    argv = ["--template", str(path), "--messages", "40", "--arrival", "04:00-04:00"]
    assert simulate_cli.main([*argv, "--seeds", "3", "--spot-interruptions-per-hour", "6"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert ", seeds 1-3: finish " in line and "deadline met every day" in line
    assert line.endswith("lost 0; remaining 0")


def test_the_fallback_scales_in_when_spot_returns(tmp_path: Path) -> None:
    """No Spot capacity 04:00-04:30, then enough: at 04:30 ECS places the Spot tasks, nothing is
    unplaced, and the scale-in alarm (3 minutes, one minute late) removes the idle fallback."""
    sim = simulate(
        tmp_path,
        fleet(2, strategy=ALL_SPOT, fallback=FALLBACK),
        messages=4,
        duration_low=60,
        duration_high=60,
        spot_capacity=0,
        spot_short=(4 * 3600, 4 * 3600 + 1800),
    )
    fallback = [t for t in sim.tasks if t.fallback]
    spot = [t for t in sim.tasks if t.capacity == SPOT]
    assert len(fallback) == 2 and len(spot) == 2
    assert all(t.requested == 4 * 3600 + 1800 for t in spot)  # placed when Spot returns
    assert all(t.stopped == 4 * 3600 + 1800 + 3 * 60 for t in fallback)


def test_spot_capacity_window_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, fleet(2, strategy=ALL_SPOT, fallback=FALLBACK))
    argv = ["--template", str(path), "--messages", "8", "--arrival", "04:00-04:00", "--json"]
    assert simulate_cli.main([*argv, "--spot-capacity", "0@04:00-04:30"]) == 0
    day = json.loads(capsys.readouterr().out)
    assert day["peak_unplaced"] == 2 and day["cost_by_capacity"]["fallback"] > 0
    with pytest.raises(SystemExit) as exit_info:
        simulate_cli.main([*argv, "--spot-capacity", "1@05:00-04:00"])
    assert exit_info.value.code == 2
    assert "--spot-capacity '1@05:00-04:00': the end must be after the start" in (
        capsys.readouterr().err
    )
