"""Keeps every message a process holds invisible while it holds it.

A background thread wakes every HEARTBEAT_INTERVAL_SECONDS and extends, by
VISIBILITY_TIMEOUT_SECONDS, each held message (running, waiting its turn in the batch, or done
but not yet deleted) that would otherwise become visible before the beat after next. A long job
therefore never reappears while it runs, a short one costs no extension request at all, and the
message of a crashed process comes back within VISIBILITY_TIMEOUT_SECONDS. SQS caps a message's
total invisibility at 12 h after it was received: the last extension stops at that cap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from worker.logs import EventLog
from worker.settings import SQS_MAX_VISIBILITY_SECONDS

# Stop extending a little before SQS's 12 h cap so the request itself is never refused.
_CAP_MARGIN_SECONDS = 30

T = TypeVar("T")


@dataclass(frozen=True)
class Held:
    """A received message: what the loop needs to run, extend, delete or hand it back."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    attributes: dict[str, Any]
    received_at: float  # time.monotonic() at receive


def chunks(items: Sequence[T], size: int = 10) -> list[list[T]]:
    """SQS batch calls take at most 10 entries."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class Heartbeat:
    """The set of held messages and the thread that extends them.

    `release()` takes the same lock the extension requests run under, so once it returns no
    extension can overwrite the visibility the caller sets next (a backoff, or 0).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        visibility_seconds: int,
        interval_seconds: float,
        log: EventLog,
        on_beat: Callable[[], None] = lambda: None,
    ) -> None:
        self.sqs = sqs
        self.on_beat = on_beat  # before every beat (the process's liveness mark)
        self.queue_url = queue_url
        self.visibility_seconds = visibility_seconds
        self.interval_seconds = interval_seconds
        self.log = log
        self._held: dict[str, Held] = {}
        # time.monotonic() at which each held message becomes visible unless extended
        self._visible_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def hold(self, messages: list[Held]) -> None:
        with self._lock:
            for message in messages:
                self._held[message.message_id] = message
                self._visible_at[message.message_id] = message.received_at + self.visibility_seconds

    def release(self, messages: list[Held]) -> None:
        with self._lock:
            for message in messages:
                self._held.pop(message.message_id, None)
                self._visible_at.pop(message.message_id, None)

    def held(self) -> list[Held]:
        with self._lock:
            return list(self._held.values())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.on_beat()
            self.beat()

    def beat(self) -> None:
        """Extend the held messages that would become visible before the beat after next
        (ChangeMessageVisibilityBatch, 10 at a time)."""
        with self._lock:
            now = time.monotonic()
            entries = []
            for message in self._held.values():
                if self._visible_at[message.message_id] - now > 2 * self.interval_seconds:
                    continue
                left = (
                    SQS_MAX_VISIBILITY_SECONDS - (now - message.received_at) - _CAP_MARGIN_SECONDS
                )
                timeout = int(min(self.visibility_seconds, left))
                if timeout > 0:
                    entries.append((message, timeout))
            for batch in chunks(entries):
                try:
                    response = self.sqs.change_message_visibility_batch(
                        QueueUrl=self.queue_url,
                        Entries=[
                            {
                                "Id": str(i),
                                "ReceiptHandle": m.receipt_handle,
                                "VisibilityTimeout": t,
                            }
                            for i, (m, t) in enumerate(batch)
                        ],
                    )
                except Exception as error:  # the next beat retries; the loop must not die
                    self.log.warning("heartbeat_error", error=repr(error))
                    continue
                failed_ids = set()
                for failed in response.get("Failed", []):
                    failed_ids.add(int(failed["Id"]))
                    message = batch[int(failed["Id"])][0]
                    self.log.warning(
                        "heartbeat_error", message_id=message.message_id, error=failed.get("Code")
                    )
                for i, (message, timeout) in enumerate(batch):
                    if i not in failed_ids:
                        self._visible_at[message.message_id] = now + timeout
