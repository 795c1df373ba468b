"""Runners: the command exit-code table, stopping a job (process group), the executor child."""

from __future__ import annotations

import errno
import json
import multiprocessing
import multiprocessing.process
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from worker.handlers import (
    CallableRunner,
    CommandRunner,
    HandlerError,
    JobContext,
    JobResult,
    exec_script,
)

from tests.unit.worker.recording_handlers import RECORDED_COMMAND, runs

RECORDED = "tests.unit.worker.recording_handlers:recorded_job"

CTX = JobContext(message_id="m-1", receive_count=2)
FIRST = JobContext(message_id="m-1", receive_count=1)


def never() -> bool:
    return False


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(0, "done"), (65, "dead_letter"), (75, "retry"), (1, "retry"), (137, "retry")],
)
def test_command_exit_codes(code: int, outcome: str) -> None:
    result = CommandRunner(f"exit {code}").run("{}", CTX, 10, never)
    assert result.outcome == outcome
    assert (result.error == "") == (code == 0)


def test_command_gets_the_body_on_stdin_and_the_message_in_its_env(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = f'cat > {out}; echo "$WORKER_MESSAGE_ID $WORKER_RECEIVE_COUNT" >> {out}'
    body = "x" * 200_000  # larger than a pipe buffer
    assert CommandRunner(command).run(body, CTX, 10, never) == JobResult("done")
    assert out.read_text() == body + "m-1 2\n"


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_command_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    command = f"sleep 60 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    result = CommandRunner(command).run("", CTX, 0.5, never)
    assert result.outcome == "timeout"
    assert time.monotonic() - started < 5
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _dead(grandchild):
        assert time.monotonic() < deadline, "the job's child survived the timeout"
        time.sleep(0.05)


def test_command_abort_hands_the_job_back() -> None:
    stop_at = time.monotonic() + 0.3
    result = CommandRunner("sleep 30").run("", CTX, 60, lambda: time.monotonic() > stop_at)
    assert result.outcome == "handed_back"


def test_callable_spec_that_cannot_load_names_the_variable() -> None:
    with pytest.raises(HandlerError, match=r"WORKER_HANDLER='worker\.examples:nope'"):
        CallableRunner("worker.examples:nope").start()
    with pytest.raises(HandlerError, match="no_such_module"):
        CallableRunner("no_such_module:job").start()


def test_callable_outcomes_and_a_fresh_executor_after_a_kill(tmp_path: Path) -> None:
    runner = CallableRunner("worker.examples:sleep_job")
    try:
        assert runner.run('{"duration_seconds": 0}', CTX, 10, never).outcome == "done"
        first_pid = runner._process.pid
        failed = runner.run('{"duration_seconds": 0, "fail": true}', CTX, 10, never)
        assert failed.outcome == "retry" and "failed on receive 2" in failed.error
        assert runner.run("[1]", CTX, 10, never).outcome == "dead_letter"
        assert runner._process.pid == first_pid  # exceptions do not cost the executor
        timed_out = runner.run('{"duration_seconds": 30}', CTX, 0.3, never)
        assert timed_out.outcome == "timeout"
        assert _dead(first_pid) or not os.path.exists(f"/proc/{first_pid}/status")
        assert runner.run('{"duration_seconds": 0}', CTX, 10, never).outcome == "done"
        assert runner._process.pid != first_pid
        assert runner.rss_bytes() > 0
    finally:
        runner.close()


def test_a_callable_whose_executor_cannot_be_forked_fails_its_job_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork of a fresh executor refused (EAGAIN: a process limit): that job is retried with
    the reason; the runner starts one for the next job."""
    runner = CallableRunner(RECORDED)
    refused = OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _raise(refused))
    try:
        result = runner.run('{"duration_seconds": 0}', CTX, 10, never)
        assert result == JobResult(
            "retry",
            "could not start the job: executor: [Errno 11] Resource temporarily unavailable",
        )
        monkeypatch.undo()
        body = json.dumps({"record": str(tmp_path / "record")})
        assert runner.run(body, CTX, 10, never).outcome == "done"
    finally:
        runner.close()


def _raise(error: BaseException) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    return fail


def test_a_callable_that_cannot_be_loaded_after_a_kill_fails_its_job_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler raises on import once its config is gone: the executor that replaces a
    killed one cannot start. That job is a retry with the reason, not an exception that would
    take the worker (and the rest of its batch) down."""
    marker = tmp_path / "config-gone"
    (tmp_path / "fragile_handler.py").write_text(
        "import os\n"
        f"if os.path.exists({str(marker)!r}):\n"
        "    raise RuntimeError('config is gone')\n"
        "def job(body, context):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    runner = CallableRunner("fragile_handler:job")
    try:
        assert runner.run("{}", CTX, 10, never).outcome == "done"
        marker.touch()
        runner._kill()  # as after a timeout: the next job starts a fresh executor
        result = runner.run("{}", CTX, 10, never)
        assert result.outcome == "retry"
        assert result.error.startswith(
            "could not start the job: WORKER_HANDLER='fragile_handler:job'"
        )
        marker.unlink()
        assert runner.run("{}", CTX, 10, never).outcome == "done"
    finally:
        runner.close()


def test_a_callable_returning_duplicate_is_reported_as_such() -> None:
    runner = CallableRunner("tests.unit.worker.test_worker_handlers:already_done")
    try:
        assert runner.run("{}", CTX, 10, never).outcome == "duplicate"
    finally:
        runner.close()


def already_done(body: str, context: JobContext) -> str:
    return "duplicate"


def test_a_callables_child_dies_with_its_job_at_the_timeout(tmp_path: Path) -> None:
    """The child sleeps 2 s (scaled down); the job's timeout is 0.5 s."""
    record = tmp_path / "record"
    runner = CallableRunner(RECORDED)
    try:
        body = json.dumps({"record": str(record), "child_seconds": 2})
        assert runner.run(body, FIRST, 0.5, never).outcome == "timeout"
        time.sleep(2.5)  # past the child's own end
    finally:
        runner.close()
    assert runs(record) == {"m-1": {"start": 1, "done": 0}}  # no child_done: killed with it


@pytest.mark.parametrize("runner_kind", ["callable", "command"])
def test_an_abort_for_a_lost_lease_ends_the_job_as_lease_lost(
    runner_kind: str, tmp_path: Path
) -> None:
    body = json.dumps({"record": str(tmp_path / "record"), "duration_seconds": 30})
    runner = (
        CallableRunner(RECORDED) if runner_kind == "callable" else CommandRunner(RECORDED_COMMAND)
    )
    stop_at = time.monotonic() + 0.5
    try:
        result = runner.run(
            body, CTX, 60, lambda: "lease_lost" if time.monotonic() > stop_at else False
        )
    finally:
        runner.close()
    assert result.outcome == "lease_lost"
    assert runs(tmp_path / "record")["m-1"]["done"] == 0


def _command_worker(command: str) -> None:
    """A worker stand-in running one command job."""
    CommandRunner(command).run("", CTX, 120, never)


# A program that records its own pid, then sleeps: the process the job really is.
_PID_PROGRAM = (
    sys.executable + " -c 'import os, sys, time; "
    'open(sys.argv[1], "w").write(str(os.getpid())); time.sleep(60)\' {pid_file}'
)


@pytest.mark.parametrize(
    "command",
    [
        _PID_PROGRAM,  # a simple command, as teams write it: `php artisan kit:run`
        "JOB_ENV=1 " + _PID_PROGRAM,  # with a leading assignment
        "echo $$ > {pid_file}; exec sleep 60",  # a compound command that execs by itself
    ],
    ids=["simple", "assignment", "compound-exec"],
)
def test_a_command_dies_when_its_worker_is_killed_with_9(command: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    worker = multiprocessing.get_context("spawn").Process(
        target=_command_worker, args=(command.format(pid_file=pid_file),)
    )
    worker.start()
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    command_pid = int(pid_file.read_text())
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    deadline = time.monotonic() + 5
    while not _dead(command_pid):
        assert time.monotonic() < deadline, "the command outlived its worker (PDEATHSIG)"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("php artisan kit:run", "exec php artisan kit:run"),
        ('APP_ENV="prod x" php job.php', 'exec env APP_ENV="prod x" php job.php'),
        ("php job.php 2>&1", "exec php job.php 2>&1"),
        ("exec php job.php", "exec php job.php"),
        ("env A=1 php job.php", "env A=1 php job.php"),
        ('php job.php --sep=";"', 'exec php job.php --sep=";"'),
        ("cd /app && php job.php", "cd /app && php job.php"),
        ("php job.php | tee out", "php job.php | tee out"),
        ("php a.php; php b.php", "php a.php; php b.php"),
        ("php job.php &", "php job.php &"),
        ("php a.php\nphp b.php", "php a.php\nphp b.php"),
        ("! php job.php", "! php job.php"),
        ("php 'unterminated", "php 'unterminated"),
    ],
)
def test_a_simple_command_is_execd_a_compound_one_runs_as_written(
    command: str, script: str
) -> None:
    assert exec_script(command) == script
