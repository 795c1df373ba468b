"""The kit's own memory share: one set of figures for the config check and the planner."""

from __future__ import annotations

import pytest

from scripts.capacity.plan import processes_that_fit
from stacks import sizing
from stacks.config import load_config
from tests.unit.config.test_config import ENVIRONMENTS, problems, prod_with


@pytest.mark.parametrize("mode", ["callable", "command", "consumer"])
def test_need_is_the_recycle_limits_plus_the_kits_task_and_slot_share(mode: str) -> None:
    slot = sizing.KIT_SLOT_OVERHEAD_MIB[mode]
    assert sizing.task_memory_need_mib(1, 200, mode) == 200 + sizing.kit_task_mib(mode) + slot
    assert (
        sizing.task_memory_need_mib(8, 200, mode) - sizing.task_memory_need_mib(7, 200, mode)
        == 200 + slot
    )


def test_only_consumer_mode_pays_for_the_pause_reader_and_once_a_task() -> None:
    """The watch reads the tags for the watchers (worker.pause.PauseReader): no slot does."""
    assert sizing.kit_task_mib("consumer") == sizing.KIT_TASK_OVERHEAD_MIB + sizing.PAUSE_READER_MIB
    others = {sizing.kit_task_mib("callable"), sizing.kit_task_mib("command")}
    assert others == {sizing.KIT_TASK_OVERHEAD_MIB} and sizing.PAUSE_READER_MIB > 0


def test_a_loop_beside_the_watched_process_costs_more_than_a_watcher() -> None:
    costs = sizing.KIT_SLOT_OVERHEAD_MIB
    assert costs["command"] > costs["consumer"] > 0 and costs["command"] > costs["callable"] > 0


@pytest.mark.parametrize("mode", ["callable", "command", "consumer"])
def test_what_fits_is_exactly_what_the_need_allows(mode: str) -> None:
    for memory in (512, 1024, 2048, 4096):
        fit = sizing.processes_that_fit(memory, 200, mode)
        assert sizing.task_memory_need_mib(fit, 200, mode) <= memory
        assert sizing.task_memory_need_mib(fit + 1, 200, mode) > memory


@pytest.mark.parametrize(("mode", "handler"), [("callable", "app:job"), ("command", "php run")])
def test_the_planner_hosts_what_the_config_check_accepts(mode: str, handler: str) -> None:
    """A memory-bound shape (plenty of CPU): the planner's count passes, one more fails."""
    fit = processes_that_fit(1024, 2048, 200, 0.01, mode)
    assert fit == sizing.processes_that_fit(2048, 200, mode) > 1

    def worker(processes: int) -> dict[str, object]:
        return {
            "processes": processes,
            "cpu": 1024,
            "memory_mib": 2048,
            "max_memory_mib_per_process": 200,
            "handler_mode": mode,
            "handler": handler,
        }

    scaling = {"max_tasks": 4, "max_total_processes": 100}
    assert load_config(prod_with(worker=worker(fit), scaling=scaling), "prod")
    (message,) = problems(prod_with(worker=worker(fit + 1), scaling=scaling))
    assert f"cannot hold {fit + 1} processes" in message


@pytest.mark.parametrize("mode", ["callable", "command"])
def test_the_config_check_names_the_kits_share(mode: str) -> None:
    need = sizing.task_memory_need_mib(2, 250, mode)
    assert need > 512
    worker = {
        "processes": 2,
        "cpu": 256,
        "memory_mib": 512,
        "max_memory_mib_per_process": 250,
        "handler_mode": mode,
        "handler": "app:job",
    }
    (message,) = problems(prod_with(worker=worker))
    assert "environments.prod.worker.memory_mib: 512 cannot hold 2 processes" in message
    assert f"kit's own {sizing.kit_memory_mib(2, mode)} MiB in {mode} mode" in message
    assert f"{need} MiB" in message


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
@pytest.mark.parametrize(
    ("mode", "handler"), [("callable", "app:job"), ("command", "php run"), ("consumer", "php q")]
)
def test_shipped_environments_fit_the_kits_share_in_every_mode(
    env: str, mode: str, handler: str
) -> None:
    config = load_config(
        ENVIRONMENTS, env, {"worker.handler_mode": mode, "worker.handler": handler}
    )
    w = config.worker
    assert sizing.task_memory_need_mib(w.processes, w.max_memory_mib_per_process, mode) <= (
        w.memory_mib
    )
