"""The worker's settings: read once from the environment into a frozen, validated object.

Every variable is listed in docs/contract.md. A bad value fails at start with one message that
names every offending variable, its value and what is allowed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from worker.contract import PAUSE_CHECK_SECONDS, QUEUE_KEYS, QUEUES_VARIABLE, is_fifo_queue
from worker.supervise import DEFAULTS

# SQS never keeps a message invisible longer than 12 hours after it was received.
SQS_MAX_VISIBILITY_SECONDS = 43_200
HANDLER_MODES = ("callable", "command", "consumer")
# The process name outside supervisord (which sets SUPERVISOR_PROCESS_NAME, unique in a task).
LOCAL_PROCESS_NAME = "worker_local"
_CALLABLE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")

T = TypeVar("T", int, float)


class SettingsError(ValueError):
    """One or more environment variables are missing or invalid (the message lists them all)."""


@dataclass(frozen=True)
class WorkQueue:
    """One queue a worker consumes: its name (the ``queue`` of log lines), its URL, its DLQ
    (None: the worker dead-letters nothing itself, SQS's redrive does) and its
    maxReceiveCount for the runners (None: the task's WORKER_MAX_RECEIVE_COUNT)."""

    name: str
    url: str
    dead_letter_queue_url: str | None = None
    max_receive_count: int | None = None

    @property
    def fifo(self) -> bool:
        """Whether it is a FIFO queue: SQS names every FIFO queue, and only those, ``*.fifo``."""
        return is_fifo_queue(self.url)


def queue_name_of(url: str) -> str:
    """A queue's name from its URL: the URL's last part (``QueueWorker-prod-WorkQueue``)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Settings:
    """Runtime settings; defaults are the contract's examples (docs/contract.md)."""

    queue_url: str  # the first (or only) work queue
    dead_letter_queue_url: str | None = None
    # WORKER_QUEUES, highest priority first; empty: the one queue of QUEUE_URL.
    queues: tuple[WorkQueue, ...] = ()
    handler_mode: str = "callable"
    handler: str = "worker.examples:sleep_job"
    job_timeout_seconds: float = 900.0
    visibility_timeout_seconds: int = 120
    heartbeat_interval_seconds: float = 30.0
    retry_backoff_base_seconds: int = 10
    retry_backoff_max_seconds: int = 600
    prefetch_seconds: float = 5.0
    max_jobs_per_process: int = 200
    max_memory_mib_per_process: int = 256
    stop_grace_seconds: float = 100.0
    # supervisord's stopwaitsecs: a stopping process must be gone by then (else SIGKILL).
    stop_wait_seconds: float = 110.0
    task_protection: bool = True
    ecs_agent_uri: str | None = None
    task_dir: str = "/tmp/worker-task"
    run_dir: str = "/tmp/worker-run"
    task_protection_expires_minutes: int = 60
    receive_wait_seconds: int = 20
    # How often the loop reads the work queue's pause tag (ListQueueTags), before a receive.
    pause_check_seconds: float = PAUSE_CHECK_SECONDS
    process_name: str = LOCAL_PROCESS_NAME
    region: str | None = None
    workdir: str | None = None  # where commands and consumers run (None: the process's own)
    # Command mode: what one job's output may log (job_output lines); 0: no limit.
    output_max_bytes_per_job: int = 1_048_576
    output_max_events_per_job: int = 1000

    @property
    def work_queues(self) -> tuple[WorkQueue, ...]:
        """The queues the loop consumes, highest priority first: WORKER_QUEUES, else the one
        queue of QUEUE_URL and DEAD_LETTER_QUEUE_URL (named by its URL's last part)."""
        if self.queues:
            return self.queues
        url = self.queue_url
        return (WorkQueue(queue_name_of(url), url, self.dead_letter_queue_url),)

    @property
    def task_protection_active(self) -> bool:
        """Protection is on only when enabled and the ECS agent endpoint is known."""
        return self.task_protection and bool(self.ecs_agent_uri)

    def backoff_seconds(self, receive_count: int) -> int:
        """Visibility after a failure: base * 2^(receive_count - 1), capped at the maximum."""
        exponent = min(max(receive_count - 1, 0), 30)
        return min(self.retry_backoff_base_seconds << exponent, self.retry_backoff_max_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse and validate `env` (os.environ); SettingsError lists every fault at once."""
        reader = _Reader(env)
        job_timeout = reader.number("JOB_TIMEOUT_SECONDS", float, 900.0, low=0.001)
        visibility = reader.number("VISIBILITY_TIMEOUT_SECONDS", int, 120, low=1)
        heartbeat = reader.number("HEARTBEAT_INTERVAL_SECONDS", float, 30.0, low=0.001)
        backoff_base = reader.number("RETRY_BACKOFF_BASE_SECONDS", int, 10, low=0)
        backoff_max = reader.number("RETRY_BACKOFF_MAX_SECONDS", int, 600, low=0)
        mode = reader.choice("WORKER_HANDLER_MODE", HANDLER_MODES, "callable")
        handler = env.get("WORKER_HANDLER", "").strip()
        if mode == "callable":
            handler = handler or "worker.examples:sleep_job"
        elif not handler:
            reader.fail("WORKER_HANDLER", handler, f"required in {mode} mode (a command)")
        expires_default = max(60, -(-2 * int(job_timeout) // 60))
        several = bool(env.get(QUEUES_VARIABLE, "").strip())
        queues = _work_queues(reader)
        first = queues[0] if queues else WorkQueue("", "")
        for name in ("QUEUE_URL", "DEAD_LETTER_QUEUE_URL"):
            if several and env.get(name, "").strip():
                reader.fail(name, env[name], f"set {QUEUES_VARIABLE} or {name}, not both")
        settings = cls(
            queue_url=first.url if several else reader.required("QUEUE_URL"),
            dead_letter_queue_url=first.dead_letter_queue_url
            if several
            else env.get("DEAD_LETTER_QUEUE_URL", "").strip() or None,
            queues=queues,
            handler_mode=mode,
            handler=handler,
            job_timeout_seconds=job_timeout,
            visibility_timeout_seconds=visibility,
            heartbeat_interval_seconds=heartbeat,
            retry_backoff_base_seconds=backoff_base,
            retry_backoff_max_seconds=backoff_max,
            prefetch_seconds=reader.number("PREFETCH_SECONDS", float, 5.0, low=0),
            max_jobs_per_process=reader.number("MAX_JOBS_PER_PROCESS", int, 200, low=0),
            max_memory_mib_per_process=reader.number("MAX_MEMORY_MIB_PER_PROCESS", int, 256, low=0),
            stop_grace_seconds=reader.number("WORKER_STOP_GRACE_SECONDS", float, 100.0, low=0),
            stop_wait_seconds=reader.number(
                "SUPERVISOR_STOPWAITSECS", float, float(DEFAULTS["SUPERVISOR_STOPWAITSECS"]), low=0
            ),
            task_protection=reader.choice("TASK_PROTECTION", ("on", "off"), "on") == "on",
            ecs_agent_uri=env.get("ECS_AGENT_URI", "").strip().rstrip("/") or None,
            task_dir=env.get("WORKER_TASK_DIR", "").strip() or DEFAULTS["WORKER_TASK_DIR"],
            run_dir=env.get("WORKER_RUN_DIR", "").strip() or "/tmp/worker-run",
            task_protection_expires_minutes=reader.number(
                "TASK_PROTECTION_EXPIRES_MINUTES", int, expires_default, low=1, high=2880
            ),
            receive_wait_seconds=reader.number("RECEIVE_WAIT_SECONDS", int, 20, low=0, high=20),
            pause_check_seconds=reader.number(
                "PAUSE_CHECK_SECONDS", float, PAUSE_CHECK_SECONDS, low=0.1, high=300
            ),
            process_name=env.get("SUPERVISOR_PROCESS_NAME", "").strip() or LOCAL_PROCESS_NAME,
            region=env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION")
            or _url_region(first.url if several else env.get("QUEUE_URL", "")),
            workdir=env.get("WORKER_WORKDIR", "").strip() or None,
            output_max_bytes_per_job=reader.number(
                "OUTPUT_MAX_BYTES_PER_JOB", int, 1_048_576, low=0
            ),
            output_max_events_per_job=reader.number("OUTPUT_MAX_EVENTS_PER_JOB", int, 1000, low=0),
        )
        if settings.workdir and not os.path.isdir(settings.workdir):
            reader.fail("WORKER_WORKDIR", settings.workdir, "must be an existing directory")
        if mode == "callable" and not _CALLABLE_SPEC.match(handler):
            reader.fail("WORKER_HANDLER", handler, "callable mode needs 'module:function'")
        if visibility > SQS_MAX_VISIBILITY_SECONDS:
            reader.fail("VISIBILITY_TIMEOUT_SECONDS", visibility, "at most 43200 (SQS's 12 h)")
        if heartbeat >= visibility:
            reader.fail(
                "HEARTBEAT_INTERVAL_SECONDS",
                heartbeat,
                f"must be below VISIBILITY_TIMEOUT_SECONDS ({visibility}) or messages expire",
            )
        if job_timeout >= SQS_MAX_VISIBILITY_SECONDS:
            reader.fail("JOB_TIMEOUT_SECONDS", job_timeout, "must be below 43200 (SQS's 12 h)")
        if not backoff_base <= backoff_max <= SQS_MAX_VISIBILITY_SECONDS:
            reader.fail(
                "RETRY_BACKOFF_MAX_SECONDS",
                backoff_max,
                f"must be >= RETRY_BACKOFF_BASE_SECONDS ({backoff_base}) and <= 43200",
            )
        reader.raise_if_failed()
        return settings


def _url_region(url: str) -> str | None:
    """The region of an AWS queue URL (https://sqs.REGION.amazonaws.com/...), else None."""
    match = re.match(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com", url)
    return match.group(1) if match else None


def _work_queues(reader: _Reader) -> tuple[WorkQueue, ...]:
    """WORKER_QUEUES (contract.QUEUES_VARIABLE) in priority order; () when unset. Every fault of
    every entry goes to `reader` (named ``WORKER_QUEUES[i].key``); what is returned then is
    never used (the reader raises)."""
    raw = reader.env.get(QUEUES_VARIABLE, "").strip()
    if not raw:
        return ()
    shape = 'a JSON list of {"name": ..., "url": ...} objects, highest priority first'
    try:
        entries = json.loads(raw)
    except ValueError:
        entries = None
    if not isinstance(entries, list) or not entries:
        reader.fail(QUEUES_VARIABLE, raw, shape)
        return ()
    queues: list[WorkQueue] = []
    for index, entry in enumerate(entries):
        where = f"{QUEUES_VARIABLE}[{index}]"
        if not isinstance(entry, dict):
            reader.fail(where, entry, 'an object: {"name": ..., "url": ...}')
            continue
        for key in sorted(set(entry) - set(QUEUE_KEYS)):
            reader.fail(
                f"{where}.{key}", entry[key], "unknown key; allowed: " + ", ".join(QUEUE_KEYS)
            )
        name, url = entry.get("name"), entry.get("url")
        dead_letter, receives = entry.get("dead_letter_queue_url"), entry.get("max_receive_count")
        if not isinstance(name, str) or not _QUEUE_NAME.match(name):
            reader.fail(f"{where}.name", name, "required: 1 to 80 letters, digits, '-' or '_'")
        if not isinstance(url, str) or not url.strip():
            reader.fail(f"{where}.url", url, "required: the queue's URL")
        if dead_letter is not None and not (isinstance(dead_letter, str) and dead_letter.strip()):
            reader.fail(f"{where}.dead_letter_queue_url", dead_letter, "a URL, or left out")
        if receives is not None and not (type(receives) is int and receives >= 1):
            reader.fail(f"{where}.max_receive_count", receives, "an integer >= 1, or left out")
        queues.append(
            WorkQueue(str(name), str(url).strip(), (dead_letter or "").strip() or None, receives)
        )
    for key in ("name", "url"):
        values = [getattr(queue, key) for queue in queues]
        for value in sorted({v for v in values if values.count(v) > 1}):
            reader.fail(f"{QUEUES_VARIABLE}[*].{key}", value, "appears twice: each queue once")
    return tuple(queues)


class _Reader:
    """Reads variables with defaults and collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[str] = []

    def fail(self, name: str, value: object, allowed: str) -> None:
        self.errors.append(f"{name}={value!r}: {allowed}")

    def raise_if_failed(self) -> None:
        if self.errors:
            raise SettingsError("invalid worker settings: " + "; ".join(self.errors))

    def required(self, name: str) -> str:
        value = self.env.get(name, "").strip()
        if not value:
            self.fail(name, value, "required")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.env.get(name, "").strip().lower() or default
        if value not in allowed:
            self.fail(name, value, "one of " + ", ".join(allowed))
            return default
        return value

    def number(
        self,
        name: str,
        kind: Callable[[str], T],
        default: T,
        *,
        low: float,
        high: float | None = None,
    ) -> T:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            self.fail(name, raw, f"not {'an integer' if kind is int else 'a number'}")
            return default
        if value < low or (high is not None and value > high):
            limit = f">= {low}" if high is None else f"between {low} and {high}"
            self.fail(name, raw, f"must be {limit}")
            return default
        return value
