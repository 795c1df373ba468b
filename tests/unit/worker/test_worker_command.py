"""Command mode: what a command gets (attributes, result file), its output in the log, signal
deaths, the executable checked at start, its memory watched, no busy waiting."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from worker import contract, handlers
from worker.app import main
from worker.handlers import (
    MAX_OUTPUT_EVENT_BYTES,
    CommandRunner,
    HandlerError,
    JobContext,
    JobResult,
    OutputLimit,
    check_command,
)
from worker.logs import EventLog

from tests.sqs_helpers import queue_counts
from tests.unit.worker.harness import Harness
from tests.unit.worker.recording_handlers import RECORDED_COMMAND

Make = Callable[..., Harness]
CTX = JobContext(message_id="m-1", receive_count=2)
PY = sys.executable
# Holds ~N MiB of touched memory, then sleeps: a leaking job.
HOG = PY + " -c 'import sys, time; hog = b\"x\" * ({} * 2**20); time.sleep(30)'"


def never() -> bool:
    return False


def logged_runner(command: str, **options: Any) -> tuple[CommandRunner, io.StringIO]:
    stream = io.StringIO()
    return CommandRunner(command, EventLog("worker_test", stream), **options), stream


def events(stream: io.StringIO, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in lines if e["event"] == name]


def test_message_attributes_reach_the_command_in_sqs_shape(
    make_worker: Make, tmp_path: Path
) -> None:
    out = tmp_path / "env.json"
    dump = f"{PY} -c 'import json, os; print(json.dumps(dict(os.environ)))' > {out}"
    h = make_worker(WORKER_HANDLER_MODE="command", WORKER_HANDLER=dump)
    queue = h.worker.settings.queue_url
    sent = h.sqs.client.send_message(
        QueueUrl=queue,
        MessageBody="{}",
        MessageAttributes={
            "type": {"DataType": "String", "StringValue": "App\\Message\\SendEmail"},
            "attempt": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffkit"},
        },
    )["MessageId"]
    h.start()
    h.wait_for(lambda: len(h.jobs("done")) == 1)
    h.stop()
    env = json.loads(out.read_text())
    shaped = {
        "type": {"DataType": "String", "StringValue": "App\\Message\\SendEmail"},
        "attempt": {"DataType": "Number", "StringValue": "3"},
        "blob": {"DataType": "Binary", "BinaryValue": "AP9raXQ="},  # base64 of the bytes
    }
    assert json.loads(env[contract.MESSAGE_ATTRIBUTES_VARIABLE]) == shaped
    attributes_file = Path(env[contract.MESSAGE_ATTRIBUTES_FILE_VARIABLE])
    assert attributes_file.parent == Path(env["WORKER_RESULT_FILE"]).parent  # the private dir
    assert not attributes_file.exists()  # removed after the job
    assert env["WORKER_MESSAGE_ID"] == sent
    assert env["WORKER_RECEIVE_COUNT"] == "1"
    assert env["WORKER_QUEUE_URL"] == queue
    assert env["WORKER_RESULT_FILE"].endswith(".json")


def test_a_message_without_attributes_gets_an_empty_object(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = f'printf %s "$WORKER_MESSAGE_ATTRIBUTES" > {out}'
    command += f'; cat "$WORKER_MESSAGE_ATTRIBUTES_FILE" >> {out}'
    runner, _ = logged_runner(command)
    assert runner.run("", CTX, 10, never).outcome == "done"
    assert out.read_text() == "{}{}"


def big_attributes(size: int) -> dict[str, Any]:
    """Attributes as boto3 returns them: one String value of `size` characters, one binary."""
    return {
        "payload": {"DataType": "String", "StringValue": "x" * size},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }


@pytest.mark.parametrize(
    ("size", "in_variable"),
    [
        (contract.MESSAGE_ATTRIBUTES_VARIABLE_MAX_BYTES - 200, True),  # fits: both
        (contract.MESSAGE_ATTRIBUTES_VARIABLE_MAX_BYTES, False),  # its JSON is above 64 KiB
        (250 * 1024, False),  # above Linux's 128 KiB for one environment string
    ],
)
def test_attributes_of_any_size_reach_the_command_in_their_file(
    size: int, in_variable: bool, tmp_path: Path
) -> None:
    """The file always holds them; the variable only up to 64 KiB (before, a 250-KiB attribute
    made Popen raise E2BIG out of the runner: the worker died)."""
    out = tmp_path / "out"
    dump = f"{PY} -c 'import json, os; print(json.dumps(dict(os.environ)))' > {out}.env"
    runner, _ = logged_runner(f'cat "$WORKER_MESSAGE_ATTRIBUTES_FILE" > {out}; {dump}')
    context = JobContext("m-big", 1, big_attributes(size))
    assert runner.run("", context, 10, never) == JobResult("done")
    shaped = {
        "payload": {"DataType": "String", "StringValue": "x" * size},
        "blob": {"DataType": "Binary", "BinaryValue": "AP8="},
    }
    assert json.loads(out.read_text()) == shaped
    env = json.loads(Path(f"{out}.env").read_text())
    assert (contract.MESSAGE_ATTRIBUTES_VARIABLE in env) is in_variable
    if in_variable:
        assert json.loads(env[contract.MESSAGE_ATTRIBUTES_VARIABLE]) == shaped


@pytest.mark.parametrize("code", [errno.E2BIG, errno.ENOMEM, errno.EAGAIN, errno.ENOENT])
def test_a_command_that_cannot_be_started_is_its_messages_retry_with_the_reason(
    code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    runner, _ = logged_runner("true")
    monkeypatch.setattr(handlers.subprocess, "Popen", refused)
    result = runner.run("", CTX, 10, never)
    assert result == JobResult(
        "retry", f"could not start the command: [Errno {code}] {os.strerror(code)}"
    )
    monkeypatch.undo()
    assert runner.run("", CTX, 10, never) == JobResult("done")  # the runner goes on
    assert runner._job_dir is not None and os.listdir(runner._job_dir) == []  # nothing left


def test_a_message_whose_command_cannot_start_fails_alone_and_the_worker_goes_on(
    make_worker: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Popen refuses one message's command (ENOMEM) in a batch of 5: that message is retried
    with the reason, the 4 others run on their first receive (none handed back having spent
    one) and the worker keeps going; the failed one is done on its next receive. Before, the
    OSError left the loop, its `finally` handed the batch back and the process exited."""
    h = make_worker(
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=RECORDED_COMMAND,
        PREFETCH_SECONDS="100",
        RETRY_BACKOFF_BASE_SECONDS="0",
    )
    h.worker.durations.append(1.0)  # as if it had run a job: it receives 10 at a time
    ids = [h.send(duration_seconds=0) for _ in range(5)]
    popen = subprocess.Popen
    refused: list[str] = []

    def flaky(*args: Any, env: dict[str, str], **kwargs: Any) -> Any:
        if env["WORKER_MESSAGE_ID"] == ids[2] and not refused:
            refused.append(env["WORKER_MESSAGE_ID"])
            raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
        return popen(*args, env=env, **kwargs)

    monkeypatch.setattr(handlers.subprocess, "Popen", flaky)
    h.start()
    h.wait_for(lambda: len(h.jobs("done")) == 5)
    assert h.thread is not None and h.thread.is_alive()  # the worker kept running
    h.stop()
    [failed] = h.jobs("retry")
    assert failed["message_id"] == ids[2] and failed["receive_count"] == 1
    assert failed["error"] == "could not start the command: [Errno 12] Cannot allocate memory"
    receives = {j["message_id"]: j["receive_count"] for j in h.jobs("done")}
    assert {i: receives[i] for i in ids} == {**dict.fromkeys(ids, 1), ids[2]: 2}
    assert all(r == {"start": 1, "done": 1} for r in h.runs().values())


def test_a_missing_workdir_fails_the_job_not_the_runner(tmp_path: Path) -> None:
    """A real start failure: Popen's child cannot chdir (the volume went away)."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    runner, _ = logged_runner("true", cwd=str(workdir))
    workdir.rmdir()
    result = runner.run("", CTX, 10, never)
    assert result.outcome == "retry"
    assert result.error.startswith("could not start the command: [Errno 2]")
    workdir.mkdir()
    assert runner.run("", CTX, 10, never) == JobResult("done")


def write_result(data: str) -> str:
    return f"printf '%s' '{data}' > \"$WORKER_RESULT_FILE\""


@pytest.mark.parametrize(
    ("command", "outcome", "error", "retry_after"),
    [
        (write_result('{"reason": "RuntimeException: boom"}') + "; exit 1", "retry",
         "RuntimeException: boom", None),
        (write_result('{"reason": "cannot decode"}') + "; exit 65", "dead_letter",
         "cannot decode", None),
        (write_result('{"retry_after_seconds": 30}') + "; exit 75", "retry",
         "command exited 75", 30),
        (write_result('{"retry_after_seconds": 99999}') + "; exit 75", "retry",
         "command exited 75", 43200),
        (write_result('{"retry_after_seconds": -5}') + "; exit 75", "retry",
         "command exited 75", 0),
        (write_result("not json") + "; exit 3", "retry", "command exited 3", None),
        (write_result('["a list"]') + "; exit 3", "retry", "command exited 3", None),
        ("exit 3", "retry", "command exited 3", None),
        (write_result('{"reason": "ignored when done"}'), "done", "", None),
    ],
)  # fmt: skip
def test_the_result_file_gives_the_reason_and_the_retry_delay(
    command: str, outcome: str, error: str, retry_after: int | None
) -> None:
    result = CommandRunner(command).run("", CTX, 10, never)
    assert (result.outcome, result.error, result.retry_after_seconds) == (
        outcome,
        error,
        retry_after,
    )


def test_every_job_gets_a_fresh_result_file_in_a_private_directory(tmp_path: Path) -> None:
    out = tmp_path / "paths"
    runner = CommandRunner(f'echo "$WORKER_RESULT_FILE" >> {out}; echo x > "$WORKER_RESULT_FILE"')
    runner.run("", CTX, 10, never)
    runner.run("", CTX, 10, never)
    first, second = out.read_text().split()
    assert first != second
    directory = Path(first).parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert list(directory.iterdir()) == []  # read, then removed
    runner.close()
    assert not directory.exists()


def test_retry_after_sets_the_visibility_of_the_retry_instead_of_the_backoff(
    make_worker: Make,
) -> None:
    command = write_result('{"retry_after_seconds": 3}') + "; exit 75"
    h = make_worker(
        WORKER_HANDLER_MODE="command", WORKER_HANDLER=command, RETRY_BACKOFF_BASE_SECONDS="0"
    )
    h.send("{}")
    h.start()
    h.wait_for(lambda: len(h.jobs("retry")) == 1)
    released = time.monotonic()
    h.stop()
    queue = h.worker.settings.queue_url
    while queue_counts(h.sqs.client, queue) != (1, 0):  # invisible (backoff 0 would show it)
        assert time.monotonic() - released < 10, "the message never came back"
        time.sleep(0.1)
    assert time.monotonic() - released >= 2  # back after about 3 s


def test_the_reason_of_a_dead_lettered_command_reaches_the_dlq_copy(make_worker: Make) -> None:
    command = write_result('{"reason": "InvalidArgumentException: no such user"}') + "; exit 65"
    h = make_worker(WORKER_HANDLER_MODE="command", WORKER_HANDLER=command)
    h.send("{}")
    h.start()
    h.wait_for(lambda: len(h.jobs("dead_letter")) == 1)
    h.stop()
    assert h.jobs()[0]["error"] == "InvalidArgumentException: no such user"
    dead = h.sqs.client.receive_message(
        QueueUrl=h.worker.settings.dead_letter_queue_url, MessageAttributeNames=["All"]
    )["Messages"][0]
    reason = dead["MessageAttributes"]["worker_failure_reason"]["StringValue"]
    assert reason == "InvalidArgumentException: no such user"


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("kill -9 $$", "killed by SIGKILL (signal 9)"),  # the shell itself
        ("sleep 30 & kill -TERM $!; wait $!", "killed by SIGTERM (signal 15)"),  # 128 + 15
        ("exit 137", "killed by SIGKILL (signal 9)"),  # what /bin/sh says for its child
        ("exit 127", "command exited 127"),
    ],
)
def test_deaths_by_signal_are_reported_as_such(command: str, error: str) -> None:
    result = CommandRunner(command).run("", CTX, 10, never)
    assert (result.outcome, result.error) == ("retry", error)


def output_text(lines: list[dict[str, Any]], stream: str) -> str:
    """What the command wrote to `stream`, rebuilt from its `job_output` events as
    docs/frameworks.md ("Output") says: an event cut at the cap (`truncated`) goes on in the
    next one of its stream; every other event ends at a line end."""
    return "".join(
        e["line"] + ("" if e.get("truncated") else "\n") for e in lines if e["stream"] == stream
    )


def test_output_is_logged_as_json_with_the_message_id() -> None:
    command = "echo 'PHP Fatal error: boom'; echo warn >&2; printf 'bad \\377 byte\\n'; printf last"
    runner, stream = logged_runner(command)
    assert runner.run("", CTX, 10, never).outcome == "done"
    lines = events(stream, "job_output")
    assert output_text(lines, "stdout") == "PHP Fatal error: boom\nbad \ufffd byte\nlast\n"
    assert output_text(lines, "stderr") == "warn\n"
    assert all(
        (e["level"], e["message_id"], e["process"]) == ("info", "m-1", "worker_test")
        and "truncated" not in e
        for e in lines
    )


# A Laravel-like exception report: 40 lines that PHP's stderr logger writes at once.
TRACE = "RuntimeException: payment API said no in /app/app/Jobs/Charge.php:31\n" + "".join(
    f"#{n} /app/vendor/laravel/framework/src/Illuminate/Pipeline/Pipeline.php({n}): handle()\n"
    for n in range(39)
)


def test_a_stack_trace_written_at_once_is_one_event_with_all_its_lines(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.write_text(TRACE)
    write_at_once = f"import sys; sys.stderr.write(open({str(trace)!r}).read())"
    runner, stream = logged_runner(f'{PY} -c "{write_at_once}"; exit 65')
    assert runner.run("", CTX, 10, never).outcome == "dead_letter"
    [event] = events(stream, "job_output")
    assert (event["stream"], event["message_id"], event["level"]) == ("stderr", "m-1", "info")
    assert event["line"].split("\n") == TRACE.splitlines()
    assert len(TRACE.splitlines()) == 40


def test_output_written_apart_is_logged_apart() -> None:
    runner, stream = logged_runner("printf 'a\\nb\\n'; sleep 0.5; printf 'c\\nd\\n'")
    assert runner.run("", CTX, 10, never).outcome == "done"
    assert [e["line"] for e in events(stream, "job_output")] == ["a\nb", "c\nd"]


def test_a_burst_above_the_cap_goes_on_in_the_next_events_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    lines = [
        "short",
        "y" * (MAX_OUTPUT_EVENT_BYTES * 2 + 100),  # one line of three events
        "\u00e9" * MAX_OUTPUT_EVENT_BYTES,  # two bytes each: cut between characters, not in one
        *(f"line {n} " * 30 for n in range(100)),  # 24 KB of short lines: cut at line ends
    ]
    text = "\n".join(lines) + "\n"
    written = tmp_path / "out"
    written.write_text(text)
    runner, stream = logged_runner(f"cat {written}")
    assert runner.run("", CTX, 10, never).outcome == "done"
    out = events(stream, "job_output")
    assert output_text(out, "stdout") == text  # every byte, in order, no character broken
    assert all(len(e["line"].encode()) <= MAX_OUTPUT_EVENT_BYTES for e in out)
    cut = [e for e in out if e.get("truncated")]
    assert [e["line"][0] for e in cut] == ["y", "y", "\u00e9"]
    # Each event after a cut one says it goes on with that line.
    assert [bool(e.get("continued")) for e in out] == [False] + [
        bool(e.get("truncated")) for e in out[:-1]
    ]
    assert len(out) >= 7


TEN_MB = 10 * 2**20
# 10 MiB of 64-byte lines as fast as the pipe takes them (`yes` repeats its line).
FLOOD = f"yes {'x' * 63} | head -c {TEN_MB}"


def test_a_command_that_prints_10_mb_logs_at_most_its_limit_and_one_summary(
    make_worker: Make,
) -> None:
    """At the default limit (1 MiB, 1,000 lines a job) the job logs at most 1 MiB of its
    output, then one `job_output_truncated` line counts the rest; its pipes are drained, so it
    is not slowed: done within seconds. Before: about 1,300 job_output lines, all 10 MiB."""
    h = make_worker(WORKER_HANDLER_MODE="command", WORKER_HANDLER=FLOOD)
    h.send("{}")
    started = time.monotonic()
    h.start()
    h.wait_for(lambda: len(h.jobs()) == 1)
    elapsed = time.monotonic() - started
    h.stop()
    [job] = h.jobs()
    assert job["outcome"] == "done"
    assert job["duration_seconds"] < 5 and elapsed < 8
    output = h.events(contract.JOB_OUTPUT_EVENT)
    logged = sum(len(e["line"]) + (0 if e.get("truncated") else 1) for e in output)
    assert logged <= 2**20 and len(output) <= 1000
    [summary] = h.events(contract.JOB_OUTPUT_TRUNCATED_EVENT)
    assert summary["message_id"] == job["message_id"]
    assert summary[contract.DROPPED_BYTES] + logged == TEN_MB  # every byte logged or counted
    assert summary[contract.DROPPED_EVENTS] >= (TEN_MB - 2**20) // MAX_OUTPUT_EVENT_BYTES
    assert (summary["max_bytes"], summary["max_events"]) == (2**20, 1000)
    assert summary["level"] == "warning"
    lines = h.stream.getvalue().splitlines()  # the summary comes before the job line
    assert lines.index(json.dumps(summary)) < lines.index(json.dumps(job))


def test_output_past_the_line_limit_is_counted_not_logged() -> None:
    """Bursts apart (0.15 s quiet between) from both streams share one budget of 4 lines."""
    command = "for i in 1 2 3 4 5 6; do echo out$i; echo err$i >&2; sleep 0.15; done"
    runner, stream = logged_runner(command, output_limit=OutputLimit(max_bytes=0, max_events=4))
    assert runner.run("", CTX, 10, never).outcome == "done"
    output = events(stream, contract.JOB_OUTPUT_EVENT)
    assert sorted(e["line"] for e in output) == ["err1", "err2", "out1", "out2"]
    [summary] = events(stream, contract.JOB_OUTPUT_TRUNCATED_EVENT)
    assert (summary[contract.DROPPED_EVENTS], summary[contract.DROPPED_BYTES]) == (8, 8 * 5)


def test_without_limits_nothing_is_dropped_and_no_summary_is_logged() -> None:
    runner, stream = logged_runner(
        "yes line | head -c 300000", output_limit=OutputLimit(max_bytes=0, max_events=0)
    )
    assert runner.run("", CTX, 10, never).outcome == "done"
    assert len(output_text(events(stream, contract.JOB_OUTPUT_EVENT), "stdout")) == 300000
    assert events(stream, contract.JOB_OUTPUT_TRUNCATED_EVENT) == []


def test_processes_a_command_leaves_behind_are_killed_when_it_exits(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    runner = CommandRunner(f"sleep 60 > /dev/null 2>&1 & echo $! > {pid_file}")
    started = time.monotonic()
    assert runner.run("", CTX, 10, never).outcome == "done"
    assert time.monotonic() - started < 3
    orphan = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{orphan}") and "Z" not in _state(orphan):
        assert time.monotonic() < deadline, "the job's background process survived it"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "Z"


def test_a_job_above_the_memory_limit_is_stopped_with_its_figure(tmp_path: Path) -> None:
    runner, _ = logged_runner(HOG.format(120), memory_limit_mib=60)
    started = time.monotonic()
    result = runner.run("", CTX, 60, never)
    assert result.outcome == "memory_exceeded"
    assert time.monotonic() - started < 8  # sampled about once a second, not after 30 s
    assert "above MAX_MEMORY_MIB_PER_PROCESS=60" in result.error
    used = int(result.error.split("used ")[1].split(" MiB")[0])
    assert 60 < used < 200
    assert runner.job_rss_bytes() > 60 * 2**20  # the job's peak, for its job line
    assert runner.rss_bytes() == 0  # gone with the job: nothing for the loop's recycle


def test_the_job_line_carries_the_peak_rss_and_the_memory_outcome(
    make_worker: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop runs inside pytest here: pytest's own RSS is no worker's (it would recycle first).
    monkeypatch.setattr("worker.loop.rss_bytes", lambda: 0)
    h = make_worker(
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=HOG.replace("30)", "1.5)").format(40),
        MAX_MEMORY_MIB_PER_PROCESS="0",
    )
    h.send("{}")
    big = make_worker(
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=HOG.format(150),
        MAX_MEMORY_MIB_PER_PROCESS="100",
    )
    big_id = big.send("{}")
    for harness in (h, big):
        harness.start()
    h.wait_for(lambda: len(h.jobs()) == 1)
    big.wait_for(lambda: len(big.jobs()) == 1)
    h.stop()
    # The PHP process that grew is gone: the loop goes on, no recycle hands anything back.
    assert big.stop() == "sigterm"
    [line] = h.jobs("done")
    assert 40 < line["max_rss_mib"] < 100  # sampled about once a second
    over, *again = big.jobs()  # the loop went on: it may have run the retry already
    assert over["outcome"] == "memory_exceeded" and over["message_id"] == big_id
    assert over["max_rss_mib"] > 100 and over["level"] == "warning"
    assert all(j["outcome"] == "memory_exceeded" and j["message_id"] == big_id for j in again)
    # retried after the backoff like any failure: not deleted
    assert sum(queue_counts(big.sqs.client, big.worker.settings.queue_url)) == 1


def test_a_running_command_costs_no_busy_polling() -> None:
    runner = CommandRunner("sleep 3", memory_limit_mib=256)
    cpu = time.thread_time()
    assert runner.run("", CTX, 10, never).outcome == "done"
    # 3 wake-ups with a /proc scan each (a 50 ms poll cost ~20 ms of CPU over 3 s).
    assert time.thread_time() - cpu < 0.1


@pytest.mark.parametrize(
    "command",
    [
        "no-such-php /app/run.php",
        "/usr/bin/no-such-php run.php",
        "exec /usr/bin/no-such-php run.php",
        "env -i APP_ENV=prod no-such-php run.php",
        "APP_ENV=prod no-such-php run.php",
        "'unbalanced",
        "",
    ],
)
def test_a_missing_executable_fails_the_check(command: str) -> None:
    with pytest.raises(HandlerError, match=r"WORKER_HANDLER="):
        check_command(command)


def test_a_file_that_is_not_executable_fails_the_check(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("exit 0\n")
    with pytest.raises(HandlerError, match="not an executable file"):
        check_command(f"{script} --x")
    script.chmod(0o755)
    check_command(f"{script} --x")


@pytest.mark.parametrize(
    "command",
    [
        "sh -c 'exit 0'",
        f"exec {PY} -V",
        "env A=1 sh -e run.sh",
        "exit 0",
        "cd /tmp",
        "sh run.sh",
        "sh $APP_DIR/run.sh",  # expanded at run time: not judged at start
        "sh ~/run.sh",
    ],
)
def test_present_executables_and_shell_words_pass_the_check(command: str, tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("exit 0\n")
    check_command(command, str(tmp_path))


@pytest.mark.parametrize(
    "command",
    [
        "php artisan kit:run",
        f"{PY} /no/such/run-job.php",
        "APP_ENV=prod sh bin/run.sh --x",
        f"env A=1 {PY} run-message.php",
    ],
)
def test_a_missing_script_of_an_interpreter_fails_the_check(command: str, tmp_path: Path) -> None:
    with pytest.raises(HandlerError, match=r"which is not a file \(in "):
        check_command(command.replace("php ", f"{PY} ", 1), str(tmp_path))


@pytest.mark.parametrize("mode", ["command", "consumer"])
def test_a_missing_executable_stops_the_process_at_start_with_ex_config(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "QUEUE_URL": "http://127.0.0.1:1/000000000000/never-reached",
        "WORKER_HANDLER_MODE": mode,
        "WORKER_HANDLER": "/usr/local/bin/php /app/artisan queue:work",
    }
    started = time.monotonic()
    assert main(env) == 78
    assert time.monotonic() - started < 5
    assert "WORKER_HANDLER='/usr/local/bin/php /app/artisan queue:work'" in capsys.readouterr().err


def test_a_restarted_process_kills_the_job_its_killed_predecessor_left(tmp_path: Path) -> None:
    job_file = str(tmp_path / "task" / "worker_03.job")
    first = CommandRunner("sleep 60", job_file=job_file)
    thread = threading.Thread(target=first.run, args=("", CTX, 120, never), daemon=True)
    thread.start()  # stands in for a worker killed by SIGKILL mid-job: it never cleans up
    deadline = time.monotonic() + 5
    while not os.path.exists(job_file):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pgid = int(Path(job_file).read_text())
    runner, stream = logged_runner("sleep 60", job_file=job_file)
    runner.kill_orphan()
    thread.join(5)
    assert not thread.is_alive()  # the orphan's group is gone
    assert events(stream, contract.JOB_ORPHAN_KILLED_EVENT)[0]["pgid"] == pgid
    assert not os.path.exists(job_file)
    runner.kill_orphan()  # nothing left: nothing happens
    assert len(events(stream, contract.JOB_ORPHAN_KILLED_EVENT)) == 1


def test_a_finished_job_leaves_no_job_file(tmp_path: Path) -> None:
    job_file = tmp_path / "worker_00.job"
    runner = CommandRunner(f"sleep 0.5; test -f {job_file}", job_file=str(job_file))
    assert runner.run("", CTX, 10, never).outcome == "done"  # the file existed while it ran
    assert not job_file.exists()


def test_commands_run_in_the_workdir(tmp_path: Path) -> None:
    runner = CommandRunner("pwd > where", cwd=str(tmp_path))
    assert runner.run("", CTX, 10, never).outcome == "done"
    assert (tmp_path / "where").read_text().strip() == str(tmp_path)


class _BrokenStream(io.StringIO):
    """A log stream that fails every write (stdout gone, a full disk)."""

    def write(self, text: str) -> int:
        raise OSError("write failed")


def test_output_that_cannot_be_logged_never_blocks_or_fails_the_job() -> None:
    # 256 KiB of output: far more than a pipe holds, so an undrained pipe would block the job.
    runner = CommandRunner(
        "head -c 262144 /dev/zero | tr '\\0' 'x' | fold -w 100", EventLog("w", _BrokenStream())
    )
    started = time.monotonic()
    assert runner.run("", CTX, 20, never).outcome == "done"
    assert time.monotonic() - started < 10
