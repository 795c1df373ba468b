"""Deadline-aware scaling's keys: scaling.mean_job_seconds, batch_window.deadline_margin_minutes.

Messages are checked for the full key path and the offending value only, so these tests hold
whatever the wording (and across the port of stacks/config.py to pydantic).
"""

from __future__ import annotations

import copy
import json
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from stacks.config import MAX_BATCH_WINDOWS, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"][
    "environments"
]
WINDOW = {"start": "04:00", "end": "09:00", "timezone": "America/New_York", "min_tasks": 1}


def load(**overrides: Any) -> Any:
    return load_config(
        ENVIRONMENTS, "prod", {k.replace("__", "."): v for k, v in overrides.items()}
    )


def problem(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(**overrides)
    (found,) = caught.value.problems
    return found


def test_defaults_are_the_reference_workload_and_half_an_hour() -> None:
    config = load()
    assert config.scaling.mean_job_seconds == 165
    (window,) = config.batch_windows
    assert window.deadline_margin_minutes == 30
    assert window.deadline == time(8, 30)


def test_overrides_set_both_keys() -> None:
    config = load(scaling__mean_job_seconds="60", batch_window__deadline_margin_minutes="0")
    assert config.scaling.mean_job_seconds == 60
    assert config.batch_windows[0].deadline == time(9, 0)


@pytest.mark.parametrize("value", [0, 43201])
def test_mean_job_seconds_outside_1_to_43200(value: int) -> None:
    found = problem(scaling__mean_job_seconds=value)
    assert "environments.prod.scaling.mean_job_seconds" in found and str(value) in found


@pytest.mark.parametrize("value", [-1, 300, 301])
def test_margin_must_leave_part_of_the_window(value: int) -> None:
    found = problem(batch_window__deadline_margin_minutes=value)  # the window is 300 minutes
    assert "environments.prod.batch_window.deadline_margin_minutes" in found
    assert str(value) in found


def test_margin_of_a_window_in_a_list_names_its_index() -> None:
    envs = copy.deepcopy(ENVIRONMENTS)
    envs["prod"].pop("batch_window")
    envs["prod"]["batch_windows"] = [WINDOW, {**WINDOW, "deadline_margin_minutes": "x"}]
    with pytest.raises(ConfigError) as caught:
        load_config(envs, "prod")
    (found,) = caught.value.problems
    assert "environments.prod.batch_windows[1].deadline_margin_minutes" in found
    assert "'x'" in found


def test_more_windows_than_the_scale_out_alarm_can_follow() -> None:
    envs = copy.deepcopy(ENVIRONMENTS)
    envs["prod"].pop("batch_window")
    count = MAX_BATCH_WINDOWS + 1
    envs["prod"]["batch_windows"] = [
        {**WINDOW, "start": f"{hour:02d}:00", "end": f"{hour:02d}:50"} for hour in range(count)
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(envs, "prod")
    (found,) = caught.value.problems
    assert "environments.prod.batch_windows" in found and str(count) in found
