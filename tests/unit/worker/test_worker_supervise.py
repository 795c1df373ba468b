"""The fleet's watch (worker.watch): when a worker process cannot work, and the start-up
queue check of worker.app. The watch is fed supervisord's events as supervisord writes them;
its receive marks are the ones the worker loop writes (worker.health.mark_alive)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from worker import app
from worker.health import mark_alive
from worker.supervise import fleet_failure, run_supervisord, start_timeout
from worker.watch import MAX_FAILED_STARTS, FleetWatch, fatal_listener

from tests.conftest import REGION, free_port

TIMEOUT = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch_of(received: dict[str, float], consumer_mode: bool = False) -> FleetWatch:
    """A watch whose processes received at the times in `received` (name -> last receive)."""
    return FleetWatch(
        TIMEOUT,
        lambda name, since: received.get(name, float("-inf")) >= since,
        consumer_mode=consumer_mode,
    )


def fail_starts(watch: FleetWatch, name: str, times: int, at: float = 0.0) -> list[Any]:
    results = []
    for i in range(times):
        watch.starting(name, at + 2 * i)
        results.append(watch.ended(name, at + 2 * i + 1))
    return results


def test_a_process_that_ends_three_starts_without_receiving_cannot_work() -> None:
    results = fail_starts(watch_of({}), "worker_03", MAX_FAILED_STARTS)
    assert results[:-1] == [None] * (MAX_FAILED_STARTS - 1)
    assert results[-1] == (
        "worker_03",
        "worker_03 ended 3 times in a row without receiving a message",
    )


def test_a_receive_proves_the_process_and_restarts_the_count() -> None:
    received: dict[str, float] = {}
    watch = watch_of(received)
    assert fail_starts(watch, "worker_00", 2) == [None, None]
    watch.starting("worker_00", 10)
    received["worker_00"] = 11  # it received, then exited (a recycle, a crash in a job)
    assert watch.ended("worker_00", 12, clean=True) is None
    # Later every start fails (a deploy that worked, then breaks): 3 more are needed.
    assert fail_starts(watch, "worker_00", 3, at=20)[-1] is not None
    assert fail_starts(watch_of(received), "worker_00", 2, at=20) == [None, None]


def test_a_clean_exit_before_any_receive_is_a_failed_start() -> None:
    """A loop that exits 0 before receiving (its memory limit already exceeded at start)."""
    watch = watch_of({})
    for i in range(MAX_FAILED_STARTS):
        watch.starting("worker_00", i)
        failure = watch.ended("worker_00", i + 0.5, clean=True)
    assert failure is not None


def test_a_process_that_has_not_received_within_the_bound_cannot_work() -> None:
    watch = watch_of({})
    watch.starting("worker_01", 0)
    assert watch.tick(TIMEOUT) is None
    watch.ended("worker_01", 30)
    watch.starting("worker_01", 31)  # the bound counts from the first start
    assert watch.tick(TIMEOUT + 1) == (
        "worker_01",
        "worker_01 has not received a message within 60 s of its start",
    )


def test_a_process_that_received_is_never_bound_in_time() -> None:
    watch = watch_of({"worker_00": 5})
    watch.starting("worker_00", 1)
    assert watch.tick(10) is None
    assert watch.tick(10 * TIMEOUT) is None  # a long job, an idle queue: still working


def test_a_process_stopped_by_supervisord_is_no_longer_watched() -> None:
    watch = watch_of({})
    watch.starting("worker_00", 0)
    watch.stopped("worker_00")
    assert watch.tick(10 * TIMEOUT) is None


def test_consumer_mode_a_consumer_that_stays_up_or_exits_0_works() -> None:
    watch = watch_of({}, consumer_mode=True)
    watch.starting("worker_00", 0)
    assert watch.tick(TIMEOUT) is None  # up for the whole bound: working
    assert watch.ended("worker_00", 100) is None  # no longer watched
    for i in range(5):  # exits 0 quickly, again and again (`--stop-when-empty`)
        watch.starting("worker_01", 200 + i)
        assert watch.ended("worker_01", 200.5 + i, clean=True) is None
    failures = fail_starts(watch, "worker_02", MAX_FAILED_STARTS, at=300)
    assert failures[-1] == ("worker_02", "worker_02 ended 3 times in a row without staying up")


# -- the listener, as supervisord drives it ---------------------------------------------------


def event(name: str, **fields: str) -> str:
    payload = " ".join(f"{k}:{v}" for k, v in fields.items())
    header = f"ver:3.0 server:supervisor serial:1 pool:fatal poolserial:1 eventname:{name}"
    return f"{header} len:{len(payload)}\n{payload}"


def state(name: str, process: str, group: str = "worker", **fields: str) -> str:
    return event(f"PROCESS_STATE_{name}", processname=process, groupname=group, **fields)


def listen(run_dir: Path, events: list[str], clock: Callable[[], float], **env: str) -> int:
    """Feed `events` to the listener; how often it stopped the fleet. Checks the protocol."""
    stops: list[None] = []
    out = io.StringIO()
    fatal_listener(
        {"WORKER_RUN_DIR": str(run_dir), **env},
        io.StringIO("".join(events)),
        out,
        clock,
        lambda: stops.append(None),
    )
    assert out.getvalue() == "READY\n" + "RESULT 2\nOKREADY\n" * len(events)
    return len(stops)


def test_the_listener_stops_the_fleet_once_and_says_why(tmp_path: Path) -> None:
    starts_and_exits = [
        state("STARTING", "worker_00", from_state="BACKOFF", tries="0"),
        state("EXITED", "worker_00", from_state="RUNNING", expected="0", pid="42"),
    ]
    others = [  # the listener's own group, and a tick: no effect on the count
        state("EXITED", "fatal", group="fatal", from_state="RUNNING", expected="0", pid="7"),
        event("TICK_5", when="1000"),
    ]
    stops = listen(tmp_path, [*others, *starts_and_exits * 4], time.time)
    assert stops == 1
    assert fleet_failure(tmp_path) == "worker_00 ended 3 times in a row without receiving a message"


def test_the_listener_reads_the_marks_the_loop_writes(tmp_path: Path) -> None:
    """Between the start and the exit, worker.health.mark_alive (what the loop calls after a
    receive) proves the process: 4 exits do not stop the fleet."""

    def incarnations() -> Iterator[str]:
        for _ in range(4):
            yield state("STARTING", "worker_00", from_state="EXITED", tries="0")
            mark_alive(tmp_path, "worker_00")
            yield state("EXITED", "worker_00", from_state="RUNNING", expected="1", pid="42")

    class Lazy(io.StringIO):
        """Writes the marks while the listener reads the events, as a fleet does."""

        def __init__(self) -> None:
            super().__init__()
            self.pending = incarnations()

        def readline(self, *args: Any) -> str:
            line = next(self.pending, "")
            self.rest = line.partition("\n")[2]
            return line.partition("\n")[0] + "\n" if line else ""

        def read(self, *args: Any) -> str:
            return self.rest

    stops: list[None] = []
    fatal_listener(
        {"WORKER_RUN_DIR": str(tmp_path)},
        Lazy(),
        io.StringIO(),
        time.time,
        lambda: stops.append(None),
    )
    assert stops == []
    assert not (tmp_path / "fatal").exists()


def test_the_listener_applies_the_time_bound_on_ticks(tmp_path: Path) -> None:
    clock = Clock()
    events = [state("STARTING", "worker_05", from_state="STOPPED", tries="0")]
    events += [event("TICK_5", when=str(t)) for t in range(5)]

    def ticking() -> float:
        clock.now += 5
        return clock.now

    assert listen(tmp_path, events, ticking, WORKER_START_TIMEOUT_SECONDS="20") == 1
    assert "within 20 s of its start" in fleet_failure(tmp_path)


def test_a_fatal_process_stops_the_fleet(tmp_path: Path) -> None:
    events = [state("FATAL", "worker_01", from_state="BACKOFF")]
    assert listen(tmp_path, events, time.time) == 1
    assert json.loads((tmp_path / "fatal").read_text())["program"] == "worker_01"


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_start_timeout_fails_naming_it(value: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"WORKER_START_TIMEOUT_SECONDS='{value}'"):
        start_timeout({"WORKER_START_TIMEOUT_SECONDS": value})
    env = {"WORKER_START_TIMEOUT_SECONDS": value, "WORKER_RUN_DIR": str(tmp_path)}
    assert run_supervisord(env) == app.EX_CONFIG  # before supervisord starts
    assert start_timeout({}) == 60


# -- the start-up queue check ------------------------------------------------------------------


def test_the_queue_check_passes_for_a_queue_that_exists(
    sqs_client: Any, make_queue_pair: Callable[..., Any]
) -> None:
    app.check_queue(sqs_client, make_queue_pair().url, sleep=pytest.fail)


def test_a_queue_that_does_not_exist_fails_at_once(
    sqs_client: Any, make_queue_pair: Callable[..., Any]
) -> None:
    url = make_queue_pair().url
    sqs_client.delete_queue(QueueUrl=url)
    with pytest.raises(app.QueueUnusable, match=f"QUEUE_URL='{url}'.*NonExistentQueue"):
        app.check_queue(sqs_client, url, sleep=pytest.fail)


def test_transient_errors_are_tried_again_then_fail() -> None:
    """Nothing listens on the endpoint: connection refused on every try."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    url = f"{endpoint}/123456789012/work"
    slept: list[float] = []
    with pytest.raises(app.QueueUnusable, match="still failing after 3 tries"):
        app.check_queue(sqs, url, sleep=slept.append)
    assert slept == [1.0, 2.0]


def test_a_worker_on_a_missing_queue_exits_ex_config(
    sqs_client: Any,
    make_queue_pair: Callable[..., Any],
    moto_endpoint: str,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = make_queue_pair().url
    sqs_client.delete_queue(QueueUrl=url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # boto3 reads it from the process
    assert app.main({"QUEUE_URL": url, "AWS_REGION": REGION}) == app.EX_CONFIG
    assert "NonExistentQueue" in capsys.readouterr().err


@pytest.mark.parametrize("code", ["AccessDenied", "KMS.AccessDeniedException"])
def test_a_queue_this_role_may_not_use_fails_at_once(code: str) -> None:
    """SQS's answer to a role without the grant (botocore's Stubber: moto allows everything)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/work"
    with Stubber(sqs) as stub:
        stub.add_client_error("get_queue_attributes", service_error_code=code, http_status_code=403)
        with pytest.raises(app.QueueUnusable, match=f"QUEUE_URL='{url}': cannot be used: {code}"):
            app.check_queue(sqs, url, sleep=pytest.fail)
        stub.assert_no_pending_responses()
