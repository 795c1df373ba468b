"""Running one job: a Python callable in a child process, or a command per message.

Both runners can stop a job at any moment (timeout, SIGTERM grace spent, memory), which a
thread cannot do to Python code: callables therefore run in a long-lived executor child process
(started once, imports the handler once, replaced after a kill), commands in their own process
group.

Callable handlers: `handler(body: str, context: JobContext) -> None`. Returning normally means
done (the message is deleted); returning the string "duplicate" means done earlier (an
idempotency guard skipped it; deleted, logged as `duplicate`); raising PermanentFailure sends
the message to the DLQ at once; any other exception is retried with backoff.

Commands (docs/frameworks.md): the body on stdin; env WORKER_MESSAGE_ID, WORKER_RECEIVE_COUNT,
WORKER_QUEUE_URL and WORKER_QUEUE_NAME (the message's queue), on a FIFO queue
WORKER_MESSAGE_GROUP_ID and WORKER_MESSAGE_DEDUPLICATION_ID, WORKER_MESSAGE_ATTRIBUTES_FILE (and
WORKER_MESSAGE_ATTRIBUTES while at most 64 KiB), WORKER_RESULT_FILE. A command that cannot be
started (fork or exec refused) is its message's failure, retried. Exit codes:
    0   done, message deleted
    65  permanent failure (EX_DATAERR): sent to the DLQ at once
    75  temporary failure (EX_TEMPFAIL): retried after the backoff
    any other code, or killed by a signal: retried after the backoff
A command that fails may write {"reason": str, "retry_after_seconds": number} to
WORKER_RESULT_FILE: the reason replaces "command exited N" (log line, DLQ copy), the delay
replaces the backoff (clamped to 0..43200).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import importlib
import json
import multiprocessing
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import IO, Any, Protocol

from worker import contract
from worker.logs import EventLog
from worker.settings import LOCAL_PROCESS_NAME, SQS_MAX_VISIBILITY_SECONDS, WorkQueue
from worker.supervise import group_members

EX_DATAERR = 65
EX_TEMPFAIL = 75
DUPLICATE = "duplicate"
_POLL_SECONDS = 0.05
# A stopped command gets this long between SIGTERM and SIGKILL of its process group.
STOP_TERM_GRACE_SECONDS = 2.0
_PR_SET_PDEATHSIG = 1
# A running command is checked (exit, abort, deadline, memory) at least this often.
SAMPLE_SECONDS = 1.0
# A command's output is logged in bursts (`read_bursts`): the lines it writes to one stream
# together make one `job_output` event of at most this many bytes (more goes on in the next).
MAX_OUTPUT_EVENT_BYTES = 8192
# A burst ends when its stream has been quiet this long...
OUTPUT_QUIET_SECONDS = 0.1
# ...or, for a stream that is never quiet, at its last line end after this long.
OUTPUT_BURST_SECONDS = 1.0
_READ_BYTES = 65536  # a pipe's default capacity
# After a command ends, how long its output may take to reach the log.
_OUTPUT_DRAIN_SECONDS = 5.0
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# Shell words a command may start with that are no file on PATH: not checked at start.
_SHELL_WORDS = frozenset(
    {"!", "{", "(", ".", ":", "case", "cd", "eval", "exit", "for", "if", "set", "trap", "while"}
)
# Interpreters whose first argument (unless an option) is the script they run.
_INTERPRETER = re.compile(r"(php|python|node|ruby|perl|bash|dash|sh)[\d.]*")
# A script argument the check cannot judge: an option, or one the shell expands at run time.
_UNCHECKABLE = re.compile(r"^-|[$`*?\[~]")
# First words after which a command runs as written: a shell word, or it execs by itself.
_RUN_AS_WRITTEN = _SHELL_WORDS | {"exec", "env"}
# Characters of shell control operators (`;`, `&&`, `||`, `|`, `&`, subshells).
_CONTROL_CHARS = frozenset(";&|()")


class PermanentFailure(Exception):
    """Raise from a handler when retrying cannot help: the message goes to the DLQ at once."""


class HandlerError(RuntimeError):
    """The configured handler cannot be loaded (names WORKER_HANDLER)."""


@dataclass(frozen=True)
class JobContext:
    """What a callable handler gets besides the body."""

    message_id: str
    receive_count: int
    attributes: Mapping[str, Any] = field(default_factory=dict)  # as boto3 returns them
    queue: WorkQueue | None = None  # the queue the message came from (None outside the loop)
    message_group_id: str | None = None  # a FIFO queue's message: its group (else None)
    deduplication_id: str | None = None  # a FIFO queue's message: its deduplication id


@dataclass(frozen=True)
class JobResult:
    """How a job ended: outcome is done, duplicate, retry, dead_letter, timeout, handed_back or
    memory_exceeded; `retry_after_seconds` (a command's result file) replaces the backoff."""

    outcome: str
    error: str = ""
    retry_after_seconds: int | None = None


class Runner(Protocol):
    """Runs one job; `abort()` is polled and, when truthy, the job is stopped with everything
    it started: True (SIGTERM grace spent) hands it back, `lease_lost` (its visibility can no
    longer be extended) ends it as such."""

    def run(
        self, body: str, context: JobContext, timeout: float, abort: Callable[[], bool | str]
    ) -> JobResult: ...

    def rss_bytes(self) -> int:
        """The memory the runner holds between jobs, counted toward the process's recycle (a
        callable's executor; a command holds none: it is gone)."""
        ...

    def job_rss_bytes(self) -> int:
        """The last job's memory, for its `job` line (`max_rss_mib`)."""
        ...

    def close(self) -> None: ...


def stopped_result(stop: bool | str) -> JobResult:
    """The result of a job stopped by `abort()`: its value True is the SIGTERM hand-back."""
    if stop == contract.LEASE_LOST:
        return JobResult(contract.LEASE_LOST, "stopped: its visibility could not be extended")
    return JobResult(contract.HANDED_BACK, "stopped: SIGTERM grace spent")


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
    """The executor child: load the handler, then run jobs sent over `conn` one by one.

    It leads its own process group, so whatever a job starts (a shell, a child) is killed with
    it (`CallableRunner._kill`), and dies with its worker (PR_SET_PDEATHSIG)."""
    os.setpgid(0, 0)
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
    """Runs `module:function` in an executor child process, replaced after every kill.

    The executor leads its own process group: a stopped job (timeout, SIGTERM grace spent,
    lease lost) is stopped by killing that whole group, so a child the handler started dies
    with it. Its group id is kept in `job_file` (`kill_orphan`) for the worker's successor."""

    def __init__(self, spec: str, job_file: str | None = None) -> None:
        self.spec = spec
        self.job_file = job_file
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None

    def start(self) -> None:
        """Start the executor and wait until it has imported the handler (HandlerError if not)."""
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_executor_main, args=(child_conn, self.spec), name="executor", daemon=True
        )
        try:
            process.start()
        except BaseException:  # no fork (EAGAIN, ENOMEM): no pipe left open either
            parent_conn.close()
            raise
        finally:
            child_conn.close()
        try:
            status, detail = parent_conn.recv()
        except EOFError:
            status, detail = "error", f"WORKER_HANDLER={self.spec!r}: executor died at start"
        if status != "ready":
            process.join(5)
            raise HandlerError(detail)
        self._process, self._conn = process, parent_conn
        note_job(self.job_file, process.pid)

    def run(
        self, body: str, context: JobContext, timeout: float, abort: Callable[[], bool | str]
    ) -> JobResult:
        try:
            if self._conn is None:  # the first job, or the one after a kill: a fresh executor
                self.start()
            assert self._conn is not None
            self._conn.send((body, context))
        except OSError as failure:  # the executor died between jobs, or could not be forked
            self._kill()
            return JobResult(contract.RETRY, f"could not start the job: executor: {failure}")
        except Exception as failure:  # the handler cannot be loaded now, the job not pickled
            self._kill()
            return JobResult(contract.RETRY, f"could not start the job: {failure}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._conn.poll(_POLL_SECONDS):
                    outcome, error = self._conn.recv()
                    return JobResult(outcome, error)
            except (EOFError, OSError):
                self._kill()
                return JobResult("retry", "executor process died")
            if stop := abort():
                self._kill()
                return stopped_result(stop)
            if time.monotonic() >= deadline:
                self._kill()
                return JobResult("timeout", f"stopped after {timeout:g} s")

    def rss_bytes(self) -> int:
        """The executor's RSS (the job's memory lives there, and stays between jobs)."""
        return rss_bytes(self._process.pid) if self._process is not None else 0

    job_rss_bytes = rss_bytes

    def _kill(self) -> None:
        """Kill the executor's whole process group (the job and everything it started)."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.kill()
            self._process.join()
            note_job(self.job_file, None)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        self._kill()


class CommandRunner:
    """Runs a shell command per message with the body on stdin, in its own process group.

    The contract (docs/frameworks.md, docs/contract.md): the body on stdin; the environment
    of the worker plus WORKER_MESSAGE_ID, WORKER_RECEIVE_COUNT, WORKER_QUEUE_URL and
    WORKER_QUEUE_NAME (the message's queue; `queue_url` for a context that names none; its
    max_receive_count, when set, as WORKER_MAX_RECEIVE_COUNT), WORKER_MESSAGE_ATTRIBUTES_FILE
    (a file of JSON in SQS's shape; the same JSON in WORKER_MESSAGE_ATTRIBUTES while at most
    64 KiB: `attributes_environment`) and
    WORKER_RESULT_FILE (where the command may write {"reason": ..., "retry_after_seconds":
    ...}); the exit code decides (module doc). A command that cannot be started is a `retry`
    of its message with the reason, never an exception out of `run`.
    What the command writes is logged in `job_output` JSON lines, one a burst (`read_bursts`:
    the lines it writes to one stream together, a stack trace whole). The job's process
    group is sampled about once a second: above `memory_limit_mib` it is stopped.
    """

    def __init__(
        self,
        command: str,
        log: EventLog | None = None,
        *,
        queue_url: str = "",
        memory_limit_mib: int = 0,
        cwd: str | None = None,
        job_file: str | None = None,
        output_limit: OutputLimit | None = None,
    ) -> None:
        self.command = command
        self.output_limit = output_limit or OutputLimit()
        self._script = exec_script(command)  # what `sh -c` runs for every job
        self.cwd = cwd
        self.job_file = job_file  # holds the running job's process group id
        self.log = log or EventLog(LOCAL_PROCESS_NAME)
        self.queue_url = queue_url
        self.memory_limit_mib = memory_limit_mib
        self._peak_rss = 0
        self._jobs = 0
        self._job_dir: str | None = None

    def check(self) -> None:
        """Fail at start (HandlerError naming WORKER_HANDLER) when the executable is missing."""
        check_command(self.command, self.cwd)

    def kill_orphan(self) -> None:
        """Kill the job a killed predecessor of this process left running (`kill_orphan`)."""
        kill_orphan(self.job_file, self.log)

    def run(
        self, body: str, context: JobContext, timeout: float, abort: Callable[[], bool | str]
    ) -> JobResult:
        self._peak_rss = 0
        paths: tuple[str, ...] = ()
        try:
            paths = self._fresh_job_files()
            return self._run(body, context, timeout, abort, *paths)
        except (OSError, RuntimeError) as error:
            # The command could not be started: fork or exec refused (E2BIG, ENOMEM, EAGAIN),
            # the working directory gone, a file or a thread the kernel refused. That is this
            # message's failure (retried after the backoff), never its worker's.
            return JobResult(contract.RETRY, f"could not start the command: {error}")
        finally:
            for path in paths:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _run(
        self,
        body: str,
        context: JobContext,
        timeout: float,
        abort: Callable[[], bool | str],
        result_file: str,
        attributes_file: str,
    ) -> JobResult:
        env = {
            **os.environ,
            "WORKER_MESSAGE_ID": context.message_id,
            "WORKER_RECEIVE_COUNT": str(context.receive_count),
            "WORKER_QUEUE_URL": self.queue_url,
            "WORKER_RESULT_FILE": result_file,
            **queue_environment(context.queue),
            **fifo_environment(context),
            **attributes_environment(context.attributes, attributes_file),
        }
        process = subprocess.Popen(
            ["/bin/sh", "-c", self._script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=self.cwd,
            process_group=0,  # killed as a group: nothing the command starts outlives it
            preexec_fn=_die_with_parent,  # kill -9 of the worker kills the command too
        )
        assert process.stdin and process.stdout and process.stderr
        note_job(self.job_file, process.pid)
        budget = _OutputBudget(self.output_limit)  # shared by both streams
        threads = [
            threading.Thread(target=_feed, args=(process.stdin, body.encode()), daemon=True),
            *(
                threading.Thread(
                    target=self._pump, args=(pipe, name, context.message_id, budget), daemon=True
                )
                for pipe, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
            ),
        ]
        try:
            for thread in threads:
                thread.start()
            stopped = self._wait(process, timeout, abort)
        except BaseException:  # no thread for its pipes (RuntimeError), SIGTERM in a test
            _kill_group(process, grace=0)
            note_job(self.job_file, None)
            raise
        _kill_group(
            process, grace=0 if stopped is None else STOP_TERM_GRACE_SECONDS
        )  # nothing outlives its job
        note_job(self.job_file, None)
        for thread in threads:
            if thread.ident is not None:
                thread.join(_OUTPUT_DRAIN_SECONDS)
        if budget.dropped_events:
            with contextlib.suppress(Exception):
                self.log.warning(
                    contract.JOB_OUTPUT_TRUNCATED_EVENT,
                    message_id=context.message_id,
                    **{
                        contract.DROPPED_BYTES: budget.dropped_bytes,
                        contract.DROPPED_EVENTS: budget.dropped_events,
                    },
                    max_bytes=self.output_limit.max_bytes,
                    max_events=self.output_limit.max_events,
                )
        return stopped or _command_result(process.returncode, _read_result(result_file))

    def _wait(
        self, process: subprocess.Popen[bytes], timeout: float, abort: Callable[[], bool | str]
    ) -> JobResult | None:
        """Wait for the command in slices of up to 1 s, sampling its memory between slices;
        None when it exited by itself, else why it must be stopped."""
        deadline = time.monotonic() + timeout
        limit = self.memory_limit_mib
        exited = ExitWatch(process)
        while True:
            rss = self._sample(process.pid)
            if limit and rss > limit * 2**20:
                return JobResult(
                    contract.MEMORY_EXCEEDED,
                    f"stopped: its processes used {self._peak_rss / 2**20:.0f} MiB, above "
                    f"MAX_MEMORY_MIB_PER_PROCESS={limit}",
                )
            if exited.wait(max(0.0, min(SAMPLE_SECONDS, deadline - time.monotonic()))):
                return None
            if stop := abort():
                return stopped_result(stop)
            if time.monotonic() >= deadline:
                return JobResult("timeout", f"stopped after {timeout:g} s")

    def _sample(self, pgid: int) -> int:
        rss = group_rss_bytes(pgid)
        self._peak_rss = max(self._peak_rss, rss)
        return rss

    def _pump(self, pipe: IO[bytes], stream: str, message_id: str, budget: _OutputBudget) -> None:
        """Log each burst the command writes to `pipe` as a `job_output` line, while the job's
        output budget lasts (then only counted). A burst that cannot be logged is dropped,
        never the pipe: the command must not block on a full one. Secret values are masked
        (the log's mask), also one that a line cut at the event size splits in two: the cut
        piece's end that begins a secret goes with the next piece."""
        mask = self.log.mask
        held = ""  # the end of a cut line that may begin a secret value: logged with its rest
        with pipe:
            for piece in read_bursts(pipe):
                if not budget.take(piece):
                    continue
                text = mask.mask(held + piece.text)
                held = ""
                if piece.truncated and mask:
                    text, held = mask.hold_tail(text)
                fields: dict[str, Any] = {contract.OUTPUT_STREAM: stream}
                fields[contract.OUTPUT_TEXT] = text
                fields.update(
                    {name: True for name in ("truncated", "continued") if getattr(piece, name)}
                )
                with contextlib.suppress(Exception):
                    self.log.info(contract.JOB_OUTPUT_EVENT, message_id=message_id, **fields)

    def _fresh_job_files(self) -> tuple[str, str]:
        """Fresh paths of this job's result file and attributes file, in a directory only the
        worker's user can read (made once per runner, removed by `close`)."""
        if self._job_dir is None:
            self._job_dir = tempfile.mkdtemp(prefix="worker-results-")  # mode 0700
        self._jobs += 1
        paths = tuple(
            os.path.join(self._job_dir, f"{kind}-{self._jobs}.json")
            for kind in ("result", "attributes")
        )
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return paths[0], paths[1]

    def rss_bytes(self) -> int:
        """None: the command and its memory are gone between jobs, so no recycle of the loop
        would free any (a job above the limit was stopped as `memory_exceeded`)."""
        return 0

    def job_rss_bytes(self) -> int:
        """The peak RSS of the last job's processes."""
        return self._peak_rss

    def close(self) -> None:
        if self._job_dir is not None:
            shutil.rmtree(self._job_dir, ignore_errors=True)
            self._job_dir = None


def note_job(job_file: str | None, pgid: int | None) -> None:
    """Record (or clear, with None) the running job's process group in `job_file`."""
    if not job_file:
        return
    with contextlib.suppress(OSError):
        if pgid is None:
            os.unlink(job_file)
        else:
            os.makedirs(os.path.dirname(job_file), exist_ok=True)
            with open(job_file, "w", encoding="ascii") as file:
                file.write(str(pgid))


def kill_orphan(job_file: str | None, log: EventLog) -> None:
    """Kill the process group a killed predecessor of this process left running (named in
    `job_file`): supervisord restarts a killed worker within seconds, long before the job's
    message can be received again, so no job runs twice at once."""
    if not job_file:
        return
    try:
        with open(job_file, encoding="ascii") as file:
            pgid = int(file.read().strip())
    except (OSError, ValueError):
        return
    # A job that died with its worker may linger as a zombie until its new parent reaps it:
    # only a group with a live process is an orphan worth the name.
    running = any(state != "Z" for _, state in group_members(pgid))
    try:
        os.killpg(pgid, signal.SIGKILL)
        if running:
            log.warning(contract.JOB_ORPHAN_KILLED_EVENT, pgid=pgid)
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(OSError):
        os.unlink(job_file)


def check_command(command: str, cwd: str | None = None) -> None:
    """HandlerError (naming WORKER_HANDLER) unless the command's executable exists.

    The first word after `VAR=value` assignments and a leading `exec` or `env` (with env's
    options and assignments) is checked: a path must be an executable file, a bare name must be
    found on PATH. A shell keyword or builtin that is not a file (`if`, `cd`, `exit`, ...)
    cannot be checked and passes. When that word is an interpreter (`php`, `python3`, `sh`, ...)
    whose next word is not an option, that word is the script it runs: it must be a file
    (relative to `cwd`, default the current directory), so `php artisan ...` in the wrong
    WORKDIR or a runner that was not copied fails at start, not on every message.
    """
    try:
        words = shlex.split(command)
    except ValueError as error:
        raise HandlerError(f"WORKER_HANDLER={command!r}: cannot parse: {error}") from error
    words = _skip_prefixes(words)
    if not words:
        raise HandlerError(f"WORKER_HANDLER={command!r}: no command to run")
    name = words[0]
    if "/" in name:
        if not (os.path.isfile(name) and os.access(name, os.X_OK)):
            raise HandlerError(f"WORKER_HANDLER={command!r}: {name} is not an executable file")
    elif shutil.which(name) is None and name not in _SHELL_WORDS:
        raise HandlerError(
            f"WORKER_HANDLER={command!r}: {name!r} not found on PATH={os.environ.get('PATH', '')}"
        )
    script = words[1] if len(words) > 1 else "-"
    if _INTERPRETER.fullmatch(os.path.basename(name)) and not _UNCHECKABLE.search(script):
        directory = cwd or os.getcwd()
        if not os.path.isfile(os.path.join(directory, script)):
            raise HandlerError(
                f"WORKER_HANDLER={command!r}: {name} would run {script!r}, which is not a "
                f"file (in {directory}, the image's WORKDIR)"
            )


def exec_script(command: str) -> str:
    """The script `sh -c` runs for `command`: a single simple command is exec'd (behind `env`
    when it starts with VAR=value words), so the program itself is the worker's child and keeps
    the parent-death signal (dash forks a -c command otherwise, and the fork loses it); a
    compound command (`;`, `&&`, `|`, `&`, a newline, a shell keyword) runs as written, its
    process group killed by the worker's successor (`kill_orphan`)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return command
    if not words or "\n" in command.strip() or words[0] in _RUN_AS_WRITTEN:
        return command
    if any(set(word) <= _CONTROL_CHARS for word in words):
        return command
    return f"exec env {command}" if _ASSIGNMENT.match(words[0]) else f"exec {command}"


def _skip_prefixes(words: list[str]) -> list[str]:
    """Drop leading assignments and `exec`/`env` (with env's options and assignments)."""
    while words:
        first = words[0]
        if _ASSIGNMENT.match(first) or first == "exec":
            words = words[1:]
        elif first == "env":
            words = words[1:]
            while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0])):
                words = words[1:]
        else:
            return words
    return words


def sqs_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Message attributes in SQS's own JSON shape; binary values base64-encoded."""
    shaped: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        data_type = str(value.get("DataType", "String"))
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            encoded = base64.b64encode(raw).decode() if isinstance(raw, bytes) else str(raw)
            shaped[name] = {"DataType": data_type, "BinaryValue": encoded}
        else:
            shaped[name] = {"DataType": data_type, "StringValue": str(value.get("StringValue"))}
    return shaped


def queue_environment(queue: WorkQueue | None) -> dict[str, str]:
    """What a command learns of its message's queue: WORKER_QUEUE_URL, WORKER_QUEUE_NAME and,
    when the queue sets one, its WORKER_MAX_RECEIVE_COUNT (else the task's stands)."""
    if queue is None:
        return {}
    env = {"WORKER_QUEUE_URL": queue.url, contract.QUEUE_NAME_VARIABLE: queue.name}
    if queue.max_receive_count is not None:
        env[contract.MAX_RECEIVE_COUNT_VARIABLE] = str(queue.max_receive_count)
    return env


def fifo_environment(context: JobContext) -> dict[str, str]:
    """A FIFO queue's message: WORKER_MESSAGE_GROUP_ID and WORKER_MESSAGE_DEDUPLICATION_ID
    (contract.MESSAGE_GROUP_ID_VARIABLE, ...); nothing for a standard queue's."""
    values = {
        contract.MESSAGE_GROUP_ID_VARIABLE: context.message_group_id,
        contract.MESSAGE_DEDUPLICATION_ID_VARIABLE: context.deduplication_id,
    }
    return {name: value for name, value in values.items() if value is not None}


def attributes_environment(attributes: Mapping[str, Any], path: str) -> dict[str, str]:
    """Write the attributes (JSON, SQS's shape) to `path`; the variables that name them: the
    file always, the JSON itself too while it is at most
    contract.MESSAGE_ATTRIBUTES_VARIABLE_MAX_BYTES long (Linux refuses an environment string
    over 128 KiB, SQS allows attributes up to the message's size)."""
    encoded = json.dumps(sqs_attributes(attributes))
    with open(path, "w", encoding="utf-8") as file:
        file.write(encoded)
    variables = {contract.MESSAGE_ATTRIBUTES_FILE_VARIABLE: path}
    if len(encoded.encode()) <= contract.MESSAGE_ATTRIBUTES_VARIABLE_MAX_BYTES:
        variables[contract.MESSAGE_ATTRIBUTES_VARIABLE] = encoded
    return variables


@dataclass(frozen=True)
class OutputLimit:
    """What one job's output may log: `max_bytes` of text and `max_events` job_output lines
    (OUTPUT_MAX_BYTES_PER_JOB, OUTPUT_MAX_EVENTS_PER_JOB; 0: no limit)."""

    max_bytes: int = 1_048_576
    max_events: int = 1000


class _OutputBudget:
    """One job's output budget, shared by its two streams: once a piece would go past either
    limit, it and every later piece are dropped and counted (the pipes are still drained)."""

    def __init__(self, limit: OutputLimit) -> None:
        self.limit = limit
        self.bytes = self.events = 0
        self.dropped_bytes = self.dropped_events = 0
        self._lock = threading.Lock()

    def take(self, piece: OutputPiece) -> bool:
        """Whether `piece` may be logged; else it is counted as dropped."""
        size = piece.size()
        with self._lock:
            over_bytes = self.limit.max_bytes and self.bytes + size > self.limit.max_bytes
            over_events = self.limit.max_events and self.events + 1 > self.limit.max_events
            if self.dropped_events or over_bytes or over_events:
                self.dropped_bytes += size
                self.dropped_events += 1
                return False
            self.bytes += size
            self.events += 1
            return True


@dataclass(frozen=True)
class OutputPiece:
    """One `job_output` event's text: whole lines joined by newlines (without the last one).
    `truncated`: a line longer than the cap was cut, it goes on in the next piece, which is
    `continued`."""

    text: str
    truncated: bool = False
    continued: bool = False

    def size(self) -> int:
        """The bytes of the stream it stands for: its text and, unless cut, its line end."""
        return len(self.text.encode()) + (0 if self.truncated else 1)


def read_bursts(
    pipe: IO[bytes],
    limit: int = MAX_OUTPUT_EVENT_BYTES,
    quiet: float = OUTPUT_QUIET_SECONDS,
    longest: float = OUTPUT_BURST_SECONDS,
) -> Iterator[OutputPiece]:
    """The pieces of what is written to `pipe`, one a burst: what one read returns and what
    follows until the pipe has been quiet for `quiet` seconds (a stack trace that PHP writes in
    one go or line by line is one piece; prints seconds apart are not). A burst is split at
    line ends only: at `limit` bytes, and after `longest` seconds of a stream that is never
    quiet; a line longer than `limit` is cut (at a character) and goes on in the next piece.
    Nothing is dropped; bytes that are not UTF-8 are replaced."""
    fd = pipe.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    burst = _Burst(limit)
    while True:
        if burst.has_lines():  # else nothing to log before more comes: wait for it
            wait = min(quiet, burst.began + longest - time.monotonic())
            if wait <= 0 or not poller.poll(wait * 1000):
                yield from burst.take_lines()
                continue
        chunk = os.read(fd, _READ_BYTES)  # blocks until the command writes or exits
        if not chunk:
            yield from burst.take_lines(final=True)
            return
        yield from burst.add(chunk)


class _Burst:
    """The bytes of a burst not logged yet, cut into `OutputPiece`s of at most `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.began = 0.0  # when the oldest byte held arrived
        self._continued = False  # the next piece goes on with a line cut in the last one

    def add(self, chunk: bytes) -> Iterator[OutputPiece]:
        """Hold `chunk`; the pieces of `limit` bytes that are full now."""
        if not self.data:
            self.began = time.monotonic()
        self.data += chunk
        while len(self.data) > self.limit:
            end = self.data.rfind(b"\n", 0, self.limit + 1)
            if end >= 0:
                yield self._take(end)
            else:  # one line longer than the limit: cut it between two characters
                yield self._take(_character_start(self.data, self.limit), cut=True)

    def has_lines(self) -> bool:
        """Whether a complete line is held."""
        return b"\n" in self.data

    def take_lines(self, final: bool = False) -> Iterator[OutputPiece]:
        """The complete lines held as one piece; `final` (end of stream): all that is held."""
        end = self.data.rfind(b"\n")
        if final and end < len(self.data) - 1:
            end = len(self.data)
        if end >= 0:
            yield self._take(end)
        self.began = time.monotonic()

    def _take(self, end: int, cut: bool = False) -> OutputPiece:
        """The piece of the first `end` bytes, and the line end after them unless the line
        was `cut` there (it goes on in the next piece)."""
        raw = bytes(self.data[:end])
        del self.data[: end if cut else end + 1]
        text = raw.decode("utf-8", "replace").replace("\r\n", "\n")  # CRLF line ends too
        if not cut:
            text = text.removesuffix("\r")
        piece = OutputPiece(text, truncated=cut, continued=self._continued)
        self._continued = cut
        return piece


def _character_start(data: bytearray, index: int) -> int:
    """`index`, or up to 3 bytes before it, so that no UTF-8 character is cut in two."""
    for start in range(index, max(index - 3, 1) - 1, -1):
        if data[start] & 0xC0 != 0x80:  # not a continuation byte
            return start
    return index


def _feed(stdin: IO[bytes], body: bytes) -> None:
    """Write the body to the command's stdin and close it (a command may not read it all)."""
    with contextlib.suppress(OSError), stdin:
        stdin.write(body)


def _read_result(path: str) -> dict[str, Any]:
    """The command's result file as a dict; {} when absent, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _command_result(code: int, written: Mapping[str, Any]) -> JobResult:
    """The job's result from its exit status and what it wrote to WORKER_RESULT_FILE."""
    if code == 0:
        return JobResult("done")
    reason = written.get("reason")
    retry_after = written.get("retry_after_seconds")
    delay: int | None = None
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        delay = int(min(max(retry_after, 0), SQS_MAX_VISIBILITY_SECONDS))
    if not isinstance(reason, str) or not reason:
        reason = _describe_exit(code)
    if code == EX_DATAERR:
        return JobResult("dead_letter", reason)
    return JobResult("retry", reason, retry_after_seconds=delay)


def _describe_exit(code: int) -> str:
    """`command exited N`, or `killed by SIGKILL (signal 9)`: a negative status is a signal,
    and /bin/sh reports a child killed by signal N as 128 + N."""
    signum = -code if code < 0 else code - 128 if 128 < code < 128 + signal.NSIG else 0
    if signum:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(signum).name} (signal {signum})"
    if code == EX_DATAERR:
        return f"command exited {code} (EX_DATAERR)"
    return f"command exited {code}"


class ExitWatch:
    """A thread blocked in waitpid() for `process`: `wait(timeout)` sleeps on it in the kernel
    (Popen.wait(timeout) would wake every 50 ms to poll; a pidfd is refused by some seccomp
    profiles, podman's among them)."""

    def __init__(self, process: subprocess.Popen[Any]) -> None:
        self._thread = threading.Thread(target=process.wait, name="exit-watch", daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """True once the process has exited and is reaped (within `timeout` seconds)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def group_rss_bytes(pgid: int, exclude: int = 0) -> int:
    """The summed RSS of the processes in process group `pgid` (but `exclude`), from /proc."""
    return sum(rss_bytes(pid) for pid, _ in group_members(pgid) if int(pid) != exclude)


def _kill_group(process: subprocess.Popen[bytes], grace: float = STOP_TERM_GRACE_SECONDS) -> None:
    """SIGTERM the command's process group, SIGKILL whatever is left after `grace` seconds.

    With grace 0 (the command exited by itself) only what it left behind remains: killed."""
    if grace:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
