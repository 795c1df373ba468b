"""The names the worker writes and the others read: the scripts, the log queries, the alarms.

One place for each name (docs/contract.md). The worker imports it (worker.loop), so do the
operator scripts (scripts/) and the monitoring construct (stacks/constructs/monitoring.py),
with ``worker_image`` on the import path. Change a name here and every side follows.
"""

from __future__ import annotations

# -- Message attributes the worker sets on a message it dead-letters itself ---------------------

FAILURE_REASON_ATTRIBUTE = "worker_failure_reason"
"""Why the worker gave up on the message (the handler's error, at most 1,000 characters)."""
SOURCE_MESSAGE_ID_ATTRIBUTE = "worker_source_message_id"
"""The message's id on the work queue (a dead-lettered copy gets a new id): the one the
worker's log lines carry, so the one to look up in the ``message-story`` query."""

ORIGINAL_ATTRIBUTES_ATTRIBUTE = "worker_original_attributes"
"""Set instead of the original attributes when the message had more than
``DLQ_KEPT_ATTRIBUTES`` (SQS allows 10, the worker adds 2): all of them as one JSON object in
SQS's shape (``{"name": {"DataType": ..., "StringValue"|"BinaryValue": ...}}``, binary
values base64)."""
DLQ_KEPT_ATTRIBUTES = 8
"""A dead-lettered copy keeps up to this many original attributes as they were."""
DROPPED_ATTRIBUTES_ATTRIBUTE = "worker_dropped_attributes"
"""Set (a Number) on a dead-lettered copy that did not fit the DLQ's maximum message size with
the original attributes: how many of them it left out (the reason is shortened to
``SHORT_REASON_CHARS`` too). Only the body, the reason and the original id travel then."""
SHORT_REASON_CHARS = 200
"""The reason's length on a copy sent again without the original attributes."""

# -- The pause flag (`queue-worker pause` sets it, `queue-worker continue` removes it) ---------

PAUSED_TAG = "queue-worker:paused"
"""A tag on a work queue: while it is there, the kit's loop receives nothing from that queue (it
finishes and deletes what it holds; when every queue it consumes is paused it only polls the
tags, every PAUSE_CHECK_SECONDS). In consumer mode the fleet's watch reads it once a task and,
while every queue is tagged, leaves a file that makes each consumer's watcher stop its consumer
(SIGTERM; worker.pause.PauseReader, worker.consumer). Its value says when the pause began and
the service's desired count then (``scripts.operate.pause.tag_value``)."""
PAUSE_CHECK_SECONDS = 30.0
"""How often a loop, or in consumer mode the fleet's watch, reads the tag by default
(PAUSE_CHECK_SECONDS)."""
PAUSED_EVENT = "worker_paused"
"""The log line a loop (in consumer mode: the fleet's watch, process ``supervise``) writes when
it sees the tag appear; ``worker_continued`` when it goes (both with the field ``queue``;
worker.pause)."""
CONTINUED_EVENT = "worker_continued"


# -- Several work queues in priority order (docs/contract.md, "Several queues") ---------------

QUEUES_VARIABLE = "WORKER_QUEUES"
"""The work queues of one worker, highest priority first: a JSON list of objects with the keys
``QUEUE_KEYS`` (``name`` and ``url`` required). A process takes a message of a queue only when
every queue before it had none. Replaces QUEUE_URL and DEAD_LETTER_QUEUE_URL (the one-queue
form, still read when this is unset); setting both forms is an error."""
QUEUE_KEYS = ("name", "url", "dead_letter_queue_url", "max_receive_count")
"""The keys of a WORKER_QUEUES entry: ``name`` (1 to 80 letters, digits, ``-``, ``_``; unique;
the ``queue`` of log lines), ``url``, ``dead_letter_queue_url`` (optional: where the worker
dead-letters that queue's permanent failures itself) and ``max_receive_count`` (optional: the
queue's maxReceiveCount, given to a command as WORKER_MAX_RECEIVE_COUNT)."""
QUEUE_NAME_VARIABLE = "WORKER_QUEUE_NAME"
"""Command mode: the name of the queue the message came from (WORKER_QUEUE_URL is its URL)."""

# -- FIFO queues (docs/contract.md, "FIFO queues"): a queue whose URL ends with ``.fifo`` ------

FIFO_SYSTEM_ATTRIBUTES = ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber")
"""What the loop asks a FIFO queue for besides ApproximateReceiveCount, for each message."""
MESSAGE_GROUP_ID_VARIABLE = "WORKER_MESSAGE_GROUP_ID"
"""Command mode, FIFO queues: the message's MessageGroupId (absent on a standard queue)."""
MESSAGE_DEDUPLICATION_ID_VARIABLE = "WORKER_MESSAGE_DEDUPLICATION_ID"
"""Command mode, FIFO queues: the message's MessageDeduplicationId (the producer's, or the
body's SHA-256 under content-based deduplication)."""
MESSAGE_GROUP_ID = "message_group_id"
"""A ``job`` field on a FIFO queue's message: its MessageGroupId."""

# -- Variables the task sets for the runners (recipes/) --------------------------------------

MAX_RECEIVE_COUNT_VARIABLE = "WORKER_MAX_RECEIVE_COUNT"
"""The work queue's maxReceiveCount (queue.max_receive_count): the receive on which a failure is
final. recipes/laravel/run-job.php takes it as its default --tries."""

SECRET_NAMES_VARIABLE = "WORKER_SECRET_NAMES"
"""The names of the variables that hold ``worker.secrets`` (comma-separated, sorted; absent
without secrets), set by the worker stack: the worker masks their values in what it logs
(worker.masking)."""

# -- What a command gets (command mode, per message; docs/frameworks.md "The command contract")

MESSAGE_ATTRIBUTES_FILE_VARIABLE = "WORKER_MESSAGE_ATTRIBUTES_FILE"
"""The path of a file (in the job's private directory, fresh for each job) that holds the
message's attributes as one JSON object in SQS's shape: always set, whatever their size."""
MESSAGE_ATTRIBUTES_VARIABLE = "WORKER_MESSAGE_ATTRIBUTES"
"""The same JSON in the environment, for commands written before the file: set only when it
is at most ``MESSAGE_ATTRIBUTES_VARIABLE_MAX_BYTES`` long, absent above."""
MESSAGE_ATTRIBUTES_VARIABLE_MAX_BYTES = 65_536
"""64 KiB: half of what Linux accepts in one environment string (128 KiB, MAX_ARG_STRLEN),
while SQS allows attributes up to the message's size (256 KiB, or 1 MiB)."""

# -- Log lines: one JSON object per line -------------------------------------------------------

TIME = "time"
LEVEL = "level"
EVENT = "event"
PROCESS = "process"
PID = "pid"
MESSAGE_ID = "message_id"
QUEUE = "queue"
"""The name of the queue a message came from (``job`` lines and the queue's own events): a
WORKER_QUEUES entry's ``name``, else the last part of QUEUE_URL."""
RECEIVE_COUNT = "receive_count"
DURATION_SECONDS = "duration_seconds"
OUTCOME = "outcome"
ERROR = "error"
REASON = "reason"
OUTPUT_STREAM = "stream"
"""A ``job_output`` line's stream: ``stdout`` or ``stderr``."""
OUTPUT_TEXT = "line"
"""A ``job_output`` line's text: the burst's lines joined by newlines."""

JOB_EVENT = "job"
"""The ``event`` of the line written after every job; it carries ``outcome``."""
JOB_OUTPUT_EVENT = "job_output"
"""The ``event`` of a burst of lines a command wrote to one stream (fields ``stream``,
``line``: the lines joined by newlines, at most 8 KiB, ``message_id``; ``truncated`` and
``continued`` where a longer line goes on in the next event)."""
JOB_OUTPUT_TRUNCATED_EVENT = "job_output_truncated"
"""Command mode: the one line after a job whose output went past its limit
(OUTPUT_MAX_BYTES_PER_JOB, OUTPUT_MAX_EVENTS_PER_JOB): ``message_id``, ``dropped_bytes`` and
``dropped_events`` (what was read from the command's pipes and not logged), the limits."""
DEAD_LETTER_TOO_LARGE_EVENT = "dead_letter_too_large"
"""A dead-letter copy the DLQ refused as too large even without the original attributes:
``message_id``, ``copy_bytes`` (its size as SQS counts it); the message is made visible again
after its backoff and SQS's redrive moves it (with its original attributes) after
maxReceiveCount receives. Its ``job`` line has outcome ``retry`` and ``dead_letter_fallback``."""
DEAD_LETTER_FALLBACK = "dead_letter_fallback"
"""A ``job`` field: ``redrive`` when the worker's own dead-letter copy did not fit (above)."""
DROPPED_BYTES = "dropped_bytes"
DROPPED_EVENTS = "dropped_events"
JOB_ORPHAN_KILLED_EVENT = "job_orphan_killed"
"""Command mode: a restarted process killed the job (process group ``pgid``) its killed
predecessor left running; a simple command dies with its worker and never needs it."""

DONE = "done"
RETRY = "retry"
DEAD_LETTER = "dead_letter"
TIMEOUT = "timeout"
HANDED_BACK = "handed_back"
DUPLICATE = "duplicate"
MEMORY_EXCEEDED = "memory_exceeded"
"""A command's processes went above MAX_MEMORY_MIB_PER_PROCESS: stopped, retried."""
LEASE_LOST = "lease_lost"
"""The heartbeat could not extend the message's visibility: the job was stopped (with every
process it started) before the visibility ran out, so SQS's redelivery never overlaps it."""
OUTCOMES = (
    DONE,
    RETRY,
    DEAD_LETTER,
    TIMEOUT,
    HANDED_BACK,
    DUPLICATE,
    MEMORY_EXCEEDED,
    LEASE_LOST,
)
"""Every ``outcome`` of a ``job`` line."""
FAILED_OUTCOMES = (RETRY, DEAD_LETTER, TIMEOUT, MEMORY_EXCEEDED)
"""The outcomes that count as a failed job (the error-rate alarm, ``JobsFailed``)."""

# -- Metrics the log group's metric filters make of the job lines ------------------------------

JOBS_PROCESSED = "JobsProcessed"
JOBS_FAILED = "JobsFailed"
JOBS_RETRIED = "JobsRetried"
JOB_DURATION = "JobDuration"
JOB_FAILURE_PERCENT = "JobFailurePercent"
"""100 for a failed job, 0 for a done one: its average is the error rate (one alarm metric)."""


def is_fifo_queue(url: str) -> bool:
    """Whether the queue at `url` is FIFO: SQS names every FIFO queue, and only those, ``*.fifo``
    (the worker keeps its groups' order; the operator commands send with a group)."""
    return url.endswith(".fifo")


def metric_namespace(environment: str) -> str:
    """The CloudWatch namespace of an environment's job metrics: ``QueueWorkerKit/<env>``."""
    return f"QueueWorkerKit/{environment}"
