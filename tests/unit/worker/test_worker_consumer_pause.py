"""`consumer` mode and the pause tag (contract.PAUSED_TAG) against moto: the watcher reads the
tag like the loop (worker.pause.PauseFlag, every PAUSE_CHECK_SECONDS: shortened here to 0.5 s
from 30 s); once the queue is tagged it sends the consumer its graceful stop, which ends its
job, and waits without one; untagged, it starts a fresh consumer. The consumer is
tests/unit/worker/framework_consumer.py, a stand-in for `php artisan queue:work sqs`."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from worker.consumer import CONSUMER_PAUSED_EVENT, CONSUMER_RESUMED_EVENT
from worker.contract import CONTINUED_EVENT, PAUSED_EVENT, PAUSED_TAG

from tests.integration.fleet import send_jobs
from tests.sqs_helpers import queue_counts
from tests.unit.worker.recording_handlers import runs, started
from tests.unit.worker.test_worker_consumer import Watched

CHECK = "0.5"  # PAUSE_CHECK_SECONDS of these tests (30 by default)
CONSUMER_COMMAND = f"{sys.executable} -m tests.unit.worker.framework_consumer"


def consumer_pids(watched: Watched) -> list[int]:
    """The pids of the consumers the watcher started, in order."""
    started_events = watched.events("worker_started") + watched.events(CONSUMER_RESUMED_EVENT)
    return [e["consumer_pid"] for e in started_events]


def test_pause_ends_the_consumer_after_its_job_and_continue_starts_a_fresh_one(
    make_queue_pair: Any, sqs_client: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    pair = make_queue_pair(visibility_timeout=30)
    record = tmp_path / "record"
    watched = Watched(
        tmp_path,
        consumer=CONSUMER_COMMAND,
        AWS_ENDPOINT_URL=moto_endpoint,
        QUEUE_URL=pair.url,
        PAUSE_CHECK_SECONDS=CHECK,
    )
    [first] = send_jobs(sqs_client, pair.url, record, duration_seconds=3)
    watched.wait_for(lambda: started(record) == [first])
    waiting = set(send_jobs(sqs_client, pair.url, record, 3, duration_seconds=0.05))
    sqs_client.tag_queue(QueueUrl=pair.url, Tags={PAUSED_TAG: "since=test"})

    watched.wait_for(lambda: bool(watched.events(CONSUMER_PAUSED_EVENT)))
    [paused] = watched.events(CONSUMER_PAUSED_EVENT)
    assert paused["exit_code"] == 0  # its own graceful stop (SIGTERM), after its job
    assert runs(record) == {first: {"start": 1, "done": 1}}  # the job in hand ended
    assert queue_counts(sqs_client, pair.url) == (3, 0)  # and was deleted; nothing else taken
    [queue_paused] = watched.events(PAUSED_EVENT)
    assert queue_paused["tag"] == "since=test" and queue_paused["queue"] == pair.url.split("/")[-1]
    [consumer] = consumer_pids(watched)
    assert not Path(f"/proc/{consumer}").exists()  # gone, and reaped by the watcher
    time.sleep(4 * float(CHECK))  # paused: no consumer, the watcher polls the tag
    assert watched.process.poll() is None  # the watcher stays (an exit is a restart to supervisord)
    assert started(record) == [first] and queue_counts(sqs_client, pair.url) == (3, 0)

    sqs_client.untag_queue(QueueUrl=pair.url, TagKeys=[PAUSED_TAG])
    watched.wait_for(
        lambda: len(runs(record)) == 4 and all(r["done"] for r in runs(record).values())
    )
    watched.wait_for(lambda: queue_counts(sqs_client, pair.url) == (0, 0))
    assert len(watched.events(CONTINUED_EVENT)) == 1
    [resumed] = watched.events(CONSUMER_RESUMED_EVENT)
    assert resumed["consumer_pid"] != consumer
    assert set(started(record)) == {first, *waiting}
    assert all(run == {"start": 1, "done": 1} for run in runs(record).values())

    watched.process.send_signal(signal.SIGTERM)
    code, lines = watched.wait()
    assert code == 0
    assert [e["reason"] for e in lines if e["event"] == "worker_stopped"] == ["sigterm"]


def test_a_watcher_started_paused_starts_no_consumer_and_a_stop_ends_it_at_once(
    make_queue_pair: Any, sqs_client: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    sqs_client.tag_queue(QueueUrl=pair.url, Tags={PAUSED_TAG: "since=test"})
    watched = Watched(
        tmp_path, "0", "stop", AWS_ENDPOINT_URL=moto_endpoint, QUEUE_URL=pair.url
    )  # PAUSE_CHECK_SECONDS: the default 30 s
    watched.wait_for(lambda: bool(watched.events(PAUSED_EVENT)))
    time.sleep(1)
    watched.process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    code, lines = watched.wait()
    assert time.monotonic() - stopped_at < 1.0  # not the next read of the tag 30 s later
    assert code == 0 and not watched.out.exists()  # the consumer never ran
    assert [e["event"] for e in lines] == [PAUSED_EVENT, "worker_stopped"]
    assert lines[-1]["reason"] == "sigterm" and lines[-1]["exit_code"] is None


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


def test_a_watcher_whose_role_cannot_read_tags_never_pauses_and_says_so_once(
    denying_endpoint: str, tmp_path: Path
) -> None:
    watched = Watched(
        tmp_path, "0", "stop", AWS_ENDPOINT_URL=denying_endpoint, PAUSE_CHECK_SECONDS="0.2"
    )
    watched.wait_for(lambda: len(DenyingSQS.calls) >= 5)  # a second of refused reads
    assert set(DenyingSQS.calls) == {"AmazonSQS.ListQueueTags"}
    watched.process.send_signal(signal.SIGTERM)
    code, lines = watched.wait()
    assert code == 0 and watched.out.read_text() == "term"  # the consumer ran all along
    [error] = [e for e in lines if e["event"] == "pause_check_error"]
    assert "AccessDenied" in error["error"] and error["level"] == "warning"
    assert not [e for e in lines if e["event"] in (PAUSED_EVENT, CONSUMER_PAUSED_EVENT)]
    assert [e["reason"] for e in lines if e["event"] == "worker_stopped"] == ["sigterm"]
