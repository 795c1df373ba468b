"""`consumer` mode and the pause tag (contract.PAUSED_TAG), in its two halves.

The fleet's watch reads the tags once a task (worker.pause.PauseReader, here against moto and
an endpoint that denies every call) and leaves WORKER_RUN_DIR/paused while every queue is
tagged; each consumer's watcher (worker.consumer) obeys that file: it stops its consumer
gracefully and waits without one, and starts a fresh one when the file goes. The three together
(`queue-worker pause`, the watch, the watchers) are tests/integration/test_pause_fleet.py."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from worker.consumer import CONSUMER_PAUSED_EVENT, CONSUMER_RESUMED_EVENT
from worker.contract import CONTINUED_EVENT, PAUSED_EVENT, PAUSED_TAG, QUEUES_VARIABLE
from worker.logs import EventLog
from worker.pause import PauseReader
from worker.supervise import fleet_paused, mark_fleet_paused

from tests.integration.fleet import ROOT, WORKER_IMAGE
from tests.unit.worker.test_worker_consumer import Watched

CHECK = "0.2"  # PAUSE_CHECK_SECONDS of these tests (30 by default)


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- the watcher obeys the file ------------------------------------------------------------------


def test_the_pause_file_stops_the_consumer_and_its_removal_starts_a_fresh_one(
    tmp_path: Path,
) -> None:
    watched = Watched(tmp_path, "0", "stop")
    watched.wait_for(lambda: bool(watched.events("worker_started")))
    [first] = [e["consumer_pid"] for e in watched.events("worker_started")]

    mark_fleet_paused(watched.run_dir, True)
    paused_at = time.monotonic()
    watched.wait_for(lambda: bool(watched.events(CONSUMER_PAUSED_EVENT)))
    assert time.monotonic() - paused_at < 2.5  # the next memory sample (about 1 s)
    assert watched.events(CONSUMER_PAUSED_EVENT)[0]["exit_code"] == 0
    assert watched.out.read_text() == "term"  # its own graceful stop
    assert not Path(f"/proc/{first}").exists()  # gone, and reaped by the watcher
    time.sleep(1.5)
    assert watched.process.poll() is None  # the watcher stays (an exit is a restart)
    assert not watched.events(CONSUMER_RESUMED_EVENT)

    mark_fleet_paused(watched.run_dir, False)
    watched.wait_for(lambda: bool(watched.events(CONSUMER_RESUMED_EVENT)))
    [resumed] = watched.events(CONSUMER_RESUMED_EVENT)
    assert resumed["consumer_pid"] != first and Path(f"/proc/{resumed['consumer_pid']}").exists()

    watched.process.send_signal(signal.SIGTERM)
    code, lines = watched.wait()
    assert code == 0
    assert [e["reason"] for e in lines if e["event"] == "worker_stopped"] == ["sigterm"]


def test_a_watcher_started_paused_starts_no_consumer_and_a_stop_ends_it_at_once(
    tmp_path: Path,
) -> None:
    watched = Watched(tmp_path, "0", "stop", WORKER_RUN_DIR=str(tmp_path / "run"))
    mark_fleet_paused(watched.run_dir, True)  # before the watcher has imported its modules
    time.sleep(2)  # past supervisord's startsecs: it stays up, not a failed start
    assert watched.process.poll() is None and not watched.events()
    watched.process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    code, lines = watched.wait()
    assert time.monotonic() - stopped_at < 1.0
    assert code == 0 and not watched.out.exists()  # the consumer never ran
    assert [e["event"] for e in lines] == ["worker_stopped"]
    assert lines[-1]["reason"] == "sigterm" and lines[-1]["exit_code"] is None


# -- the watch's reader writes the file ----------------------------------------------------------


class Reader:
    """A PauseReader of `env` (its SQS calls to `endpoint`), its log lines kept."""

    def __init__(self, run_dir: Path, endpoint: str, **env: str) -> None:
        self.stream = io.StringIO()
        environment = {
            "WORKER_HANDLER_MODE": "consumer",
            "WORKER_HANDLER": "php artisan queue:work sqs",
            "PAUSE_CHECK_SECONDS": CHECK,
            **env,
        }
        self.reader = PauseReader(environment, run_dir, EventLog("supervise", self.stream))
        self.endpoint = endpoint

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [e for e in lines if e["event"] == name]


@pytest.fixture
def reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Reader]]:
    """Factory: a Reader of run dir `tmp_path`; its thread is stopped after the test. boto3
    takes AWS_ENDPOINT_URL from the process's environment: set to the reader's endpoint."""
    made: list[Reader] = []

    def make(endpoint: str, **env: str) -> Reader:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        made.append(Reader(tmp_path, endpoint, **env))
        return made[-1]

    yield make
    for each in made:
        each.reader.stopped.set()


def test_the_reader_leaves_the_file_while_every_queue_is_paused_and_removes_it_after(
    make_queue_pair: Any, sqs_client: Any, moto_endpoint: str, reader: Any, tmp_path: Path
) -> None:
    high, low = make_queue_pair().url, make_queue_pair().url
    queues = [{"name": "high", "url": high}, {"name": "low", "url": low}]
    mark_fleet_paused(tmp_path, True)  # left by an earlier watch: removed at the start
    watch = reader(moto_endpoint, **{QUEUES_VARIABLE: json.dumps(queues)})
    watch.reader.start()
    assert not fleet_paused(tmp_path)

    sqs_client.tag_queue(QueueUrl=high, Tags={PAUSED_TAG: "since=test"})
    wait_for(lambda: bool(watch.events(PAUSED_EVENT)))
    time.sleep(2 * float(CHECK))
    assert not fleet_paused(tmp_path)  # one queue of two: the consumers go on
    sqs_client.tag_queue(QueueUrl=low, Tags={PAUSED_TAG: "since=test"})
    wait_for(lambda: fleet_paused(tmp_path))
    assert [(e["queue"], e["tag"]) for e in watch.events(PAUSED_EVENT)] == [
        ("high", "since=test"),
        ("low", "since=test"),
    ]

    sqs_client.untag_queue(QueueUrl=low, TagKeys=[PAUSED_TAG])
    wait_for(lambda: not fleet_paused(tmp_path))
    assert [e["queue"] for e in watch.events(CONTINUED_EVENT)] == ["low"]
    assert not watch.events("pause_check_error")


class DenyingSQS(BaseHTTPRequestHandler):
    """An SQS endpoint that refuses every call as IAM does a role without the action."""

    calls: ClassVar[list[str]] = []  # the X-Amz-Target of each call

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        DenyingSQS.calls.append(self.headers.get("X-Amz-Target", ""))
        body = json.dumps(
            {
                "__type": "com.amazon.coral.service#AccessDeniedException",
                "message": "not authorized to perform: sqs:listqueuetags",
            }
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-query-error", "AccessDenied;Sender")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def denying_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), DenyingSQS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    DenyingSQS.calls.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_role_that_cannot_read_the_tags_never_pauses_and_says_so_once(
    denying_endpoint: str, reader: Any, tmp_path: Path
) -> None:
    mark_fleet_paused(tmp_path, True)  # left by an earlier watch: removed at the start
    watch = reader(denying_endpoint, QUEUE_URL=f"{denying_endpoint}/000000000000/work")
    watch.reader.start()
    wait_for(lambda: len(DenyingSQS.calls) >= 4)  # refused reads, one try each
    assert set(DenyingSQS.calls) == {"AmazonSQS.ListQueueTags"}
    assert not fleet_paused(tmp_path)
    [error] = watch.events("pause_check_error")
    assert "AccessDenied" in error["error"] and error["level"] == "warning"
    assert error["queue"] == "work" and not watch.events(PAUSED_EVENT)


def test_a_reader_that_cannot_start_says_so_once_and_never_raises(
    reader: Any, tmp_path: Path
) -> None:
    watch = reader("http://127.0.0.1:1")  # no QUEUE_URL: no settings, no client
    watch.reader.read()
    watch.reader.read()
    [error] = watch.events("pause_check_error")
    assert "QUEUE_URL" in error["error"] and not fleet_paused(tmp_path)


@pytest.mark.parametrize("mode", ["callable", "command"])
def test_the_watch_of_the_other_modes_loads_no_pause_reader(mode: str, tmp_path: Path) -> None:
    """Its memory stays what it was (stacks/sizing.py): no worker.pause, no boto3."""
    code = (
        "import io, sys; from worker.watch import fatal_listener; "
        f"fatal_listener({{'WORKER_RUN_DIR': {str(tmp_path)!r}, 'WORKER_HANDLER_MODE': {mode!r}}},"
        " io.StringIO(''), io.StringIO()); "
        "print(sorted(m for m in ('boto3', 'worker.pause') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=WORKER_IMAGE,
        env={"PYTHONPATH": f"{ROOT}:{WORKER_IMAGE}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
