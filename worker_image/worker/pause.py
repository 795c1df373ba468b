"""The pause flag as a worker reads it: contract.PAUSED_TAG on each work queue (ListQueueTags).

`queue-worker pause` tags the queues, `continue` removes the tag. The loop (worker.loop) reads
the flag before a receive. In consumer mode one reader a task does (PauseReader, on a thread of
the fleet's watch, worker.watch) and leaves the answer as a file for the consumers' watchers
(worker.supervise.PAUSED_MARKER, obeyed by worker.consumer), which load no boto3. Both read at
most every PAUSE_CHECK_SECONDS and log `worker_paused` / `worker_continued` (field ``queue``)
when a queue's tag appears or goes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from worker import contract
from worker.clients import bounded_sqs_client
from worker.logs import EventLog
from worker.settings import Settings, WorkQueue
from worker.supervise import mark_fleet_paused

PAUSE_CONNECT_SECONDS = 2
PAUSE_READ_SECONDS = 5
"""The pause reader's SQS calls: one try, within these timeouts (a failed read is tried again
PAUSE_CHECK_SECONDS later)."""


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


class PauseReader:
    """Consumer mode: the task's one reader of the pause tags, on a thread of the fleet's watch.
    It removes a PAUSED_MARKER left in `run_dir` at its start, then every PAUSE_CHECK_SECONDS
    (30 s) reads the tags (PauseFlag) and leaves the marker while every queue is tagged,
    removes it otherwise. It never raises: a failure (a setting, the client, a read) is logged
    once (`pause_check_error`) and leaves the marker as it was (a role without
    sqs:ListQueueTags never pauses). Its log lines go to `log` (the watch's: stderr)."""

    def __init__(self, env: Mapping[str, str], run_dir: Path, log: EventLog) -> None:
        self.env = env
        self.run_dir = run_dir
        self.log = log
        self.flag: PauseFlag | None = None  # made at the first read
        self.stopped = threading.Event()  # set: the thread ends after its current read
        self._failed = False  # a failure outside the tag reads was logged

    def start(self) -> None:
        """Remove a stale marker, then read on a daemon thread until `stopped` is set."""
        mark_fleet_paused(self.run_dir, False)
        threading.Thread(target=self._run, name="pause-reader", daemon=True).start()

    def _run(self) -> None:
        due = 0.0
        while not self.stopped.wait(due):
            self.read()
            due = self.flag.until_next_read() if self.flag else contract.PAUSE_CHECK_SECONDS

    def read(self) -> None:
        """Read the tags (when due) into the marker; never raises."""
        try:
            if self.flag is None:
                settings = Settings.from_env(self.env)
                sqs = bounded_sqs_client(
                    settings.region, 1, PAUSE_CONNECT_SECONDS, PAUSE_READ_SECONDS
                )
                queues, check_seconds = settings.work_queues, settings.pause_check_seconds
                self.flag = PauseFlag(sqs, queues, check_seconds, self.log)
            mark_fleet_paused(self.run_dir, self.flag.read())
        except Exception as error:
            if not self._failed:
                self._failed = True
                self.log.warning("pause_check_error", error=repr(error))
