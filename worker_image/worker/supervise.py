"""The container's entrypoint around supervisord, and the fleet's watch (an event listener).

`python -m worker.supervise` (PID 1 in the image): fills in defaults for the variables that
supervisord.conf expands (so the image runs with just QUEUE_URL), starts `supervisord -n`,
forwards SIGTERM/SIGINT/SIGHUP to it, reaps orphans, and exits with supervisord's status, or 1
when the watch found that the fleet cannot work (ECS must replace the task and its deployment
circuit breaker count a failed task, not keep a crash loop alive). supervisord itself always
exits 0, hence this wrapper.

`python -m worker.supervise --fatal-listener` (the [eventlistener:fatal] of supervisord.conf)
watches every worker process and stops the fleet when one cannot work, i.e. when a process
name has not *received* (a successful SQS receive since it was started: its
``alive-<process>`` mark, worker.health) and either

- has ended :data:`MAX_FAILED_STARTS` incarnations in a row without receiving (an import
  that fails, a handler that dies 1.5 s after start, a queue that does not exist: each start
  ends in an exit within seconds), or
- has not received within WORKER_START_TIMEOUT_SECONDS (default 60) since the first of those
  starts (a process that hangs at start, receives that fail forever, slow crash loops), or
- went FATAL in supervisord (it failed `startretries` times within `startsecs`).

In ``consumer`` mode the kit does not receive: a consumer that stays up for
WORKER_START_TIMEOUT_SECONDS, or exits 0, counts as one that received. The watch then leaves a
marker in WORKER_RUN_DIR (its reason, read by worker.health) and SIGTERMs supervisord, which
stops the other workers gracefully (their jobs get their grace period). The bound of detection:
WORKER_START_TIMEOUT_SECONDS + 5 s (the watch's tick) after the first start that never received.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import NamedTuple, TextIO

DEFAULTS = {
    "WORKER_PROCESSES": "2",
    "SUPERVISOR_STOPWAITSECS": "110",
    "WORKER_RUN_DIR": "/tmp/worker-run",
    "WORKER_START_TIMEOUT_SECONDS": "60",
}
FATAL_MARKER = "fatal"
CONF = Path(__file__).resolve().parent.parent / "supervisord.conf"
EX_CONFIG = 78
MAX_FAILED_STARTS = 3
"""Incarnations of one process in a row that end without a receive: the fleet cannot work."""
WORKER_GROUP = "worker"
"""The [program:worker] of supervisord.conf: the processes the watch follows."""
ALIVE_PREFIX = "alive-"


def alive_mark(run_dir: str | Path, process_name: str) -> Path:
    """Where process ``process_name`` leaves its liveness mark, touched after each receive and
    each heartbeat beat (worker.health.mark_alive): the one name the loop, the health check and
    the watch use. Here, not in worker.health, so the watch stays a small process."""
    return Path(run_dir) / f"{ALIVE_PREFIX}{process_name}"


def _say(level: str, event: str, **fields: object) -> None:
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "event": event,
        "process": "supervise",
        "pid": os.getpid(),
        **fields,
    }
    print(json.dumps(record), file=sys.stderr, flush=True)


class Failure(NamedTuple):
    """A worker process that cannot work: its name and why."""

    program: str
    reason: str


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
    bin_dir = str(Path(sys.executable).parent)  # the venv's bin: python and supervisord
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    conf = env.get("SUPERVISOR_CONF") or str(CONF)
    supervisord = os.path.join(bin_dir, "supervisord")
    pid = os.posix_spawn(supervisord, [supervisord, "-n", "-c", conf], env)

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:  # as PID 1, also reap orphans re-parented to us
        child, status = os.waitpid(-1, 0)
        if child == pid:
            break
    code = os.waitstatus_to_exitcode(status)
    if (run_dir / FATAL_MARKER).exists():
        reason = fleet_failure(run_dir) or "a worker process cannot work"
        _say("error", "fleet_failed", reason=reason, supervisord_exit=code)
        return 1
    return code if code >= 0 else 128 - code


def mark_fleet_failed(run_dir: Path, failure: Failure) -> None:
    """Leave the marker that the entrypoint and the health check read (fleet_failure)."""
    (run_dir / FATAL_MARKER).write_text(json.dumps(failure._asdict()))


def fleet_failure(run_dir: Path) -> str:
    """Why the watch stopped the fleet ('' when it did not): the marker's reason."""
    try:
        text = (run_dir / FATAL_MARKER).read_text()
    except OSError:
        return ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return str(json.loads(text)["reason"])
    return text.strip() or "a worker program went FATAL"


@dataclass
class _Starts:
    """A process name's starts since it last received."""

    since: float  # when the first of them began
    current: float  # when the running (or last) incarnation began
    failed: int = 0  # how many of them ended


class FleetWatch:
    """Decides, from supervisord's process events and the processes' receive marks, when a
    worker process cannot work (module docstring). Times are wall-clock seconds (time.time()),
    the clock of the marks; `received_since(name, t)` tells whether `name` received after t.
    Each method returns the Failure that means the fleet cannot work, or None."""

    def __init__(
        self,
        timeout: float,
        received_since: Callable[[str, float], bool],
        *,
        consumer_mode: bool = False,
    ) -> None:
        self.timeout = timeout
        self.received_since = received_since
        self.consumer_mode = consumer_mode
        self.unproven: dict[str, _Starts] = {}  # processes that have not received yet

    def starting(self, name: str, now: float) -> None:
        starts = self.unproven.get(name)
        if starts is None:
            self.unproven[name] = _Starts(since=now, current=now)
        else:
            starts.current = now

    def ended(self, name: str, now: float, *, clean: bool = False) -> Failure | None:
        """An incarnation ended (exited, or failed within startsecs); `clean`: exit code 0."""
        starts = self.unproven.get(name)
        if starts is None:
            return None
        if self._worked(name, starts, now, clean=clean):
            del self.unproven[name]
            return None
        starts.failed += 1
        if starts.failed >= MAX_FAILED_STARTS:
            what = "staying up" if self.consumer_mode else "receiving a message"
            return Failure(name, f"{name} ended {starts.failed} times in a row without {what}")
        return None

    def stopped(self, name: str) -> None:
        """supervisord stopped the process on purpose (the fleet stops): no longer watched."""
        self.unproven.pop(name, None)

    def tick(self, now: float) -> Failure | None:
        for name, starts in list(self.unproven.items()):
            if self._worked(name, starts, now, clean=False):
                del self.unproven[name]
            elif now - starts.since > self.timeout:
                what = "stayed up" if self.consumer_mode else "received a message"
                return Failure(
                    name, f"{name} has not {what} within {self.timeout:g} s of its start"
                )
        return None

    def _worked(self, name: str, starts: _Starts, now: float, *, clean: bool) -> bool:
        if self.consumer_mode:  # the kit cannot see the consumer's receives
            return clean or now - starts.current >= self.timeout
        return self.received_since(name, starts.current)


def _events(inp: TextIO, out: TextIO) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """supervisord's event listener protocol: READY, read header + payload, answer OK."""
    while True:
        out.write("READY\n")
        out.flush()
        line = inp.readline()
        if not line:
            return
        header = dict(token.split(":", 1) for token in line.split())
        payload = inp.read(int(header["len"]))
        # PROCESS_STATE_* and TICK_* payloads: one line of `key:value` tokens.
        fields = dict(token.split(":", 1) for token in payload.split() if ":" in token)
        yield header, fields
        out.write("RESULT 2\nOK")
        out.flush()


def fatal_listener(
    env: Mapping[str, str] = os.environ,
    inp: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
    clock: Callable[[], float] = time.time,
    stop_fleet: Callable[[], None] = lambda: os.kill(os.getppid(), signal.SIGTERM),
) -> None:
    """The fleet's watch (module docstring), fed by PROCESS_STATE and TICK_5 events."""
    run_dir = Path(env.get("WORKER_RUN_DIR") or DEFAULTS["WORKER_RUN_DIR"])

    def received_since(name: str, since: float) -> bool:
        try:
            return alive_mark(run_dir, name).stat().st_mtime >= since
        except OSError:
            return False

    watch = FleetWatch(
        start_timeout(env),
        received_since,
        consumer_mode=env.get("WORKER_HANDLER_MODE", "").strip().lower() == "consumer",
    )
    failed = False
    for header, fields in _events(inp, out):
        event, now = header.get("eventname", ""), clock()
        name = fields.get("processname", "?")
        if event.startswith("PROCESS_STATE_") and fields.get("groupname") != WORKER_GROUP:
            continue
        failure = None
        if event == "PROCESS_STATE_STARTING":
            watch.starting(name, now)
        elif event in ("PROCESS_STATE_BACKOFF", "PROCESS_STATE_EXITED"):
            clean = event == "PROCESS_STATE_EXITED" and fields.get("expected") == "1"
            failure = watch.ended(name, now, clean=clean)
        elif event in ("PROCESS_STATE_STOPPING", "PROCESS_STATE_STOPPED"):
            watch.stopped(name)
        elif event == "PROCESS_STATE_FATAL":
            failure = Failure(name, f"{name} went FATAL (every start ended within startsecs)")
        elif event.startswith("TICK_"):
            failure = watch.tick(now)
        if failure and not failed:
            failed = True
            _say("error", "process_fatal", program=failure.program, reason=failure.reason)
            mark_fleet_failed(run_dir, failure)
            stop_fleet()


if __name__ == "__main__":
    if sys.argv[1:] == ["--fatal-listener"]:
        fatal_listener()
    else:
        sys.exit(run_supervisord(dict(os.environ)))
