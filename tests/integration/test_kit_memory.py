"""The kit's memory figures (stacks/sizing.py) hold for the real fleet, measured as
scripts/devtools/measure_memory.py does (docs/benchmarks.md).

Scaled down for speed: 2 processes instead of the 8 of the benchmark, 1-second phases. The
figures are per task and per process, so the process count does not change them.
"""

from __future__ import annotations

import pytest

from scripts.devtools.measure_memory import BEYOND_LIMIT, TASK_ROLES, run_mode
from stacks import sizing


@pytest.mark.parametrize("mode", ["callable", "command", "consumer"])
def test_the_kits_measured_share_fits_the_sizing_figures(mode: str) -> None:
    phases = run_mode(mode, processes=2, busy_seconds=1, idle_seconds=1)
    assert [p.name for p in phases] == (["idle"] if mode == "consumer" else ["idle", "busy"])
    for phase in phases:
        assert all(phase.count.get(role) == 1 for role in TASK_ROLES), phase.count
        assert phase.count.get("loop", 0) == 2, phase.count  # consumer mode: the watcher
        assert 0 < phase.task_mib <= sizing.kit_task_mib(mode)
        beyond = phase.per_slot(phase.own, BEYOND_LIMIT[mode])
        assert 0 < beyond <= sizing.KIT_SLOT_OVERHEAD_MIB[mode]
