"""`python -m worker.health`: the container's health check (task definition and Dockerfile).

Exit 0 (healthy) when all of these hold, else print what failed and exit 1:

1. supervisord runs: ``WORKER_RUN_DIR/supervisord.pid`` names a live process;
2. the fleet's watch found no process that cannot work (no ``fatal`` marker in
   ``WORKER_RUN_DIR``, worker.supervise: FATAL, or no receive after repeated starts or within
   WORKER_START_TIMEOUT_SECONDS);
3. a worker loop made progress recently: the newest ``WORKER_RUN_DIR/alive-<process name>``
   mark is younger than :func:`stale_after_seconds`. Each loop process touches its mark after
   every successful receive (a long poll returns within RECEIVE_WAIT_SECONDS, messages or not)
   and on every heartbeat beat (every HEARTBEAT_INTERVAL_SECONDS, also while a long job runs).
   Skipped in ``consumer`` handler mode: the team's own consumer receives instead of the kit's
   loop and writes no mark.

ECS runs it every 30 s once the start period is over; three failures in a row mark the
container unhealthy and ECS replaces the task.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from worker.settings import Settings
from worker.supervise import ALIVE_PREFIX, DEFAULTS, FATAL_MARKER, alive_mark, fleet_failure

__all__ = ["ALIVE_PREFIX", "alive_mark", "main", "mark_alive", "problems", "stale_after_seconds"]
PIDFILE = "supervisord.pid"
# Beyond two of the longest gaps between marks: a slow SQS call or a busy CPU must not make
# a working fleet look dead.
STALE_SLACK_SECONDS = 30.0


def mark_alive(run_dir: str | Path, process_name: str) -> None:
    """Touch the process's mark; never fails the caller (a missing run dir only means no mark)."""
    with contextlib.suppress(OSError):
        alive_mark(run_dir, process_name).touch()


def stale_after_seconds(receive_wait_seconds: float, heartbeat_interval_seconds: float) -> float:
    """A fleet whose newest mark is older than this made no progress: 2 x the longest gap
    between two marks of a working process (a long poll, a heartbeat interval) + 30 s."""
    return 2 * max(receive_wait_seconds, heartbeat_interval_seconds) + STALE_SLACK_SECONDS


def problems(
    run_dir: Path, *, check_progress: bool, stale_after: float, now: float | None = None
) -> list[str]:
    """What makes the fleet in ``run_dir`` unhealthy (empty when healthy)."""
    found = []
    if not _supervisord_runs(run_dir / PIDFILE):
        found.append(f"supervisord is not running (no live process in {run_dir / PIDFILE})")
    if (run_dir / FATAL_MARKER).exists():
        found.append(f"the fleet cannot work: {fleet_failure(run_dir)}")
    if check_progress:
        marks = [p.stat().st_mtime for p in run_dir.glob(f"{ALIVE_PREFIX}*")]
        age = (time.time() if now is None else now) - max(marks, default=float("-inf"))
        if age > stale_after:
            newest = f"the newest is {age:.0f} s old" if marks else "there is none"
            found.append(
                f"no worker made progress in {stale_after:.0f} s ({ALIVE_PREFIX}* marks: {newest})"
            )
    return found


def _supervisord_runs(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


def main(env: Mapping[str, str] = os.environ) -> int:
    """Check the fleet described by ``env`` (the container's variables); 0 healthy, 1 not."""

    def number(name: str, default: float) -> float:
        try:
            return float(env.get(name) or default)
        except ValueError:
            return default

    stale_after = stale_after_seconds(
        number("RECEIVE_WAIT_SECONDS", Settings.receive_wait_seconds),
        number("HEARTBEAT_INTERVAL_SECONDS", Settings.heartbeat_interval_seconds),
    )
    found = problems(
        Path(env.get("WORKER_RUN_DIR") or DEFAULTS["WORKER_RUN_DIR"]),
        check_progress=env.get("WORKER_HANDLER_MODE", "").strip() != "consumer",
        stale_after=stale_after,
    )
    print("; ".join(found) or "healthy")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
