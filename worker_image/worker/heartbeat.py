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
from worker.settings import SQS_MAX_VISIBILITY_SECONDS, WorkQueue

# Stop extending a little before SQS's 12 h cap so the request itself is never refused.
_CAP_MARGIN_SECONDS = 30

T = TypeVar("T")


@dataclass(frozen=True)
class Held:
    """A received message: what the loop needs to run, extend, delete or hand it back; every
    call about it goes to its own queue. A FIFO queue's message has its group, deduplication id
    and sequence number (None on a standard queue)."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    attributes: dict[str, Any]
    received_at: float  # time.monotonic() at receive
    queue: WorkQueue
    group_id: str | None = None
    deduplication_id: str | None = None
    sequence_number: str | None = None


def chunks(items: Sequence[T], size: int = 10) -> list[list[T]]:
    """SQS batch calls take at most 10 entries."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def queue_batches(
    items: Sequence[T], queue: Callable[[T], WorkQueue]
) -> list[tuple[WorkQueue, list[T]]]:
    """`items` as SQS batch calls take them: one queue a call (`queue(item)`, in the order the
    queues first appear), at most 10 entries."""
    by_queue: dict[WorkQueue, list[T]] = {}
    for item in items:
        by_queue.setdefault(queue(item), []).append(item)
    return [(q, batch) for q, members in by_queue.items() for batch in chunks(members)]


class Heartbeat:
    """The set of held messages and the thread that extends them.

    The lock guards only the bookkeeping, never a network call: a beat takes a snapshot of the
    messages to extend under the lock, calls SQS outside it and applies the results under it
    again, so `hold`, `held` and `lease_lost` never wait for SQS. `release()` keeps its promise
    all the same: it waits (on a condition, not the lock) for a beat in flight that extends one
    of the released messages, so once it returns no extension can overwrite the visibility the
    caller sets next (a backoff, or 0).

    Lease lost: when a message's extension failed and the next beat would come too late (less
    than half an interval before it turns visible), or when its visibility is less than a
    quarter of an interval from running out whatever the reason (a beat stuck in a slow call),
    `lease_lost()` says so: the loop stops its job, with everything it started, before SQS can
    deliver it to anyone else.
    """

    def __init__(
        self,
        sqs: Any,
        visibility_seconds: int,
        interval_seconds: float,
        log: EventLog,
        on_beat: Callable[[], None] = lambda: None,
    ) -> None:
        self.sqs = sqs
        self.on_beat = on_beat  # before every beat (the process's liveness mark)
        self.visibility_seconds = visibility_seconds
        self.interval_seconds = interval_seconds
        self.log = log
        self._held: dict[str, Held] = {}
        # time.monotonic() at which each held message becomes visible unless extended
        self._visible_at: dict[str, float] = {}
        self._lost: set[str] = set()  # extension failed, the next beat would be too late
        self._in_flight: set[str] = set()  # being extended by the beat now
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        # Set by `stopping` (SIGTERM): from `_quiet_from` on, a beat extends only the messages
        # whose visibility would run out before `_needed_until`.
        self._quiet_from = float("inf")
        self._needed_until = float("inf")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """End the beats; wait for a beat in flight (at most `timeout` seconds: the thread is
        a daemon, a stopping process does not wait for a slow call past its budget)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def stopping(self, sqs: Any, quiet_from: float, needed_until: float) -> None:
        """The process is stopping: later beats use `sqs` (the stop path's bounded client), and
        from `quiet_from` (time.monotonic()) on a beat starts only for the messages that would
        turn visible before `needed_until` (when their job is surely stopped), so no extension
        is in flight when the stop hands the messages back. Called from a signal handler:
        plain assignments, no lock."""
        self.sqs = sqs
        self._needed_until = needed_until
        self._quiet_from = quiet_from

    def hold(self, messages: list[Held]) -> None:
        with self._lock:
            for message in messages:
                self._held[message.message_id] = message
                self._visible_at[message.message_id] = message.received_at + self.visibility_seconds

    def release(self, messages: list[Held], wait_until: float | None = None) -> None:
        """Stop extending `messages`; returns once no extension of theirs is in flight, or at
        `wait_until` (time.monotonic()) at the latest: a stopping process does not wait past
        its budget (an extension landing after the hand-back delays it, it loses nothing)."""
        ids = {m.message_id for m in messages}
        with self._lock:
            for message_id in ids:
                self._held.pop(message_id, None)
                self._visible_at.pop(message_id, None)
                self._lost.discard(message_id)
            while ids & self._in_flight:
                if wait_until is None:
                    self._settled.wait()
                elif not self._settled.wait(max(0.0, wait_until - time.monotonic())):
                    break

    def held(self) -> list[Held]:
        with self._lock:
            return list(self._held.values())

    def lease_lost(self, message_id: str) -> bool:
        """True when `message_id` may turn visible before the heartbeat can extend it."""
        with self._lock:
            visible_at = self._visible_at.get(message_id)
            if visible_at is None:
                return False
            left = visible_at - time.monotonic()
            return message_id in self._lost or left < self.interval_seconds / 4

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.on_beat()
            self.beat()

    def beat(self) -> None:
        """Extend the held messages that would become visible before the beat after next
        (ChangeMessageVisibilityBatch on each message's queue, 10 at a time), with no lock held
        across the calls."""
        now = time.monotonic()
        quiet = now >= self._quiet_from
        with self._lock:
            entries = []
            for message in self._held.values():
                visible_at = self._visible_at[message.message_id]
                if visible_at - now > 2 * self.interval_seconds:
                    continue
                if quiet and visible_at - self.interval_seconds / 2 > self._needed_until:
                    continue  # lasts until its job is stopped: handed back, not extended
                left = (
                    SQS_MAX_VISIBILITY_SECONDS - (now - message.received_at) - _CAP_MARGIN_SECONDS
                )
                timeout = int(min(self.visibility_seconds, left))
                if timeout > 0:
                    entries.append((message, timeout))
            self._in_flight = {m.message_id for m, _ in entries}
        try:
            for queue, batch in queue_batches(entries, lambda entry: entry[0].queue):
                failed = self._extend(queue, batch)
                with self._lock:
                    for i, (message, timeout) in enumerate(batch):
                        self._settle(message.message_id, now, timeout, i in failed)
        finally:
            with self._lock:
                self._in_flight = set()
                self._settled.notify_all()

    def _extend(self, queue: WorkQueue, batch: list[tuple[Held, int]]) -> set[int]:
        """One ChangeMessageVisibilityBatch; the indexes of `batch` that were not extended."""
        try:
            response = self.sqs.change_message_visibility_batch(
                QueueUrl=queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": t}
                    for i, (m, t) in enumerate(batch)
                ],
            )
        except Exception as error:  # the next beat retries; the loop must not die
            self.log.warning(
                "heartbeat_error", error=repr(error), messages=len(batch), queue=queue.name
            )
            return set(range(len(batch)))
        failed = set()
        for entry in response.get("Failed", []):
            failed.add(int(entry["Id"]))
            message = batch[int(entry["Id"])][0]
            self.log.warning(
                "heartbeat_error",
                message_id=message.message_id,
                error=entry.get("Code"),
                queue=queue.name,
            )
        return failed

    def _settle(self, message_id: str, sent_at: float, timeout: int, failed: bool) -> None:
        """Apply one extension's result (under the lock) unless the message was released."""
        visible_at = self._visible_at.get(message_id)
        if visible_at is None:
            return
        if not failed:
            self._visible_at[message_id] = sent_at + timeout
            self._lost.discard(message_id)
        elif visible_at - time.monotonic() < 1.5 * self.interval_seconds:
            self._lost.add(message_id)  # the next beat would come less than 1/2 beat before
