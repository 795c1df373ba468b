"""The real fleet for integration tests: `python -m worker.supervise` (supervisord + N workers)
from the project's venv, against moto's server, with its JSON log lines collected."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORKER_IMAGE = ROOT / "worker_image"
RECORDED = "tests.unit.worker.recording_handlers:recorded_job"
PROD_PROCESSES: int = json.loads((ROOT / "cdk.json").read_text())["context"]["environments"][
    "prod"
]["worker"]["processes"]
"""The processes per task of the shipped prod environment: the shape fault tests run at."""

PROD = {
    "WORKER_PROCESSES": PROD_PROCESSES,
    "VISIBILITY_TIMEOUT_SECONDS": 120,
    "HEARTBEAT_INTERVAL_SECONDS": 30,
    "RECEIVE_WAIT_SECONDS": 20,
    "RETRY_BACKOFF_BASE_SECONDS": 10,
    "RETRY_BACKOFF_MAX_SECONDS": 600,
    "WORKER_STOP_GRACE_SECONDS": 100,
    "SUPERVISOR_STOPWAITSECS": 110,
    "JOB_TIMEOUT_SECONDS": 900,
    "MAX_JOBS_PER_PROCESS": 200,
    "MAX_MEMORY_MIB_PER_PROCESS": 200,
}
"""The prod environment's worker settings (cdk.json, the contract's defaults)."""

FAST = {
    "RECEIVE_WAIT_SECONDS": "1",
    "VISIBILITY_TIMEOUT_SECONDS": "2",
    "HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "RETRY_BACKOFF_BASE_SECONDS": "0",
    "RETRY_BACKOFF_MAX_SECONDS": "2",
    "WORKER_STOP_GRACE_SECONDS": "5",
    "SUPERVISOR_STOPWAITSECS": "30",  # leaves the stop path its 22 s after the 5-s grace
    "JOB_TIMEOUT_SECONDS": "30",
    "MAX_JOBS_PER_PROCESS": "0",
    "MAX_MEMORY_MIB_PER_PROCESS": "0",
    "WORKER_HANDLER": RECORDED,
}


class Fleet:
    """One supervisord fleet; `events()` parses its stdout, `stop()` SIGTERMs it."""

    def __init__(
        self, workdir: Path, endpoint: str, env: dict[str, str], command: list[str] | None = None
    ) -> None:
        self.command = command or [sys.executable, "-m", "worker.supervise"]
        self.workdir = workdir
        self.log_path = workdir / "fleet.log"
        self.env = {
            **os.environ,
            **FAST,
            "AWS_ENDPOINT_URL": endpoint,
            "WORKER_RUN_DIR": str(workdir / "run"),
            "WORKER_TASK_DIR": str(workdir / "task"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(WORKER_IMAGE)]),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._collector: threading.Thread | None = None
        self._events: list[dict[str, Any]] = []

    def start(self) -> Fleet:
        # The log exists from the start: a test may read it before the collector has opened it.
        self.log_path.touch()
        # A pipe, as in a container: supervisord reopens /dev/stdout, which on a regular file
        # would start writing at offset 0 again.
        self.process = subprocess.Popen(
            self.command,
            cwd=WORKER_IMAGE,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one group: cleanup can kill everything it started
        )
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()
        return self

    def _collect(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with open(self.log_path, "ab") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                if line.startswith(b"{"):
                    with contextlib.suppress(ValueError):
                        self._events.append(json.loads(line))

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in list(self._events) if name is None or e.get("event") == name]

    def jobs(self, outcome: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events("job") if outcome is None or e["outcome"] == outcome]

    def worker_pids(self) -> set[int]:
        return {e["pid"] for e in self.events("worker_started")}

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; fleet log:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM the entrypoint (as ECS does) and wait; returns its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the entrypoint to exit; returns its exit status once every line it wrote
        has been collected (the log and `events()` are complete)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()
            if self._collector is not None:
                self._collector.join(10)  # the pipe's end: the last lines are read

    def kill(self) -> None:
        """Kill whatever is left of the fleet's process group."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)


def send_jobs(sqs: Any, queue_url: str, record: Path, count: int = 1, **job: Any) -> list[str]:
    """Send `count` recorded jobs (see tests/unit/worker/recording_handlers.py); their ids."""
    body = json.dumps({"record": str(record), **job})
    return [
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"] for _ in range(count)
    ]


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Visible + in-flight + delayed messages."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return sum(
        int(attributes[name])
        for name in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )
