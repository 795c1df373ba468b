"""Fixtures of the runtime's unit tests: a Worker on a fresh moto queue pair."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from worker.app import make_runner
from worker.contract import QUEUES_VARIABLE
from worker.handlers import CallableRunner, Runner
from worker.logs import EventLog
from worker.loop import Worker
from worker.settings import Settings

from tests.unit.worker.harness import CountingClient, Harness

RECORDED = "tests.unit.worker.recording_handlers:recorded_job"


FAST = {
    "RECEIVE_WAIT_SECONDS": "1",
    "VISIBILITY_TIMEOUT_SECONDS": "2",
    "HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "RETRY_BACKOFF_BASE_SECONDS": "1",
    "RETRY_BACKOFF_MAX_SECONDS": "4",
    "WORKER_STOP_GRACE_SECONDS": "5",
    "JOB_TIMEOUT_SECONDS": "30",
    "MAX_JOBS_PER_PROCESS": "0",
    "MAX_MEMORY_MIB_PER_PROCESS": "0",
}


@pytest.fixture
def make_worker(
    sqs_client: Any, make_queue_pair: Callable[..., Any], tmp_path: Path
) -> Iterator[Callable[..., Harness]]:
    """Factory: a Worker on a fresh queue pair (settings: FAST + overrides), cleaned up after;
    with `queues` (names, highest priority first), on a fresh pair each, in WORKER_QUEUES;
    `fifo`: FIFO pairs (make_queue_pair)."""
    harnesses: list[Harness] = []

    def make(
        max_receive_count: int = 3, queues: tuple[str, ...] = (), fifo: bool = False, **env: str
    ) -> Harness:
        pairs = [
            make_queue_pair(max_receive_count=max_receive_count, visibility_timeout=2, fifo=fifo)
            for _ in queues or ("",)
        ]
        where = {"QUEUE_URL": pairs[0].url, "DEAD_LETTER_QUEUE_URL": pairs[0].dlq_url}
        if queues:
            entries = [
                {"name": name, "url": pair.url, "dead_letter_queue_url": pair.dlq_url}
                for name, pair in zip(queues, pairs, strict=True)
            ]
            where = {QUEUES_VARIABLE: json.dumps(entries)}
        settings = Settings.from_env({**where, "WORKER_HANDLER": RECORDED, **FAST, **env})
        stream = io.StringIO()
        log = EventLog("worker_test", stream)
        runner: Runner = CallableRunner(settings.handler)  # started by its first job
        if settings.handler_mode == "command":
            runner = make_runner(settings, log)  # as the process builds it (checked)
        sqs = CountingClient(sqs_client)
        worker = Worker(settings, sqs, runner, log)
        harness = Harness(worker, sqs, stream, tmp_path / f"record-{len(harnesses)}")
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        if harness.thread is not None and harness.thread.is_alive():
            harness.stop()
        harness.worker.runner.close()
