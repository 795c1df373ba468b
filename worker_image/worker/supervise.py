"""The container's entrypoint around supervisord, and what it shares with the fleet's watch.

`python -m worker.supervise` (PID 1 in the image): fills in defaults for the variables that
supervisord.conf expands (so the image runs with just QUEUE_URL), starts `supervisord -n`,
forwards SIGTERM/SIGINT/SIGHUP to it, reaps orphans, and exits with supervisord's status, or 1
when the watch found that the fleet cannot work (ECS must replace the task and its deployment
circuit breaker count a failed task, not keep a crash loop alive). supervisord itself always
exits 0, hence this wrapper.

`python -m worker.supervise --fatal-listener` (the [eventlistener:fatal] of supervisord.conf)
runs the fleet's watch (worker.watch). Neither module imports typing or dataclasses at run
time: the entrypoint and the watch are small processes that every task pays for
(stacks/sizing.py, tests/integration/test_kit_memory.py). In consumer mode the watch also reads
the queues' pause tags for the task (worker.pause.PauseReader, with boto3: PAUSE_READER_MIB in
stacks/sizing.py) and leaves PAUSED_MARKER for the consumers' watchers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from worker.contract import JOB_ORPHAN_KILLED_EVENT

# No typing at run time (module docstring); mypy reads the block below.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

DEFAULTS = {
    "WORKER_PROCESSES": "2",
    "SUPERVISOR_STOPWAITSECS": "110",
    "WORKER_RUN_DIR": "/tmp/worker-run",
    "WORKER_START_TIMEOUT_SECONDS": "60",
    "WORKER_TASK_DIR": "/tmp/worker-task",
}
JOB_FILE_SUFFIX = ".job"
"""`WORKER_TASK_DIR/<process><suffix>` holds the process group of the job a command-mode worker
runs (worker.handlers.note_job): read by its successor and by this entrypoint at the end."""
FATAL_MARKER = "fatal"
STOPPING_MARKER = "stopping"
"""`WORKER_RUN_DIR/stopping`, left by the entrypoint before it forwards a stop to supervisord
(fleet_stopping)."""
PAUSED_MARKER = "paused"
"""`WORKER_RUN_DIR/paused`, consumer mode: there while every work queue carries the pause tag,
as the fleet's watch last read it (worker.pause.PauseReader); each consumer's watcher obeys it
(fleet_paused, worker.consumer)."""
CONF = Path(__file__).resolve().parent.parent / "supervisord.conf"
EX_CONFIG = 78
ALIVE_PREFIX = "alive-"


def alive_mark(run_dir: str | Path, process_name: str) -> Path:
    """Where process ``process_name`` leaves its liveness mark, touched after each receive and
    each heartbeat beat (worker.health.mark_alive): the one name the loop, the health check and
    the watch use. Here, not in worker.health, so the watch stays a small process."""
    return Path(run_dir) / f"{ALIVE_PREFIX}{process_name}"


def write_line(text: str, stream: TextIO | None = None) -> None:
    """`text` and its newline in one write to `stream` (default stderr): print() writes them
    apart when Python is unbuffered (the images set PYTHONUNBUFFERED), and supervisord,
    copying many processes' pipes into one stream, then glued lines of processes that exited
    together."""
    stream = stream or sys.stderr
    stream.write(text + "\n")
    stream.flush()


def _say(level: str, event: str, **fields: object) -> None:
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "event": event,
        "process": "supervise",
        "pid": os.getpid(),
        **fields,
    }
    write_line(json.dumps(record))


def start_timeout(env: Mapping[str, str]) -> float:
    """WORKER_START_TIMEOUT_SECONDS as a number > 0 (ValueError naming it otherwise)."""
    raw = env.get("WORKER_START_TIMEOUT_SECONDS") or DEFAULTS["WORKER_START_TIMEOUT_SECONDS"]
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"WORKER_START_TIMEOUT_SECONDS={raw!r}: must be a number of seconds > 0")
    return value


def run_supervisord(environ: dict[str, str]) -> int:
    """Start supervisord with `environ` + defaults, wait for it; return the exit status."""
    env = {**environ}
    for name, value in DEFAULTS.items():
        if not env.get(name):
            env[name] = value
    try:
        start_timeout(env)
    except ValueError as error:
        _say("error", "fleet_failed", reason=str(error))
        return EX_CONFIG
    run_dir = Path(env["WORKER_RUN_DIR"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FATAL_MARKER).unlink(missing_ok=True)
    (run_dir / STOPPING_MARKER).unlink(missing_ok=True)
    bin_dir = str(Path(sys.executable).parent)  # the venv's bin: python and supervisord
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    conf = env.get("SUPERVISOR_CONF") or str(CONF)
    supervisord = os.path.join(bin_dir, "supervisord")
    pid = os.posix_spawn(supervisord, [supervisord, "-n", "-c", conf], env)

    def forward(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:  # SIGHUP reloads supervisord: no stop
            (run_dir / STOPPING_MARKER).touch()  # before the signal: see fleet_stopping
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:  # as PID 1, also reap orphans re-parented to us
        child, status = os.waitpid(-1, 0)
        if child == pid:
            break
    code = os.waitstatus_to_exitcode(status)
    kill_left_jobs(Path(env["WORKER_TASK_DIR"]))
    if (run_dir / FATAL_MARKER).exists():
        reason = fleet_failure(run_dir) or "a worker process cannot work"
        _say("error", "fleet_failed", reason=reason, supervisord_exit=code)
        return 1
    return code if code >= 0 else 128 - code


def fleet_stopping(run_dir: str | Path) -> bool:
    """Whether the fleet is stopping: a worker checks this once its own signal handlers are in
    place and, if so, stops at once. supervisord signals a process it has forked but that has
    not yet exec'd the program with supervisord's own handler still installed in the child:
    that signal is lost, and the program would run (and take work) until the stop wait's
    SIGKILL. The entrypoint leaves the marker before it forwards the stop, so a worker that
    misses the signal finds the marker, and one that does not find it gets the signal."""
    return (Path(run_dir) / STOPPING_MARKER).exists()


def fleet_paused(run_dir: str | Path) -> bool:
    """Whether the fleet's watch found every work queue paused (PAUSED_MARKER): a stat."""
    return (Path(run_dir) / PAUSED_MARKER).exists()


def mark_fleet_paused(run_dir: str | Path, paused: bool) -> None:
    """Leave PAUSED_MARKER (created at once, empty) or remove it."""
    marker = Path(run_dir) / PAUSED_MARKER
    if paused:
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def job_file(task_dir: str | Path, process_name: str) -> Path:
    """Where process ``process_name`` records the process group of the job it runs."""
    return Path(task_dir) / f"{process_name}{JOB_FILE_SUFFIX}"


def group_members(pgid: int) -> Iterator[tuple[str, str]]:
    """(pid, state) of each process in process group `pgid`, from /proc ("Z": a zombie)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid):  # state, ppid, pgrp
            yield entry.name, fields[0]


def kill_left_jobs(task_dir: Path) -> None:
    """Kill the jobs that killed workers left running: each process group still named in a
    job file once supervisord has exited. A worker that stopped in time removed its file;
    one SIGKILLed mid-job (past the stop wait, or by hand while the fleet was stopping) has no
    successor to kill its job, and a compound command's children (`sh -c 'a; b'`) do not die
    with the worker (only the shell has the parent-death signal)."""
    for path in sorted(task_dir.glob(f"*{JOB_FILE_SUFFIX}")):
        try:
            pgid = int(path.read_text().strip())
        except (OSError, ValueError):
            continue
        running = any(state != "Z" for _, state in group_members(pgid))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
            if running:
                _say("warning", JOB_ORPHAN_KILLED_EVENT, pgid=pgid, program=path.stem)
        path.unlink(missing_ok=True)


def mark_fleet_failed(run_dir: Path, program: str, reason: str) -> None:
    """Leave the marker that the entrypoint and the health check read (fleet_failure)."""
    (run_dir / FATAL_MARKER).write_text(json.dumps({"program": program, "reason": reason}))


def fleet_failure(run_dir: Path) -> str:
    """Why the watch stopped the fleet ('' when it did not): the marker's reason."""
    try:
        text = (run_dir / FATAL_MARKER).read_text()
    except OSError:
        return ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return str(json.loads(text)["reason"])
    return text.strip() or "a worker program went FATAL"


if __name__ == "__main__":
    if sys.argv[1:] == ["--fatal-listener"]:
        from worker.watch import fatal_listener  # only the watch loads its code

        fatal_listener()
    else:
        sys.exit(run_supervisord(dict(os.environ)))
