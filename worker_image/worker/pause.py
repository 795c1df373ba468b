"""The pause flag as a worker reads it: contract.PAUSED_TAG on each work queue (ListQueueTags).

`queue-worker pause` tags the queues, `continue` removes the tag. The loop (worker.loop) reads
the flag before a receive, the consumer's watcher (worker.consumer) on a thread of its own;
both read it at most every PAUSE_CHECK_SECONDS and log `worker_paused` / `worker_continued`
(field ``queue``) when a queue's tag appears or goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from worker import contract
from worker.logs import EventLog
from worker.settings import WorkQueue


class PauseFlag:
    """The pause tags of `queues`, read at most every `check_seconds` (PAUSE_CHECK_SECONDS,
    30 s by default). A failed read keeps its queue's last answer: a role without
    sqs:ListQueueTags never pauses, and a queue's first failure is logged
    (`pause_check_error`). `on_answer` runs after each answer from SQS (default: nothing)."""

    def __init__(
        self,
        sqs: Any,
        queues: Sequence[WorkQueue],
        check_seconds: float,
        log: EventLog,
        on_answer: Callable[[], None] | None = None,
    ) -> None:
        self.sqs = sqs
        self.queues = tuple(queues)
        self.check_seconds = check_seconds
        self.log = log
        self.on_answer = on_answer
        self.paused_queues: set[str] = set()  # the names of those tagged, as last read
        self._read_at: float | None = None  # time.monotonic() of the last read
        self._unread: set[str] = set()  # the queues whose last read failed

    @property
    def paused(self) -> bool:
        """Whether every queue carries the pause tag, as last read."""
        return len(self.paused_queues) == len(self.queues)

    def read(self) -> bool:
        """Whether every queue carries the tag: the tags read when due, else the last answer."""
        if self._read_at is None or self.until_next_read() <= 0:
            self._read_at = time.monotonic()
            for queue in self.queues:
                self._read_tag(queue)
        return self.paused

    def until_next_read(self) -> float:
        """Seconds until the tags are read again."""
        last = self._read_at if self._read_at is not None else -float("inf")
        return max(0.0, last + self.check_seconds - time.monotonic())

    def _read_tag(self, queue: WorkQueue) -> None:
        """Read one queue's pause tag into `paused_queues`; log when it appears or goes."""
        try:
            response = self.sqs.list_queue_tags(QueueUrl=queue.url)
        except Exception as error:
            if queue.name not in self._unread:
                self._unread.add(queue.name)
                self.log.warning("pause_check_error", error=repr(error), queue=queue.name)
            return
        self._unread.discard(queue.name)
        if self.on_answer is not None:
            self.on_answer()
        tags = response.get("Tags", {})
        paused = contract.PAUSED_TAG in tags
        if paused != (queue.name in self.paused_queues):
            if paused:
                self.paused_queues.add(queue.name)
            else:
                self.paused_queues.discard(queue.name)
            event = contract.PAUSED_EVENT if paused else contract.CONTINUED_EVENT
            self.log.info(event, tag=tags.get(contract.PAUSED_TAG, ""), queue=queue.name)
