"""worker.health: the container health check, on run directories made in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from worker.health import (
    STALE_SLACK_SECONDS,
    alive_mark,
    main,
    mark_alive,
    problems,
    stale_after_seconds,
)
from worker.supervise import mark_fleet_failed


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run dir of a running fleet: supervisord's pidfile names a live process (this one)."""
    (tmp_path / "supervisord.pid").write_text(f"{os.getpid()}\n")
    return tmp_path


def env_of(run_dir: Path, **extra: str) -> dict[str, str]:
    return {"WORKER_RUN_DIR": str(run_dir), **extra}


def test_a_fleet_with_a_fresh_mark_is_healthy(run_dir: Path) -> None:
    mark_alive(run_dir, "worker_00")
    assert problems(run_dir, check_progress=True, stale_after=60) == []
    assert main(env_of(run_dir)) == 0


def test_the_newest_mark_counts(run_dir: Path) -> None:
    mark_alive(run_dir, "worker_00")
    mark_alive(run_dir, "worker_01")
    old = time.time() - 600
    os.utime(alive_mark(run_dir, "worker_00"), (old, old))
    assert problems(run_dir, check_progress=True, stale_after=60) == []


def test_a_fleet_whose_marks_are_stale_is_unhealthy(run_dir: Path) -> None:
    mark_alive(run_dir, "worker_00")
    now = time.time() + 61
    (problem,) = problems(run_dir, check_progress=True, stale_after=60, now=now)
    assert "no worker made progress in 60 s" in problem and "61 s old" in problem


def test_a_fleet_without_any_mark_is_unhealthy(run_dir: Path) -> None:
    (problem,) = problems(run_dir, check_progress=True, stale_after=60)
    assert "there is none" in problem
    assert main(env_of(run_dir)) == 1


def test_consumer_mode_needs_no_mark(run_dir: Path) -> None:
    """The team's own consumer receives instead of the kit's loop: nothing writes marks."""
    assert main(env_of(run_dir, WORKER_HANDLER_MODE="consumer")) == 0


def test_a_fatal_marker_makes_the_fleet_unhealthy(run_dir: Path) -> None:
    mark_alive(run_dir, "worker_00")
    mark_fleet_failed(run_dir, "worker_01", "worker_01 went FATAL")
    assert problems(run_dir, check_progress=True, stale_after=60) == [
        "the fleet cannot work: worker_01 went FATAL"
    ]


def test_a_dead_supervisord_makes_the_fleet_unhealthy(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (tmp_path / "supervisord.pid").write_text(gone)
    mark_alive(tmp_path, "worker_00")
    (problem,) = problems(tmp_path, check_progress=True, stale_after=60)
    assert problem.startswith("supervisord is not running")


def test_no_pidfile_means_supervisord_is_not_running(tmp_path: Path) -> None:
    mark_alive(tmp_path, "worker_00")
    assert main(env_of(tmp_path)) == 1


def test_the_bound_follows_receive_wait_and_heartbeat_interval() -> None:
    assert stale_after_seconds(20, 30) == 2 * 30 + STALE_SLACK_SECONDS
    assert stale_after_seconds(20, 5) == 2 * 20 + STALE_SLACK_SECONDS


def test_main_reads_the_bound_from_the_container_variables(run_dir: Path) -> None:
    mark_alive(run_dir, "worker_00")
    old = time.time() - 50
    os.utime(alive_mark(run_dir, "worker_00"), (old, old))
    # defaults (20 s receive wait, 30 s heartbeat): 90 s bound, a 50 s old mark is fine
    assert main(env_of(run_dir)) == 0
    # 5 s each: 40 s bound
    fast = {"RECEIVE_WAIT_SECONDS": "5", "HEARTBEAT_INTERVAL_SECONDS": "5"}
    assert main(env_of(run_dir, **fast)) == 1


def test_marking_never_fails_the_worker(tmp_path: Path) -> None:
    mark_alive(tmp_path / "missing", "worker_00")  # no run dir: no mark, no error
    assert not (tmp_path / "missing").exists()
