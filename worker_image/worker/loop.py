"""The consumer loop: one per process.

receive (the queues in priority order, `Worker._receive`; long poll, adaptive batch) -> run held
messages one at a time -> delete the done ones in batches of up to 10, across receives (flushed
when 10 are done, when the oldest has waited DELETE_FLUSH_SECONDS, when a receive comes back
short, and before stopping; while deletes wait, receives do not long-poll); a failed delete is
retried with backoff while the heartbeat still holds the message; failures become visible again
after a backoff; permanent failures go to the DLQ. A job whose visibility can no longer be
extended is stopped before it runs out (`lease_lost`). A receive never asks for more than the
loop will start before a recycle; between jobs the loop checks its recycle limits (job count,
memory) and exits cleanly. Before a receive it reads each work queue's pause tag
(contract.PAUSED_TAG, at most every PAUSE_CHECK_SECONDS): a tagged queue gives nothing (the
others go on); while every queue is tagged the loop deletes what it finished and only polls the
tags (`queue-worker pause` / `continue`). Every call about a message (delete, heartbeat,
backoff, hand-back, dead-letter copy) goes to the message's own queue and DLQ; its `job` line
names the queue (`queue`). On a FIFO queue (its URL ends with `.fifo`) a message that does not
finish holds its group back: the group's later messages in the batch are handed back unrun
(`Worker._work`; docs/contract.md, "FIFO queues"). On SIGTERM it stops receiving at once, lets
the running job finish within the grace period (else stops it and hands its message back), runs
the batch's unstarted messages while a job of the mean duration still fits in the grace, hands
back the rest and exits 0.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from worker import contract
from worker.handlers import (
    STOP_TERM_GRACE_SECONDS,
    JobContext,
    JobResult,
    Runner,
    rss_bytes,
    sqs_attributes,
)
from worker.health import mark_alive
from worker.heartbeat import Heartbeat, Held, queue_batches
from worker.logs import EventLog
from worker.pause import PauseFlag
from worker.protection import TaskProtection
from worker.settings import Settings, WorkQueue

MAX_BATCH = 10
# A done message waits at most this long for its batched delete (the heartbeat keeps it
# invisible meanwhile, so waiting never makes it run twice).
DELETE_FLUSH_SECONDS = 10.0
# supervisord counts a process that exits within `startsecs` (1 s) as a failed start:
# a recycle never exits earlier than this after the process started.
MIN_LIFETIME_SECONDS = 1.5
_RECEIVE_BACKOFF_MAX_SECONDS = 30.0
# A stopping process waits at most this long for its last task-protection call (its release:
# if it does not land, the protection expires by itself; SUPERVISOR_STOPWAITSECS leaves 10 s
# past the grace).
PROTECTION_EXIT_WAIT_SECONDS = 3.0
# The stop path (after SIGTERM): every SQS call goes through a client of its own with these
# bounds and no retry (worker.app.stop_sqs_client), so one call takes at most
# STOP_CALL_SECONDS however slow SQS is.
STOP_CONNECT_SECONDS = 2
STOP_READ_SECONDS = 15
STOP_CALL_SECONDS = STOP_CONNECT_SECONDS + STOP_READ_SECONDS
HANDBACK_RESERVE_SECONDS = (
    STOP_TERM_GRACE_SECONDS + STOP_CALL_SECONDS + PROTECTION_EXIT_WAIT_SECONDS
)
"""What a stop needs after its running job is stopped, within supervisord's stopwaitsecs: the
job's TERM grace (2 s), one round of SQS calls made in parallel (the hand-backs, the backoffs
and the deletes, 10 messages a call: 17 s) and the task-protection release (3 s): 22 s. A
job is stopped at min(WORKER_STOP_GRACE_SECONDS, SUPERVISOR_STOPWAITSECS - this), i.e. 88 s
after SIGTERM at the prod values (100 s, 110 s)."""
# A failed delete is retried after 1, 2, 4 ... s (at most this), while the heartbeat still
# holds the message; it is given up only when its lease is lost (SQS redelivers it then).
_DELETE_BACKOFF_MAX_SECONDS = 8.0


# What a dead-letter send came to (`Worker._dead_letter`).
_SENT, _FAILED, _TOO_LARGE = "sent", "failed", "too_large"
# Error codes of a send refused for its size (SQS: "Message must be shorter than N bytes").
_TOO_LARGE_CODES = frozenset({"InvalidParameterValue", "MessageTooLong"})


class StopRequested(BaseException):
    """Raised by the signal handler to abandon a long poll (botocore does not catch it)."""


class Worker:
    """One consumer loop. `run()` returns the stop reason: sigterm, recycle_jobs, recycle_memory."""

    def __init__(
        self,
        settings: Settings,
        sqs: Any,
        runner: Runner,
        log: EventLog,
        protection: TaskProtection | None = None,
        stop_sqs: Any = None,
    ) -> None:
        self.settings = settings
        self.sqs = sqs
        self.stop_sqs = stop_sqs or sqs  # the bounded client of the stop path
        self.runner = runner
        self.log = log
        self.protection = protection
        self.queues = settings.work_queues  # highest priority first
        self.heartbeat = Heartbeat(
            sqs,
            settings.visibility_timeout_seconds,
            settings.heartbeat_interval_seconds,
            log,
            on_beat=self._mark_alive,
        )
        self.jobs_run = 0
        self.durations: collections.deque[float] = collections.deque(maxlen=20)
        self.stop_requested_at: float | None = None
        self._receiving = False
        self._started_at = time.monotonic()
        self._receive_failures = 0
        self._done: list[Held] = []  # done, awaiting a batched delete
        self._first_done_at = 0.0  # time.monotonic() when the oldest of them was done
        self._delete_failures = 0  # consecutive failed delete attempts
        self._delete_retry_at = 0.0  # time.monotonic() before which no delete is retried
        self._job_growth_mib = 0.0  # the largest RSS growth one job caused so far
        self._job_fields: dict[str, Any] = {}  # what settling the job adds to its `job` line
        # While stopping: visibility changes (hand-backs 0, backoffs) made by `_finish_stop`.
        self._deferred: list[tuple[list[Held], int]] = []
        # A paused process proves itself alive by SQS's answers to its tag reads too.
        self.pause = PauseFlag(
            sqs, self.queues, settings.pause_check_seconds, log, on_answer=self._mark_alive
        )

    # -- signals -------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request_stop()
        if self._receiving:
            raise StopRequested

    def request_stop(self) -> None:
        """Stop receiving; the running job gets `job_stop_seconds` from now. Later SQS calls
        use the stop path's bounded client (the heartbeat's too). Runs in a signal handler:
        no lock is taken."""
        if self.stop_requested_at is None:
            now = time.monotonic()
            self.stop_requested_at = now
            job_stop_at = now + self.job_stop_seconds
            self.heartbeat.stopping(
                self.stop_sqs,
                quiet_from=job_stop_at - STOP_CALL_SECONDS,
                needed_until=job_stop_at + STOP_TERM_GRACE_SECONDS,
            )

    @property
    def job_stop_seconds(self) -> float:
        """How long after SIGTERM a running job may go on: WORKER_STOP_GRACE_SECONDS, less
        when supervisord's stop wait would not leave HANDBACK_RESERVE_SECONDS after it."""
        settings = self.settings
        budget = settings.stop_wait_seconds - HANDBACK_RESERVE_SECONDS
        return max(0.0, min(settings.stop_grace_seconds, budget))

    def _grace_spent(self) -> bool:
        return (
            self.stop_requested_at is not None
            and time.monotonic() - self.stop_requested_at >= self.job_stop_seconds
        )

    def _fits_in_grace(self) -> bool:
        """Whether the next job of a batch may start: always before SIGTERM; after it, while a
        job of the mean duration still ends within the grace. A received message that runs
        has spent its receive on work; one handed back unstarted would have spent it on none."""
        if self.stop_requested_at is None:
            return True
        left = self.job_stop_seconds - (time.monotonic() - self.stop_requested_at)
        return 0 < self.mean_duration() < left

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> str:
        """Consume until SIGTERM or a recycle limit; never raises for a job or SQS fault."""
        self.log.info(
            "worker_started",
            mode=self.settings.handler_mode,
            handler=self.settings.handler,
            queues=[queue.name for queue in self.queues],
        )
        self.heartbeat.start()
        reason = ""
        try:
            while not reason and self.stop_requested_at is None:
                reason = self._recycle_reason()
                if reason:
                    break
                self._flush_deletes()  # retries deletes that failed, when due
                if self._pause_flag():
                    self._flush_deletes(force=True)  # what it finished, deleted now
                    self._sleep_unless_stopped(self._until_next_pause_read())
                    continue
                batch = self._receive()
                if batch:
                    reason = self._work(batch)
        finally:
            if self.protection:
                self.protection.idle()  # sent on its own thread while SQS is answered
            if self.stop_requested_at is not None:
                self._finish_stop()
            else:
                self._flush_deletes(force=True, final=True)
                self.heartbeat.stop()
            self.runner.close()
            if self.protection:
                self.protection.wait(PROTECTION_EXIT_WAIT_SECONDS)  # its release sent
        reason = reason or "sigterm"
        if reason != "sigterm":
            time.sleep(max(0.0, self._started_at + MIN_LIFETIME_SECONDS - time.monotonic()))
        self.log.info("worker_stopped", reason=reason, jobs=self.jobs_run)
        return reason

    def _mark_alive(self) -> None:
        """Progress for the container health check (worker.health)."""
        mark_alive(self.settings.run_dir, self.settings.process_name)

    def mean_duration(self) -> float:
        """Mean of the last 20 job durations (0 before the first job)."""
        return sum(self.durations) / len(self.durations) if self.durations else 0.0

    def batch_size(self) -> int:
        """clamp(PREFETCH_SECONDS / recent mean duration, 1, 10); 1 until a duration is known.

        Never more than the loop will start before a recycle: the jobs left before
        MAX_JOBS_PER_PROCESS, and the jobs that fit under MAX_MEMORY_MIB_PER_PROCESS when each
        grows the process by as much as the greediest job so far. A received message the loop
        does not start would be handed back having spent one of its receives."""
        size = 1
        if self.durations:
            mean = self.mean_duration()
            size = int(self.settings.prefetch_seconds / mean) if mean > 0 else MAX_BATCH
        if self.settings.max_jobs_per_process:
            size = min(size, self.settings.max_jobs_per_process - self.jobs_run)
        memory = self.settings.max_memory_mib_per_process
        if memory and self._job_growth_mib > 0:
            size = min(size, int((memory - self.rss_mib()) / self._job_growth_mib))
        return max(1, min(size, MAX_BATCH))

    @property
    def paused(self) -> bool:
        """Whether every queue the loop consumes carries the pause tag, as last read."""
        return self.pause.paused

    @property
    def paused_queues(self) -> set[str]:
        """The names of the queues that carry the pause tag, as last read."""
        return self.pause.paused_queues

    def _pause_flag(self) -> bool:
        """Whether every work queue carries contract.PAUSED_TAG (worker.pause.PauseFlag: the
        tags read at most every PAUSE_CHECK_SECONDS, else the last answer). A tagged queue
        alone is skipped by `_receive`. A task role without sqs:ListQueueTags never pauses."""
        return self.pause.read()

    def _until_next_pause_read(self) -> float:
        """Seconds until the pause tag is read again."""
        return self.pause.until_next_read()

    def _receive(self) -> list[Held]:
        """The next batch, from the queues in priority order (WORKER_QUEUES; one queue: it).

        The first queue not paused that gives messages gives the whole batch: a process takes
        a message of a lower queue only when every queue above it had none a moment before,
        and never holds messages of two queues (no prefetch across queues). Every queue but the
        last is asked with a short poll (WaitTimeSeconds=0), the last with the long poll
        (RECEIVE_WAIT_SECONDS). The cost: an idle process makes one receive per queue each long
        poll, N times the requests of one queue (8 idle processes on 3 queues: about 3.1
        million a month, $1.24 at $0.40 a million, against 1 million for one queue). The limits
        of the order: a short poll asks only some of SQS's servers, so a higher queue holding
        few messages may answer empty (its message is taken at a later receive, after the
        batch a lower queue gave), and a message that lands in a higher queue while every
        process waits in the last queue's long poll waits for that poll to end (at most
        RECEIVE_WAIT_SECONDS). A failed receive ends the round (as Laravel's worker does), and its
        backoff grows with the rounds that failed in a row: the next round starts at the top."""
        asked = self.batch_size()
        open_queues = [q for q in self.queues if q.name not in self.paused_queues]
        batch: list[Held] = []
        for index, queue in enumerate(open_queues):
            received = self._receive_from(queue, asked, long_poll=index == len(open_queues) - 1)
            if received is None:
                return []
            batch = received
            if batch:
                break
        self._receive_failures = 0  # a round without a failure: a failing queue's backoff grows
        if len(batch) < asked:
            self._flush_deletes(force=True)  # the queues run dry: nothing to batch them with
        return batch

    def _receive_from(self, queue: WorkQueue, asked: int, long_poll: bool) -> list[Held] | None:
        """One ReceiveMessage of `queue`; None when it failed (logged, then a backoff that
        grows with the rounds that failed in a row) or a stop abandoned it. Even the `long_poll`
        never waits while done messages await their delete (unless that delete failed: then its
        backoff paces the loop)."""
        wait = long_poll and not (self._done and not self._delete_failures)
        try:
            with self._receiving_state():
                response = self.sqs.receive_message(
                    QueueUrl=queue.url,
                    MaxNumberOfMessages=asked,
                    WaitTimeSeconds=self.settings.receive_wait_seconds if wait else 0,
                    # The heartbeat's unit from the start, whatever the queue's default.
                    VisibilityTimeout=self.settings.visibility_timeout_seconds,
                    MessageSystemAttributeNames=[
                        "ApproximateReceiveCount",
                        *(contract.FIFO_SYSTEM_ATTRIBUTES if queue.fifo else ()),
                    ],
                    MessageAttributeNames=["All"],
                )
        except StopRequested:
            return None
        except Exception as error:
            self._receive_failures += 1
            backoff = min(2.0 ** (self._receive_failures - 1), _RECEIVE_BACKOFF_MAX_SECONDS)
            self.log.warning(
                "receive_error", error=repr(error), backoff_seconds=backoff, queue=queue.name
            )
            self._sleep_unless_stopped(backoff)
            return None
        self._mark_alive()
        now = time.monotonic()
        return [
            Held(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m.get("Body", ""),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                attributes=producer_attributes(m.get("MessageAttributes", {})),
                received_at=now,
                queue=queue,
                group_id=m.get("Attributes", {}).get("MessageGroupId"),
                deduplication_id=m.get("Attributes", {}).get("MessageDeduplicationId"),
                sequence_number=m.get("Attributes", {}).get("SequenceNumber"),
            )
            for m in response.get("Messages", [])
        ]

    @contextlib.contextmanager
    def _receiving_state(self) -> Iterator[None]:
        if self.stop_requested_at is not None:
            raise StopRequested
        self._receiving = True
        try:
            yield
        finally:
            self._receiving = False

    def _sleep_unless_stopped(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.stop_requested_at is None and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))

    def _work(self, batch: list[Held]) -> str:
        """Run a received batch one message at a time, in the order SQS gave it; returns a
        recycle reason or ''.

        FIFO queues: a message that did not finish (it stays on its queue: a retry, a
        timeout, a hand-back) holds its group back: the group's later messages in the batch
        are handed back at once (visibility 0, in the order received) and do not run, so none
        runs before it. SQS delivers none of them again while it is in flight (its backoff),
        then the group in order, it first. One the worker dead-lettered is gone from the
        queue: its group goes on. The other groups of the batch go on."""
        self.heartbeat.hold(batch)
        if self.protection:
            self.protection.busy()
        reason = ""
        waiting = list(batch)
        try:
            while waiting:
                message = waiting.pop(0)
                reason = self._recycle_reason() if message is not batch[0] else ""  # between jobs
                if reason or not self._fits_in_grace():
                    self._hand_back([message, *waiting])
                    break
                before = self.rss_mib()
                outcome = self._run_one(message)
                if outcome in (contract.DONE, contract.DUPLICATE):
                    if not self._done:
                        self._first_done_at = time.monotonic()
                    self._done.append(message)
                elif message.group_id is not None and outcome != contract.DEAD_LETTER:
                    behind = [m for m in waiting if m.group_id == message.group_id]
                    waiting = [m for m in waiting if m.group_id != message.group_id]
                    self._hand_back(behind)
                self._job_growth_mib = max(self._job_growth_mib, self.rss_mib() - before)
                self._flush_deletes()
        finally:
            # Only an unexpected error leaves unfinished messages of the batch held: hand
            # them back (done ones keep waiting for their delete).
            settled = {m.message_id for m in self._done}
            settled |= {m.message_id for messages, _ in self._deferred for m in messages}
            self._hand_back([m for m in self.heartbeat.held() if m.message_id not in settled])
            if self.protection:
                self.protection.idle()  # runs nothing now
        return reason

    def _flush_deletes(self, force: bool = False, final: bool = False) -> None:
        """Delete the done messages when 10 are waiting, when the oldest would wait past
        DELETE_FLUSH_SECONDS if the next job (by mean duration) ran first, or ``force``; after
        a failed attempt, not before its backoff (unless ``final``: the process is stopping).

        Short jobs share one DeleteMessageBatch; a slow job's message is deleted at once."""
        if not self._done or (self.stop_requested_at is not None and not final):
            return  # stopping: deleted by `_finish_stop` (the heartbeat holds them meanwhile)
        now = time.monotonic()
        if self._delete_failures and now < self._delete_retry_at and not final:
            return  # the last attempt failed: wait for its backoff (the heartbeat holds them)
        oldest_wait = now - self._first_done_at + self.mean_duration()
        if force or len(self._done) >= MAX_BATCH or oldest_wait >= DELETE_FLUSH_SECONDS:
            done, self._done = self._done, []
            self._done = self._delete(done)
            if self._done:
                self._delete_failures += 1
                backoff = min(2.0 ** (self._delete_failures - 1), _DELETE_BACKOFF_MAX_SECONDS)
                self._delete_retry_at = time.monotonic() + backoff
            else:
                self._delete_failures = 0

    def _run_one(self, message: Held) -> str:
        """Run one job and settle its message; returns the outcome taken (done and duplicate:
        the message awaits its deletion)."""
        context = JobContext(
            message.message_id,
            message.receive_count,
            message.attributes,
            message.queue,
            message.group_id,
            message.deduplication_id,
        )
        started = time.monotonic()
        self._job_fields = {}

        def abort() -> bool | str:
            """Stop the job when its lease is lost or when the SIGTERM grace is spent."""
            if self.heartbeat.lease_lost(message.message_id):
                return contract.LEASE_LOST
            return self._grace_spent()

        try:
            result = self.runner.run(
                message.body, context, self.settings.job_timeout_seconds, abort
            )
        except Exception as error:  # a job that cannot start fails alone, never its worker
            result = JobResult(contract.RETRY, f"could not run the handler: {error!r}")
        duration = time.monotonic() - started
        self.jobs_run += 1
        if result.outcome != "handed_back":
            self.durations.append(duration)
        outcome = self._settle(message, result)
        fields: dict[str, Any] = {"error": result.error} if result.error else {}
        if message.group_id is not None:
            fields[contract.MESSAGE_GROUP_ID] = message.group_id
        fields.update(self._job_fields)
        rss = self.runner.job_rss_bytes()
        if rss:
            fields["max_rss_mib"] = round(rss / 2**20, 1)
        with contextlib.suppress(Exception):  # a log that cannot be written never undoes a job
            self.log.emit(
                "info" if outcome in ("done", "duplicate", "handed_back") else "warning",
                "job",
                message_id=message.message_id,
                queue=message.queue.name,
                receive_count=message.receive_count,
                duration_seconds=round(duration, 3),
                outcome=outcome,
                **fields,
            )
        return outcome

    def _settle(self, message: Held, result: JobResult) -> str:
        """Apply a job's result to its message; returns the outcome actually taken."""
        if result.outcome in ("done", "duplicate"):
            return result.outcome  # deleted with the rest of the batch
        if result.outcome in (contract.HANDED_BACK, contract.LEASE_LOST):
            self._hand_back([message])  # after a lost lease this may fail: SQS redelivers it
            return result.outcome
        if result.outcome == "dead_letter":
            sent = self._dead_letter(message, result.error)
            if sent == _SENT:
                return "dead_letter"
            if sent == _TOO_LARGE:  # left to SQS's redrive, after the backoff
                self._job_fields[contract.DEAD_LETTER_FALLBACK] = "redrive"
        backoff = result.retry_after_seconds
        if backoff is None:
            backoff = self.settings.backoff_seconds(message.receive_count)
        self._set_visibility([message], backoff)
        stopped = (contract.TIMEOUT, contract.MEMORY_EXCEEDED)
        return result.outcome if result.outcome in stopped else contract.RETRY

    # -- SQS calls -----------------------------------------------------------------------------

    def _dead_letter(self, message: Held, reason: str) -> str:
        """Send a copy to the DLQ of the message's queue (DEAD_LETTER_QUEUE_URL, or its
        WORKER_QUEUES entry's) with the reason, then delete the message.

        A copy the DLQ refuses as too large (SQS counts the body and every attribute's name,
        type and value against its MaximumMessageSize) is sent again without the original
        attributes (counted in contract.DROPPED_ATTRIBUTES_ATTRIBUTE) and with the reason
        shortened; when even that does not fit, the message is left to SQS's redrive
        (`_TOO_LARGE`: made visible again after its backoff, moved with its own attributes
        after maxReceiveCount receives). The message is deleted only once a copy landed.

        A FIFO queue's copy (its DLQ is FIFO too) keeps the message's group and is deduplicated
        by the message's id: a copy sent again (its delete failed) within SQS's 5-minute
        deduplication interval lands once."""
        dead_letter_queue_url = message.queue.dead_letter_queue_url
        if not dead_letter_queue_url:
            return _FAILED
        fifo: dict[str, str] = {}
        if message.queue.fifo and message.group_id is not None:
            fifo = {
                "MessageGroupId": message.group_id,
                "MessageDeduplicationId": message.message_id,
            }
        # The reason is a job's error: masked as the log masks it (worker.masking).
        copies = dead_letter_copies(message, self.log.mask.mask(reason))
        for attributes in copies:
            try:
                self._client().send_message(
                    QueueUrl=dead_letter_queue_url,
                    MessageBody=message.body,
                    MessageAttributes=attributes,
                    **fifo,
                )
            except Exception as error:
                if too_large(error):
                    continue  # the next, smaller copy
                self.log.warning(
                    "dead_letter_error",
                    message_id=message.message_id,
                    error=repr(error),
                    queue=message.queue.name,
                )
                return _FAILED
            self._delete([message])
            return _SENT
        self.log.warning(
            contract.DEAD_LETTER_TOO_LARGE_EVENT,
            message_id=message.message_id,
            queue=message.queue.name,
            copy_bytes=message_size(message.body, copies[-1]),
        )
        return _TOO_LARGE

    def _delete(self, messages: list[Held]) -> list[Held]:
        """DeleteMessageBatch (10 at a time, on each message's queue); returns the messages to
        retry: those whose delete failed for a reason a retry may cure and that the heartbeat
        still holds (their lease not lost). A deleted message, or one given up, is released."""
        retry: list[Held] = []
        for queue, batch in queue_batches(messages, _queue_of):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(batch)
            ]
            failed: list[Held] = []
            try:
                if len(entries) == 1:
                    self._client().delete_message(
                        QueueUrl=queue.url, ReceiptHandle=entries[0]["ReceiptHandle"]
                    )
                else:
                    response = self._client().delete_message_batch(
                        QueueUrl=queue.url, Entries=entries
                    )
                    for entry in response.get("Failed", []):
                        self.log.warning(
                            "delete_error", error=entry.get("Code"), messages=1, queue=queue.name
                        )
                        if not entry.get("SenderFault"):  # a bad receipt handle stays bad
                            failed.append(batch[int(entry["Id"])])
            except Exception as error:
                self.log.warning(
                    "delete_error", error=repr(error), messages=len(entries), queue=queue.name
                )
                failed = batch
            kept = [m for m in failed if not self.heartbeat.lease_lost(m.message_id)]
            if len(kept) < len(failed):
                self.log.warning("delete_given_up", messages=len(failed) - len(kept))
            retry += kept
        retried = {m.message_id for m in retry}
        self.heartbeat.release([m for m in messages if m.message_id not in retried])
        return retry

    def _hand_back(self, messages: list[Held]) -> None:
        """Make messages visible again at once (visibility 0); they were not finished."""
        self._set_visibility(messages, 0)

    def _set_visibility(self, messages: list[Held], seconds: int) -> None:
        """Stop extending `messages` and make them visible in `seconds`; while stopping, left
        to `_finish_stop` (the heartbeat holds them until then), so that a stop makes one
        round of calls whatever the number of jobs that ended during it."""
        if not messages:
            return
        if self.stop_requested_at is not None:
            self._deferred.append((list(messages), seconds))
            return
        self.heartbeat.release(messages)
        self._change_visibility(messages, seconds)

    def _finish_stop(self) -> None:
        """The stop's SQS calls, all at once on the bounded client, each on a thread: the
        visibility changes deferred since SIGTERM (the hand-backs first of all) and the deletes
        of the done messages, 10 messages a call. They end within STOP_CALL_SECONDS (a call
        still running then is left behind: its messages come back after their visibility)."""
        self.heartbeat.stop(timeout=0)  # no new beat; one in flight is waited for below
        job_stop_at = (self.stop_requested_at or 0.0) + self.job_stop_seconds
        wait_until = max(time.monotonic() + 1.0, job_stop_at + STOP_TERM_GRACE_SECONDS)
        calls: list[tuple[Any, tuple[Any, ...]]] = []
        deferred, self._deferred = self._deferred, []
        by_seconds: dict[int, list[Held]] = {}
        for messages, seconds in deferred:
            self.heartbeat.release(messages, wait_until=wait_until)
            by_seconds.setdefault(seconds, []).extend(messages)
        for seconds, messages in sorted(by_seconds.items()):
            calls += [
                (self._change_visibility, (batch, seconds))
                for _, batch in queue_batches(messages, _queue_of)
            ]
        done, self._done = self._done, []
        calls += [(self._delete, (batch,)) for _, batch in queue_batches(done, _queue_of)]
        threads = [
            threading.Thread(target=call, args=args, name="stop-call", daemon=True)
            for call, args in calls
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + STOP_CALL_SECONDS + 0.5
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.heartbeat.stop(timeout=max(0.0, deadline - time.monotonic()))

    def _client(self) -> Any:
        """The SQS client of a call: the stop path's bounded one once stopping."""
        return self.stop_sqs if self.stop_requested_at is not None else self.sqs

    def _change_visibility(self, messages: list[Held], seconds: int) -> None:
        """ChangeMessageVisibilityBatch to `seconds`, on each message's queue."""
        for queue, batch in queue_batches(messages, _queue_of):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, m in enumerate(batch)
            ]
            try:
                self._client().change_message_visibility_batch(QueueUrl=queue.url, Entries=entries)
            except Exception as error:  # the message comes back after its visibility anyway
                self.log.warning(
                    "visibility_error", error=repr(error), messages=len(entries), queue=queue.name
                )

    # -- recycling -----------------------------------------------------------------------------

    def _recycle_reason(self) -> str:
        limit = self.settings.max_jobs_per_process
        if limit and self.jobs_run >= limit:
            return "recycle_jobs"
        memory = self.settings.max_memory_mib_per_process
        if memory and self.rss_mib() > memory:
            return "recycle_memory"
        return ""

    def rss_mib(self) -> float:
        """This process's RSS plus what its runner holds between jobs (a callable's executor;
        a command, gone after its job, holds none), MiB."""
        return (rss_bytes() + self.runner.rss_bytes()) / 2**20


def _queue_of(message: Held) -> WorkQueue:
    """The queue every call about `message` goes to."""
    return message.queue


def dead_letter_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """The original attributes of a message for its DLQ copy, binary ones included: as they
    were when there are at most contract.DLQ_KEPT_ATTRIBUTES (the worker adds 2 of SQS's 10),
    else all of them folded into contract.ORIGINAL_ATTRIBUTES_ATTRIBUTE (JSON, binary base64)."""
    shaped = {name: _sendable(value) for name, value in attributes.items()}
    if len(shaped) <= contract.DLQ_KEPT_ATTRIBUTES:
        return shaped
    folded = json.dumps(sqs_attributes(attributes), sort_keys=True)
    return {contract.ORIGINAL_ATTRIBUTES_ATTRIBUTE: {"DataType": "String", "StringValue": folded}}


def dead_letter_copies(message: Held, reason: str) -> list[dict[str, Any]]:
    """The attributes of a message's DLQ copy, largest first: the original ones (as
    `dead_letter_attributes` keeps them), the reason (1,000 characters at most) and the
    original id; then, for a DLQ that refuses that as too large, the reason shortened to
    contract.SHORT_REASON_CHARS, the original id and how many original attributes were left
    out (contract.DROPPED_ATTRIBUTES_ATTRIBUTE, when any)."""

    def kit(reason_chars: int) -> dict[str, Any]:
        return {
            contract.FAILURE_REASON_ATTRIBUTE: _string(reason[:reason_chars]),
            contract.SOURCE_MESSAGE_ID_ATTRIBUTE: _string(message.message_id),
        }

    full = {**dead_letter_attributes(message.attributes), **kit(1000)}
    short = kit(contract.SHORT_REASON_CHARS)
    if message.attributes:
        short[contract.DROPPED_ATTRIBUTES_ATTRIBUTE] = {
            "DataType": "Number",
            "StringValue": str(len(message.attributes)),
        }
    return [full, short]


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value or "-"}  # SQS refuses an empty value


def message_size(body: str, attributes: dict[str, Any]) -> int:
    """A message's size as SQS counts it against MaximumMessageSize: the body's bytes and, for
    each attribute, the bytes of its name, its data type and its value."""
    size = len(body.encode())
    for name, value in attributes.items():
        raw = value.get("BinaryValue", value.get("StringValue", ""))
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        size += len(name.encode()) + len(str(value["DataType"]).encode()) + len(data)
    return size


def too_large(error: Exception) -> bool:
    """Whether a SendMessage was refused for the message's size."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    text = str(response.get("Error", {}).get("Message", "")).lower()
    return code in _TOO_LARGE_CODES and ("shorter than" in text or "too long" in text)


_KIT_DLQ_ATTRIBUTES = (
    contract.FAILURE_REASON_ATTRIBUTE,
    contract.SOURCE_MESSAGE_ID_ATTRIBUTE,
    contract.ORIGINAL_ATTRIBUTES_ATTRIBUTE,
    contract.DROPPED_ATTRIBUTES_ATTRIBUTE,
)


def producer_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes the producer sent, as ReceiveMessage returns them: a DLQ copy the worker
    made and an operator redrove (`scripts redrive`, SQS's move task) has its originals
    unfolded from contract.ORIGINAL_ATTRIBUTES_ATTRIBUTE and the kit's own attributes
    removed, so the handler (a framework's decoder) sees the message as it was first sent."""
    if not any(name in attributes for name in _KIT_DLQ_ATTRIBUTES):
        return attributes
    kept = {k: v for k, v in attributes.items() if k not in _KIT_DLQ_ATTRIBUTES}
    folded = attributes.get(contract.ORIGINAL_ATTRIBUTES_ATTRIBUTE, {}).get("StringValue")
    if folded is None:
        return kept
    try:
        originals = json.loads(folded)
        for value in originals.values():
            if "BinaryValue" in value:
                value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
    except (ValueError, TypeError, AttributeError):
        return attributes  # not the kit's folding: leave the message as it came
    return {**originals, **kept}


def _sendable(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute as ReceiveMessage returned it, in the shape SendMessage takes."""
    if "BinaryValue" in value:
        return {"DataType": value["DataType"], "BinaryValue": value["BinaryValue"]}
    return {"DataType": value["DataType"], "StringValue": value.get("StringValue", "")}
