"""The container health check against the real supervisord fleet: the marks the worker loops
write are the ones worker.health reads (one name, worker.health.alive_mark, on both sides)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker import health

from tests.integration.fleet import Fleet, send_jobs

MakeFleet = Callable[..., Fleet]


def test_a_working_fleet_is_healthy_and_a_stopped_one_is_not(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """Scaled down to 2 processes and fast timings (fleet.FAST) to stay quick."""
    pair = make_queue_pair()
    fleet = make_fleet(QUEUE_URL=pair.url, WORKER_PROCESSES=2)
    run_dir = Path(fleet.env["WORKER_RUN_DIR"])
    marks = [health.alive_mark(run_dir, f"worker_0{i}") for i in range(2)]
    fleet.wait_for(lambda: all(m.exists() for m in marks))
    assert health.main(fleet.env) == 0

    send_jobs(sqs_client, pair.url, tmp_path / "record", 1, duration_seconds=2)
    fleet.wait_for(lambda: (tmp_path / "record").exists(), timeout=30)
    assert health.main(fleet.env) == 0  # while a job runs

    assert fleet.stop() == 0
    assert health.main(fleet.env) == 1  # supervisord is gone


def test_every_beat_of_a_busy_process_marks_it(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """One process, a job longer than several heartbeat intervals (0.5 s in fleet.FAST):
    the mark keeps moving while no receive happens."""
    pair = make_queue_pair()
    fleet = make_fleet(QUEUE_URL=pair.url, WORKER_PROCESSES=1)
    mark = health.alive_mark(Path(fleet.env["WORKER_RUN_DIR"]), "worker_00")
    fleet.wait_for(mark.exists)
    send_jobs(sqs_client, pair.url, tmp_path / "record", 1, duration_seconds=5)
    fleet.wait_for(lambda: (tmp_path / "record").exists(), timeout=30)
    seen = set()
    for _ in range(30):
        seen.add(mark.stat().st_mtime)
        if len(seen) >= 4:
            break
        fleet.wait_for(lambda: mark.stat().st_mtime not in seen, timeout=5)
    assert len(seen) >= 4
    assert not fleet.jobs()  # all of it while the one job ran
    assert fleet.stop() == 0
