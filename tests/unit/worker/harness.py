"""Test helpers for the runtime: a Worker with a counting SQS client, run in a thread."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from botocore.exceptions import EndpointConnectionError
from worker.loop import Worker

from tests.unit.worker.recording_handlers import runs


class CountingClient:
    """Wraps a boto3 client and counts the calls per operation; `failing[op] = n` makes the
    next n calls of `op` raise as a refused connection does (-1: every call)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self.failing: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            left = self.failing.get(name, 0)
            if left:
                self.failing[name] = left - 1 if left > 0 else left
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
            return method(*args, **kwargs)

        return call


@dataclass
class Harness:
    """A Worker, its log and its SQS call counts; `start()` runs it in a thread."""

    worker: Worker
    sqs: CountingClient
    stream: io.StringIO
    record: Path
    thread: threading.Thread | None = None
    result: list[str] = field(default_factory=list)

    def send(
        self, body: str | None = None, *, queue: int = 0, group: str | None = None, **job: Any
    ) -> str:
        """Send a raw body, or a recorded job {"record": ..., **job}, to the worker's queue
        number `queue` (0: the first), in message group `group` (FIFO); returns the message
        id."""
        text = body if body is not None else json.dumps({"record": str(self.record), **job})
        url = self.worker.queues[queue].url
        fifo = {} if group is None else {"MessageGroupId": group}
        response = self.sqs.client.send_message(QueueUrl=url, MessageBody=text, **fifo)
        return str(response["MessageId"])

    def runs(self) -> dict[str, dict[str, int]]:
        return runs(self.record)

    def start(self) -> None:
        self.thread = threading.Thread(target=lambda: self.result.append(self.worker.run()))
        self.thread.start()

    def stop(self, timeout: float = 30) -> str:
        self.worker.request_stop()
        return self.join(timeout)

    def join(self, timeout: float = 30) -> str:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not stop"
        return self.result[0]

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [e for e in lines if name is None or e["event"] == name]

    def jobs(self, outcome: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events("job") if outcome is None or e["outcome"] == outcome]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; log:\n{self.stream.getvalue()}"
            assert self.thread is None or self.thread.is_alive() or condition()
            time.sleep(0.05)


class FakeAgent:
    """The ECS agent's task-protection endpoint on loopback; records every PUT body when it
    takes effect, after `stall[state]` seconds (a stalled agent)."""

    def __init__(self, status: int = 200, stall: dict[bool, float] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.stall = stall or {}
        self.arrived: list[bool] = []  # each call's state when it reaches the agent
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                agent.arrived.append(body["ProtectionEnabled"])
                time.sleep(agent.stall.get(body["ProtectionEnabled"], 0.0))
                agent.bodies.append(body)
                agent.paths.append(self.path)
                reply = json.dumps({"protection": {"ProtectionEnabled": True}}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/v1/task"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def enabled(self) -> list[bool]:
        return [b["ProtectionEnabled"] for b in self.bodies]
