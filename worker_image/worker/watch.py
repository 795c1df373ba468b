"""The fleet's watch: supervisord's event listener that ends the fleet when a worker process
cannot work (run as `python -m worker.supervise --fatal-listener`, docs/reliability.md).

A worker process *proves* itself with a successful SQS receive after a start (its
``alive-<process>`` mark, worker.supervise.alive_mark, touched by the loop after each receive).
The fleet cannot work when a process name has not received and either

- has ended :data:`MAX_FAILED_STARTS` starts in a row (an import that fails, a handler that
  dies 1.5 s after start, a queue that does not exist: each start ends within seconds), or
- has not received within WORKER_START_TIMEOUT_SECONDS (default 60) since the first of those
  starts (a process that hangs at start, receives that fail forever, slow crash loops), or
- went FATAL in supervisord (it failed `startretries` times within `startsecs`).

In ``consumer`` mode the kit does not receive: a consumer that stays up for
WORKER_START_TIMEOUT_SECONDS, or exits 0, counts as one that received. The watch then logs
`process_fatal`, leaves its reason in WORKER_RUN_DIR (read by the entrypoint and
worker.health) and SIGTERMs supervisord, which stops the other workers gracefully (their jobs
get their grace period). Detection: at most WORKER_START_TIMEOUT_SECONDS + 5 s (the tick)
after the first start that never received.

In ``consumer`` mode the watch is also the task's one reader of the pause tags: it leaves
WORKER_RUN_DIR/paused for the consumers' watchers (start_pause_reader, worker.pause).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from worker.supervise import DEFAULTS, _say, alive_mark, mark_fleet_failed, start_timeout

# No typing at run time (see worker.supervise); mypy reads the block below.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

MAX_FAILED_STARTS = 3
"""Starts of one process in a row that end without a receive: the fleet cannot work."""
WORKER_GROUP = "worker"
"""The [program:worker] of supervisord.conf: the processes the watch follows."""

Failure = tuple[str, str]
"""A worker process that cannot work: (its process name, why)."""


class _Starts:
    """A process name's starts since it last received."""

    __slots__ = ("current", "failed", "since")

    def __init__(self, now: float) -> None:
        self.since = now  # when the first of them began
        self.current = now  # when the running (or last) incarnation began
        self.failed = 0  # how many of them ended


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
            self.unproven[name] = _Starts(now)
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
            return (name, f"{name} ended {starts.failed} times in a row without {what}")
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
                return (name, f"{name} has not {what} within {self.timeout:g} s of its start")
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


def start_pause_reader(env: Mapping[str, str], run_dir: Path) -> None:
    """Consumer mode: read the pause tags for the task's watchers (worker.pause.PauseReader),
    on a thread, so that a slow SQS never delays an answer to supervisord. Imported here:
    boto3 comes with it, and the other modes' watch never loads it. A failure to start is
    logged, never raised: the watch goes on without pauses."""
    try:
        from worker.logs import EventLog
        from worker.masking import SecretMask, secret_values
        from worker.pause import PauseReader

        log = EventLog("supervise", stream=sys.stderr, mask=SecretMask(secret_values(env)))
        PauseReader(env, run_dir, log).start()
    except Exception as error:
        _say("warning", "pause_check_error", error=repr(error))


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

    consumer_mode = env.get("WORKER_HANDLER_MODE", "").strip().lower() == "consumer"
    watch = FleetWatch(start_timeout(env), received_since, consumer_mode=consumer_mode)
    if consumer_mode:
        start_pause_reader(env, run_dir)
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
            failure = (name, f"{name} went FATAL (every start ended within startsecs)")
        elif event.startswith("TICK_"):
            failure = watch.tick(now)
        if failure and not failed:
            failed = True
            _say("error", "process_fatal", program=failure[0], reason=failure[1])
            mark_fleet_failed(run_dir, *failure)
            stop_fleet()
