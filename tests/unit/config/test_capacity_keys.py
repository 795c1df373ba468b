"""worker.capacity: the capacity provider strategy and the Spot fallback's keys.

Messages are checked for the full key path and the offending value, whatever the wording.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stacks.config import ConfigError, EnvironmentConfig, load_config

ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"][
    "environments"
]
KEY = "environments.prod.worker.capacity"


def load(**overrides: str) -> EnvironmentConfig:
    return load_config(
        ENVIRONMENTS, "prod", {k.replace("__", "."): v for k, v in overrides.items()}
    )


def problems(**overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(**overrides)
    return caught.value.problems


def test_default_is_on_demand_only_with_a_three_minute_fallback_ready() -> None:
    capacity = load().worker.capacity
    assert (capacity.on_demand_base, capacity.on_demand_weight, capacity.spot_weight) == (0, 1, 0)
    assert capacity.fallback_after_minutes == 3
    assert not capacity.spot and not capacity.fallback
    assert capacity.fallback_max_tasks(12) == 0


def test_spot_weight_turns_spot_and_its_fallback_on() -> None:
    config = load(worker__capacity__spot_weight="3", scaling__max_tasks="6")
    assert config.worker.capacity.spot and config.worker.capacity.fallback
    assert config.worker.capacity.fallback_max_tasks(6) == 6


def test_fallback_null_turns_the_fallback_off() -> None:
    config = load(
        worker__capacity__spot_weight="1", worker__capacity__fallback_after_minutes="null"
    )
    assert config.worker.capacity.spot and not config.worker.capacity.fallback


def test_spot_runs_on_arm64() -> None:
    config = load(
        worker__capacity__spot_weight="1", worker__architecture="arm64", scaling__max_tasks="6"
    )
    assert config.worker.architecture == "arm64" and config.worker.capacity.spot


def test_base_above_max_tasks() -> None:
    (message,) = problems(worker__capacity__on_demand_base="13")
    assert message.startswith(f"{KEY}.on_demand_base: 13 ")
    assert "scaling.max_tasks 12" in message and "0 to 12" in message


def test_base_times_processes_above_the_connection_cap() -> None:
    """The base is checked on its own (max_tasks above the cap is reported beside it)."""
    found = problems(
        worker__capacity__on_demand_base="13",
        scaling__max_tasks="13",
        scaling__max_total_processes="200",
        worker__processes="16",
        worker__cpu="1024",
        worker__memory_mib="4096",
    )
    (message,) = [p for p in found if p.startswith(f"{KEY}.on_demand_base: 13 ")]
    assert "208" in message and "max_total_processes 200" in message


def test_spot_counts_the_fallback_in_the_connection_cap() -> None:
    (message,) = problems(worker__capacity__spot_weight="1")
    assert message.startswith("environments.prod.scaling.max_tasks: (12 tasks + 12 on-demand")
    assert "192 exceeds max_total_processes 100" in message
    assert "fallback_after_minutes null" in message


def test_a_base_shrinks_the_fallback() -> None:
    config = load(
        worker__capacity__spot_weight="1",
        worker__capacity__on_demand_base="4",
        scaling__max_tasks="7",
    )
    assert config.worker.capacity.fallback_max_tasks(7) == 3


def test_both_weights_zero() -> None:
    (message,) = problems(worker__capacity__on_demand_weight="0")
    assert message.startswith(f"{KEY}.spot_weight: 0 ")


@pytest.mark.parametrize(
    ("key", "value"),
    [("spot_weight", "1001"), ("on_demand_weight", "-1"), ("fallback_after_minutes", "0")],
)
def test_out_of_range(key: str, value: str) -> None:
    (message,) = problems(**{f"worker__capacity__{key}": value})
    assert message.startswith(f"{KEY}.{key}: {value} ")
