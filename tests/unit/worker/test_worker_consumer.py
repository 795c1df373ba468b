"""`consumer` mode: the team's consumer under the watcher (signals, exit status, memory)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.supervise import STOPPING_MARKER

from tests.integration.fleet import ROOT, WORKER_IMAGE

# A stand-in for `php artisan queue:work`: grows by GROW MiB every 0.2 s (0: stays small),
# on SIGTERM writes "term" to the file in argv[1] and exits 0 (as Laravel and Symfony do),
# or ignores it when argv[3] == "ignore", or exits argv[4] at once when given.
CONSUMER = """
import signal, sys, time
out, grow, on_term = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if len(sys.argv) > 4:
    sys.exit(int(sys.argv[4]))
def stop(signum, frame):
    open(out, "w").write("term")
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if on_term == "ignore" else stop)
kept = []
while True:
    kept.append(b"x" * (grow * 2**20))
    time.sleep(0.2)
"""


class Watched:
    """`python -m worker` in consumer mode, in its own process group as supervisord starts it,
    with its own WORKER_RUN_DIR (`run_dir`); `consumer` replaces the stand-in CONSUMER's
    command."""

    def __init__(self, tmp_path: Path, *args: str, consumer: str = "", **env: str) -> None:
        script = tmp_path / "consumer.py"
        script.write_text(CONSUMER)
        self.out = tmp_path / "out"
        self.log = tmp_path / "watcher.log"
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir(exist_ok=True)
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                cwd=WORKER_IMAGE,
                env={
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join([str(ROOT), str(WORKER_IMAGE)]),
                    "QUEUE_URL": "http://127.0.0.1:1/000000000000/unused",
                    "WORKER_RUN_DIR": str(self.run_dir),
                    "WORKER_HANDLER_MODE": "consumer",
                    "WORKER_HANDLER": consumer
                    or f"{sys.executable} {script} {self.out} {' '.join(args)}",
                    "SUPERVISOR_PROCESS_NAME": "worker_00",
                    **env,
                },
                stdout=log,
                start_new_session=True,
            )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The watcher's log lines so far (`name`: those of that event)."""
        written = self.log.read_text().split("\n")[:-1]  # whole lines: a last one may be half
        lines = [json.loads(line) for line in written]
        return [e for e in lines if name is None or e["event"] == name]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; watcher log:\n{self.log.read_text()}"
            time.sleep(0.05)

    def wait(self, timeout: float = 30) -> tuple[int, list[dict[str, Any]]]:
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode, self.events()


def test_a_consumer_above_the_memory_limit_is_asked_to_stop_and_recycled(tmp_path: Path) -> None:
    watched = Watched(tmp_path, "20", "stop", MAX_MEMORY_MIB_PER_PROCESS="100")
    code, lines = watched.wait()
    assert code == 0  # a clean exit: supervisord starts a fresh consumer
    assert watched.out.read_text() == "term"  # its own graceful stop, after its current job
    [recycle] = [e for e in lines if e["event"] == "recycle_memory"]
    assert recycle["rss_mib"] > 100 and recycle["limit_mib"] == 100
    [stopped] = [e for e in lines if e["event"] == "worker_stopped"]
    assert stopped["reason"] == "recycle_memory" and stopped["max_rss_mib"] > 100
    started = next(e for e in lines if e["event"] == "worker_started")
    assert started["mode"] == "consumer" and started["process"] == "worker_00"


def test_sigterm_reaches_the_consumer_and_its_exit_status_is_the_watchers(tmp_path: Path) -> None:
    watched = Watched(tmp_path, "0", "stop", MAX_MEMORY_MIB_PER_PROCESS="256")
    time.sleep(1)
    watched.process.send_signal(signal.SIGTERM)
    code, lines = watched.wait()
    assert code == 0 and watched.out.read_text() == "term"
    assert [e["reason"] for e in lines if e["event"] == "worker_stopped"] == ["sigterm"]


def test_a_watcher_started_while_the_fleet_stops_never_starts_the_consumer(
    tmp_path: Path,
) -> None:
    """The stop signal was lost before the watcher's handlers (supervisord's fork-exec window):
    the entrypoint's marker stops it before the consumer takes any work."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / STOPPING_MARKER).touch()
    watched = Watched(tmp_path, "0", "stop", WORKER_RUN_DIR=str(run_dir))
    code, lines = watched.wait()
    assert code == 0 and not watched.out.exists()
    assert [e["event"] for e in lines] == ["worker_stopped"]
    assert lines[0]["reason"] == "sigterm"


def test_a_consumer_that_fails_passes_its_exit_status_on(tmp_path: Path) -> None:
    watched = Watched(tmp_path, "0", "stop", "3")
    code, lines = watched.wait()
    assert code == 3  # supervisord sees the failure (and goes FATAL if it repeats)
    assert [e["exit_code"] for e in lines if e["event"] == "worker_stopped"] == [3]


def test_a_consumer_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    watched = Watched(tmp_path, "0", "ignore", WORKER_STOP_GRACE_SECONDS="1")
    time.sleep(1)
    watched.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code, _ = watched.wait()
    assert code == 128 + signal.SIGKILL
    assert time.monotonic() - started < 5


def test_a_consumer_that_leaks_mid_job_is_killed_at_the_hard_ceiling(tmp_path: Path) -> None:
    """A consumer that goes on growing after the SIGTERM (its current job leaks) is killed at
    1.5 x the limit, not left to grow until the grace ends."""
    watched = Watched(
        tmp_path,
        "10",  # 50 MiB/s
        "ignore",  # as a consumer finishing a leaking job: the SIGTERM changes nothing
        MAX_MEMORY_MIB_PER_PROCESS="100",
        WORKER_STOP_GRACE_SECONDS="20",
    )
    started = time.monotonic()
    code, lines = watched.wait()
    assert time.monotonic() - started < 10  # not the 20-s grace
    assert code == 0  # a recycle: supervisord starts a fresh consumer
    # Usually first asked to stop above the limit (unless one sample jumped past the ceiling).
    assert [e["limit_mib"] for e in lines if e["event"] == "recycle_memory"] in ([100], [])
    [killed] = [e for e in lines if e["event"] == "kill_memory"]
    assert killed["level"] == "error" and killed["ceiling_mib"] == 150
    assert 150 < killed["rss_mib"] < 200  # sampled every 0.25 s above the limit
    assert "above 1.5 x MAX_MEMORY_MIB_PER_PROCESS=100 (150 MiB)" in killed["reason"]
    [stopped] = [e for e in lines if e["event"] == "worker_stopped"]
    assert stopped["reason"] == "kill_memory" and stopped["exit_code"] == -signal.SIGKILL
    assert stopped["max_rss_mib"] < 200
