"""Two real OS processes get the same message at the same moment: the job body runs once.

Each process builds its own guard against moto's server; a barrier releases both at once for
each key. The loser sees the key in progress (the winner still runs) or done; after a retry,
as the runtime would do later, it sees the key done and skips it. Runs are counted in a file.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
from worker.idempotency import IdempotencyGuard, JobInProgressElsewhere, idempotent

REGION = "ap-northeast-1"
KEYS = [f"message-{n}" for n in range(4)]
PROCESSES = 2


@dataclass(frozen=True)
class Ctx:
    message_id: str
    receive_count: int = 1


class OneRequestAtATime:
    """A WSGI app that serves one request at a time. DynamoDB applies a conditional write
    atomically; moto's threaded server checks the condition and writes without a lock, so two
    racers could both pass the check (seen once in a loaded full run: one body ran twice)."""

    def __init__(self, app: Any) -> None:
        self.app, self.lock = app, threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


@pytest.fixture(scope="module")
def atomic_endpoint() -> Iterator[str]:
    """moto's server on loopback, its requests serialized as DynamoDB serializes an item's."""
    app = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def racer(endpoint: str, table: str, runs_file: str, barrier: Any, results: Any) -> None:
    """One worker process: handle every key right after the barrier, then retry the losses."""
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)

    ran: list[str] = []

    @idempotent(guard=IdempotencyGuard(table, client=client, lock_seconds=60))
    def handler(body: str, ctx: Ctx) -> None:
        ran.append(ctx.message_id)
        with open(runs_file, "a") as runs:
            runs.write(f"{ctx.message_id}\n")
        time.sleep(0.2)  # the job takes a while: a racer arriving now finds it in progress

    def attempt(key: str, receive_count: int) -> str:
        try:
            handler("{}", Ctx(key, receive_count))
        except JobInProgressElsewhere:
            return "in_progress"
        return "ran" if ran and ran[-1] == key else "duplicate"

    first = {}
    for key in KEYS:
        barrier.wait(timeout=60)
        first[key] = attempt(key, 1)
    barrier.wait(timeout=60)  # every first attempt is over: retries now find the keys done
    retried = {key: attempt(key, 2) for key, outcome in first.items() if outcome == "in_progress"}
    results.put((first, retried))


def test_two_processes_run_a_duplicated_message_once(atomic_endpoint: str, tmp_path: Path) -> None:
    table = f"race-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb", region_name=REGION, endpoint_url=atomic_endpoint).create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    runs_file = tmp_path / "runs.txt"
    runs_file.touch()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(
            target=racer, args=(atomic_endpoint, table, str(runs_file), barrier, results)
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    assert sorted(runs_file.read_text().splitlines()) == sorted(KEYS)  # each body ran once
    outcomes = [results.get(timeout=5) for _ in processes]
    for key in KEYS:
        firsts = sorted(first[key] for first, _retried in outcomes)
        assert firsts in (["in_progress", "ran"], ["duplicate", "ran"]), (key, firsts)
        assert all(retried.get(key, "duplicate") == "duplicate" for _first, retried in outcomes)
