"""Issue 17, item 3: a stop hands every message back even when SQS is slow, and the jobs of
workers killed while the fleet stops die with the fleet (prod shape: 8 processes).

SQS is slowed by a small HTTP proxy on loopback in front of moto's server: switched to slow
mode when the fleet gets SIGTERM, it holds every request 12 s before passing it on."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from worker import contract
from worker.supervise import group_members

from tests.integration.fleet import Fleet
from tests.integration.test_faults_injection import PROD, PROD_PROCESSES
from tests.sqs_helpers import queue_counts
from tests.unit.worker.recording_handlers import runs

MakeFleet = Callable[..., Fleet]
SLOW_SECONDS = 12.0
GRACE_SECONDS = 35  # WORKER_STOP_GRACE_SECONDS of the slow-SQS stop (prod: 100)
STOP_WAIT_SECONDS = 40  # SUPERVISOR_STOPWAITSECS of the slow-SQS stop (prod: 110)


class SlowProxy:
    """Passes every request on to `target` (moto's server), after `delay` seconds."""

    def __init__(self, target: str) -> None:
        self.delay = 0.0
        self.requests = 0
        parts = urlsplit(target)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy.requests += 1
                time.sleep(proxy.delay)
                upstream = http.client.HTTPConnection(host, port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    upstream.request("POST", self.path, body=body, headers=headers)
                    reply = upstream.getresponse()
                    data = reply.read()
                finally:
                    upstream.close()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.getheaders():
                        if name.lower() not in ("content-length", "connection", "server", "date"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up (an abandoned long poll)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def compound_job(record: Path) -> str:
    """A compound command (`sh -c 'a; b'`): the job's work runs in a child shell that has no
    parent-death signal. Body: the seconds it sleeps. Records `start` (the job's process group:
    the outer shell's pid) and `done`, as `runs()` reads them."""
    work = f'sleep "$d"; echo "$WORKER_MESSAGE_ID done $$" >> {record}'
    return (
        f'd=$(cat); echo "$WORKER_MESSAGE_ID start $$" >> {record}; '
        f'd="$d" WORKER_MESSAGE_ID="$WORKER_MESSAGE_ID" sh -c \'{work}\''
    )


def send(sqs: Any, url: str, seconds: float, count: int) -> list[str]:
    return [
        sqs.send_message(QueueUrl=url, MessageBody=f"{seconds}\n")["MessageId"]
        for _ in range(count)
    ]


def test_a_stop_hands_every_message_back_when_sqs_takes_12_s_a_call(
    make_fleet: MakeFleet,
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    """8 processes at the prod settings, but the grace and the stop wait scaled down (35 s, 40 s
    instead of 100 s, 110 s) to keep the test near half a minute; SQS answers every call 12 s
    late from the SIGTERM on. As at prod, the stop wait bounds the running jobs (each stopped
    at 40 - 22 = 18 s, where prod's stop at 110 - 22 = 88 s, before its grace ends) and leaves
    the hand-back the same 22 s whatever the values, so the scale-down keeps the point: a 12-s
    call fits it, while a hand-back begun at the grace's end (35 s) would end past the 40-s
    stop wait. 24 warm-up jobs teach the processes a short mean duration, so the 30
    long jobs (10 min) that follow are received in batches: a process runs the first of its
    batch and holds the rest unstarted. The stop must hand every one of them back (visible
    at once, not after the 120-s visibility) before supervisord's stop wait kills anyone,
    and run none twice.
    Before: the hand-back began at the grace's end and its calls (up to 3 attempts of 30 s)
    outlasted the stop wait: workers SIGKILLed, messages left in flight."""
    proxy = SlowProxy(moto_endpoint)
    try:
        pair = make_queue_pair(max_receive_count=5, visibility_timeout=120)
        record = tmp_path / "record"
        fleet = make_fleet(
            endpoint=proxy.endpoint,
            QUEUE_URL=pair.url,
            DEAD_LETTER_QUEUE_URL=pair.dlq_url,
            WORKER_HANDLER_MODE="command",
            WORKER_HANDLER=compound_job(record),
            **{
                **PROD,
                "WORKER_STOP_GRACE_SECONDS": GRACE_SECONDS,
                "SUPERVISOR_STOPWAITSECS": STOP_WAIT_SECONDS,
            },
        )
        warm = send(sqs_client, pair.url, 0, 3 * PROD_PROCESSES)
        fleet.wait_for(lambda: len(fleet.jobs("done")) == 3 * PROD_PROCESSES, timeout=60)
        long = [
            sqs_client.send_message_batch(
                QueueUrl=pair.url,
                Entries=[{"Id": str(n), "MessageBody": "600\n"} for n in range(10)],
            )["Successful"]
            for _ in range(3)
        ]
        long_ids = [entry["MessageId"] for batch in long for entry in batch]

        def settled() -> bool:  # every message taken, or every process in a long job
            started = len([i for i in long_ids if i in runs(record)])
            return queue_counts(sqs_client, pair.url)[0] == 0 or started == PROD_PROCESSES

        fleet.wait_for(settled, timeout=30)
        time.sleep(1)  # each holder has started the first long job of its batch
        running = [i for i in long_ids if i in runs(record)]
        held = queue_counts(sqs_client, pair.url)[1]
        assert held > len(running)  # some are held unstarted behind a running job
        proxy.delay = SLOW_SECONDS
        stopped_at = time.monotonic()
        assert fleet.stop(timeout=90) == 0
        took = time.monotonic() - stopped_at
        # Every message is visible again at once: none waits out its 120-s visibility.
        assert queue_counts(sqs_client, pair.url) == (30, 0)
    finally:
        proxy.close()
    assert took < STOP_WAIT_SECONDS, took  # within the stop wait: no worker was killed
    stops = fleet.events("worker_stopped")
    assert sorted(e["reason"] for e in stops) == ["sigterm"] * PROD_PROCESSES
    handed_back = {j["message_id"] for j in fleet.jobs(contract.HANDED_BACK)}
    assert handed_back == set(running)  # the running ones were stopped and handed back
    assert fleet.events("visibility_error") == []
    assert {i: r["done"] for i, r in runs(record).items()} == {
        **dict.fromkeys(warm, 1),
        **dict.fromkeys(running, 0),
    }
    assert all(r["start"] == 1 for r in runs(record).values())


def test_jobs_of_workers_killed_while_the_fleet_stops_die_with_the_fleet(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """8 compound command jobs of 6 s at the prod settings; the fleet gets SIGTERM and then
    every worker is killed with -9 (as supervisord's stop wait does to a worker that overruns
    it). supervisord starts no replacement while it stops, so no successor kills the jobs: the
    entrypoint must, when supervisord has exited. Before: each job's child shell (no
    parent-death signal) ran on and recorded `done` after the fleet was gone."""
    pair = make_queue_pair(max_receive_count=5, visibility_timeout=120)
    record = tmp_path / "record"
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER=compound_job(record),
        **PROD,
    )
    fleet.wait_for(lambda: len(fleet.worker_pids()) == PROD_PROCESSES, timeout=60)
    ids = send(sqs_client, pair.url, 6, PROD_PROCESSES)
    fleet.wait_for(lambda: len(runs(record)) == PROD_PROCESSES, timeout=30)
    groups = [int(line.split()[2]) for line in record.read_text().splitlines()]
    started = time.monotonic()
    assert fleet.process is not None
    fleet.process.send_signal(signal.SIGTERM)
    time.sleep(1)
    for pid in fleet.worker_pids():
        os.kill(pid, signal.SIGKILL)
    assert fleet.wait(timeout=30) == 0
    assert [g for g in groups if any(s != "Z" for _, s in group_members(g))] == []
    time.sleep(max(0.0, started + 8 - time.monotonic()))  # past the jobs' own end
    assert {i: r["done"] for i, r in runs(record).items()} == dict.fromkeys(ids, 0)
    killed = fleet.events(contract.JOB_ORPHAN_KILLED_EVENT)
    assert sorted(e["pgid"] for e in killed) == sorted(groups)
