"""Running one job: a Python callable in a child process, or a command per message.

Both runners can stop a job at any moment (timeout, or SIGTERM grace spent), which a thread
cannot do to Python code: callables therefore run in a long-lived executor child process
(started once, imports the handler once, replaced after a kill), commands in their own process
group.

Callable handlers: `handler(body: str, context: JobContext) -> None`. Returning normally means
done (the message is deleted); returning the string "duplicate" means done earlier (an
idempotency guard skipped it; deleted, logged as `duplicate`); raising PermanentFailure sends
the message to the DLQ at once; any other exception is retried with backoff.

Command exit codes (body on stdin; env WORKER_MESSAGE_ID, WORKER_RECEIVE_COUNT):
    0   done, message deleted
    65  permanent failure (EX_DATAERR): sent to the DLQ at once
    75  temporary failure (EX_TEMPFAIL): retried after the backoff
    any other code, or killed by a signal: retried after the backoff
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

EX_DATAERR = 65
EX_TEMPFAIL = 75
DUPLICATE = "duplicate"
_POLL_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1


class PermanentFailure(Exception):
    """Raise from a handler when retrying cannot help: the message goes to the DLQ at once."""


class HandlerError(RuntimeError):
    """The configured handler cannot be loaded (names WORKER_HANDLER)."""


@dataclass(frozen=True)
class JobContext:
    """What a callable handler gets besides the body."""

    message_id: str
    receive_count: int


@dataclass(frozen=True)
class JobResult:
    """How a job ended: outcome is done, duplicate, retry, dead_letter, timeout or handed_back."""

    outcome: str
    error: str = ""


class Runner(Protocol):
    """Runs one job; `abort()` is polled and, when true, the job is stopped (handed back)."""

    def run(
        self, body: str, context: JobContext, timeout: float, abort: Callable[[], bool]
    ) -> JobResult: ...

    def rss_bytes(self) -> int: ...

    def close(self) -> None: ...


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process from /proc (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def load_callable(spec: str) -> Callable[..., Any]:
    """Import `module:function`; HandlerError names WORKER_HANDLER when that fails."""
    module_name, _, attr = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise HandlerError(f"WORKER_HANDLER={spec!r}: cannot load: {error!r}") from error
    if not callable(function):
        raise HandlerError(f"WORKER_HANDLER={spec!r}: not callable")
    return function  # type: ignore[no-any-return]


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (kill -9 leaves no orphan)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _executor_main(conn: Connection, spec: str) -> None:
    """The executor child: load the handler, then run jobs sent over `conn` one by one."""
    _die_with_parent()
    # The parent decides when a job stops: a terminal's Ctrl-C must not reach the job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        handler = load_callable(spec)
    except HandlerError as error:
        conn.send(("error", str(error)))
        return
    conn.send(("ready", ""))
    while True:
        try:
            body, context = conn.recv()
        except EOFError:
            return
        try:
            returned = handler(body, context)
            reply = (DUPLICATE if returned == DUPLICATE else "done", "")
        except PermanentFailure as error:
            reply = ("dead_letter", str(error) or "PermanentFailure")
        except BaseException as error:  # a job must never take the executor down
            reply = ("retry", f"{type(error).__name__}: {error}")
        conn.send(reply)


class CallableRunner:
    """Runs `module:function` in an executor child process, replaced after every kill."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None

    def start(self) -> None:
        """Start the executor and wait until it has imported the handler (HandlerError if not)."""
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_executor_main, args=(child_conn, self.spec), name="executor", daemon=True
        )
        process.start()
        child_conn.close()
        try:
            status, detail = parent_conn.recv()
        except EOFError:
            status, detail = "error", f"WORKER_HANDLER={self.spec!r}: executor died at start"
        if status != "ready":
            process.join(5)
            raise HandlerError(detail)
        self._process, self._conn = process, parent_conn

    def run(
        self, body: str, context: JobContext, timeout: float, abort: Callable[[], bool]
    ) -> JobResult:
        if self._conn is None:
            self.start()
        assert self._conn is not None
        try:
            self._conn.send((body, context))
        except OSError:  # the executor died between jobs
            self._kill()
            return JobResult("retry", "executor process died")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._conn.poll(_POLL_SECONDS):
                    outcome, error = self._conn.recv()
                    return JobResult(outcome, error)
            except (EOFError, OSError):
                self._kill()
                return JobResult("retry", "executor process died")
            if abort():
                self._kill()
                return JobResult("handed_back", "stopped: SIGTERM grace spent")
            if time.monotonic() >= deadline:
                self._kill()
                return JobResult("timeout", f"stopped after {timeout:g} s")

    def rss_bytes(self) -> int:
        """The executor's RSS (the job's memory lives there)."""
        return rss_bytes(self._process.pid) if self._process is not None else 0

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        self._kill()


class CommandRunner:
    """Runs a shell command per message with the body on stdin, in its own process group."""

    def __init__(self, command: str) -> None:
        self.command = command

    def run(
        self, body: str, context: JobContext, timeout: float, abort: Callable[[], bool]
    ) -> JobResult:
        env = {
            **os.environ,
            "WORKER_MESSAGE_ID": context.message_id,
            "WORKER_RECEIVE_COUNT": str(context.receive_count),
        }
        process = subprocess.Popen(
            ["/bin/sh", "-c", self.command], stdin=subprocess.PIPE, env=env, process_group=0
        )
        deadline = time.monotonic() + timeout
        payload: bytes | None = body.encode()
        while True:
            try:
                process.communicate(payload, timeout=_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                payload = None  # communicate() goes on writing the rest of the body
            if abort():
                _kill_group(process)
                return JobResult("handed_back", "stopped: SIGTERM grace spent")
            if time.monotonic() >= deadline:
                _kill_group(process)
                return JobResult("timeout", f"stopped after {timeout:g} s")
        code = process.returncode
        if code == 0:
            return JobResult("done")
        if code == EX_DATAERR:
            return JobResult("dead_letter", f"command exited {code} (EX_DATAERR)")
        return JobResult("retry", f"command exited {code}")

    def rss_bytes(self) -> int:
        return 0  # the command is gone between jobs

    def close(self) -> None:
        pass


def _kill_group(process: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM the command's process group, SIGKILL whatever is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
