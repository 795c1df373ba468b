"""The synthesized prod template, simulated on the reference day (scripts/simulate).

The acceptance check of the scaling design: what CloudFormation would deploy finishes the
batch before 08:30 at close to the ideal cost, kills no job and, at 10x, works once only the
limits are raised; when they are not, the deadline alarm fires.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts import simulate
from tests.infra.conftest import Synthesized, synthesize


def simulated(s: Synthesized, capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    templates = sorted(str(p) for p in Path(s.outdir).glob("*.template.json"))
    args = [arg for path in templates for arg in ("--template", path)]
    assert simulate.main([*args, "--deadline", "08:30", "--json", *flags]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_reference_day_finishes_by_0830_near_the_ideal_cost(
    prod: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    day = simulated(prod, capsys)
    assert day["messages"] == 2000 and day["deadline_met"] is True
    assert day["cost_ratio"] <= 1.15
    assert day["killed_by_scale_in"] == 0 and day["duplicates_by_scaling"] == 0
    assert day["lost"] == 0 and day["remaining"] == 0
    assert day["alarms_fired"] == {}  # neither the deadline nor the backlog alarm


def test_ten_times_the_volume_needs_only_higher_limits(capsys: pytest.CaptureFixture[str]) -> None:
    raised = synthesize("prod", scaling={"max_tasks": 32, "max_total_processes": 256})
    day = simulated(raised, capsys, "--messages", "20000")
    assert day["deadline_met"] is True
    assert day["cost_ratio"] <= 1.15
    assert day["killed_by_scale_in"] == 0 and day["lost"] == 0


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
