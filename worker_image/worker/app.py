"""`python -m worker`: build one consumer loop from the environment and run it."""

from __future__ import annotations

import os
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from worker.clients import bounded_sqs_client
from worker.consumer import ConsumerWatcher
from worker.contract import QUEUES_VARIABLE
from worker.handlers import (
    CallableRunner,
    CommandRunner,
    HandlerError,
    OutputLimit,
    Runner,
    check_command,
    kill_orphan,
)
from worker.logs import EventLog
from worker.masking import SecretMask, secret_values
from worker.protection import TaskProtection
from worker.settings import LOCAL_PROCESS_NAME, Settings, SettingsError
from worker.supervise import fleet_stopping, job_file, write_line

EX_CONFIG = 78  # a bad setting: supervisord gives up after startretries, the task is replaced
QUEUE_CHECK_ATTEMPTS = 3
"""Tries of the start-up queue check against transient errors (1 s, then 2 s apart; each on
top of botocore's own 3 attempts)."""
QUEUE_UNUSABLE_CODES = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "AccessDenied",
        "AccessDeniedException",
        "InvalidAddress",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "KMS.AccessDeniedException",
    }
)
"""Error codes that retrying cannot fix: the queue does not exist or this role may not use it."""


class QueueUnusable(RuntimeError):
    """A work queue cannot be read from (names QUEUE_URL, or its WORKER_QUEUES entry)."""


def sqs_client(settings: Settings) -> Any:
    """The loop's SQS client; AWS_ENDPOINT_URL (moto locally) and AWS_REGION come from the env."""
    return bounded_sqs_client(settings.region, 3, 5, settings.receive_wait_seconds + 10)


def stop_sqs_client(settings: Settings) -> Any:
    """The SQS client of the stop path (after SIGTERM): short timeouts and no retry, so each
    hand-back, backoff or delete of a stopping process takes at most STOP_CALL_SECONDS and the
    stop ends within supervisord's stop wait (docs/reliability.md, "Stops under a slow SQS")."""
    from worker.loop import STOP_CONNECT_SECONDS, STOP_READ_SECONDS

    return bounded_sqs_client(settings.region, 1, STOP_CONNECT_SECONDS, STOP_READ_SECONDS)


class LazyClient:
    """A client made on its first use: the stop path's, made only by a process that stops with
    work in hand (0.14 MiB less a running loop, measured 2026-12-06; stacks/sizing.py counts
    the running loop)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make()
        return getattr(self._client, name)


def make_runner(settings: Settings, log: EventLog) -> Runner:
    """The runner of the handler mode, checked now: a callable's executor is started, a
    command's executable must exist (HandlerError otherwise)."""
    # Under supervisord: one file per process name of the task (a local run has none) names
    # the running job's process group, for the process supervisord starts after a kill -9.
    job_path = (
        str(job_file(settings.task_dir, settings.process_name))
        if settings.process_name != LOCAL_PROCESS_NAME
        else None
    )
    kill_orphan(job_path, log)
    if settings.handler_mode == "command":
        command = CommandRunner(
            settings.handler,
            log,
            queue_url=settings.queue_url,
            memory_limit_mib=settings.max_memory_mib_per_process,
            cwd=settings.workdir,
            job_file=job_path,
            output_limit=OutputLimit(
                settings.output_max_bytes_per_job, settings.output_max_events_per_job
            ),
        )
        command.check()
        return command
    runner = CallableRunner(settings.handler, job_path)
    runner.start()
    return runner


def check_queue(
    sqs: Any,
    queue_url: str,
    sleep: Callable[[float], None] = time.sleep,
    variable: str = "QUEUE_URL",
) -> None:
    """QueueUnusable unless the queue exists and this role may read it (GetQueueAttributes,
    granted with ReceiveMessage by the kit's consume grant): at once for a missing queue or a
    denied call, after QUEUE_CHECK_ATTEMPTS tries for other errors. No message is received:
    a check must not spend a receive. A receive that is denied on its own is caught by the
    fleet's watch (no receive within WORKER_START_TIMEOUT_SECONDS, worker.supervise).
    `variable` names the setting that gave the URL in the error."""
    from botocore.exceptions import BotoCoreError, ClientError

    last: Exception | None = None
    for attempt in range(1, QUEUE_CHECK_ATTEMPTS + 1):
        try:
            sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
            return
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in QUEUE_UNUSABLE_CODES:
                raise QueueUnusable(f"{variable}={queue_url!r}: cannot be used: {code}") from error
            last = error
        except BotoCoreError as error:
            last = error
        if attempt < QUEUE_CHECK_ATTEMPTS:
            sleep(2.0 ** (attempt - 1))
    raise QueueUnusable(
        f"{variable}={queue_url!r}: still failing after {QUEUE_CHECK_ATTEMPTS} tries: {last!r}"
    )


def task_protection(settings: Settings, log: EventLog) -> TaskProtection | None:
    """Scale-in protection, or None when ECS_AGENT_URI is unset or TASK_PROTECTION=off."""
    if not (settings.task_protection_active and settings.ecs_agent_uri):
        return None
    return TaskProtection(
        settings.ecs_agent_uri, settings.task_dir, settings.task_protection_expires_minutes, log
    )


def main(env: Mapping[str, str] = os.environ) -> int:
    """Run until SIGTERM or a recycle limit; 0 on a clean stop, 78 on a bad setting, a
    handler that cannot start or a queue that cannot be read; consumer mode: the consumer's
    exit status (the consumer uses the queue itself: not checked here)."""
    try:
        settings = Settings.from_env(env)
    except SettingsError as error:
        write_line(str(error))
        return EX_CONFIG
    log = EventLog(settings.process_name, mask=SecretMask(secret_values(env)))
    try:
        if settings.handler_mode == "consumer":
            check_command(settings.handler, settings.workdir)
            return ConsumerWatcher(settings, shlex.split(settings.handler), log).run()
        # Loop modes only (a consumer's watcher never loads it), and before the clients: imported
        # after them, the loop cost each process 1 MiB more (heap layout; measured 2026-12-06).
        from worker.loop import Worker

        runner = make_runner(settings, log)
    except HandlerError as error:
        write_line(str(error))
        return EX_CONFIG
    try:
        sqs = sqs_client(settings)
        for index, queue in enumerate(settings.queues):
            check_queue(sqs, queue.url, variable=f"{QUEUES_VARIABLE}[{index}].url")
        if not settings.queues:
            check_queue(sqs, settings.queue_url)
    except QueueUnusable as error:
        runner.close()
        write_line(str(error))
        return EX_CONFIG
    protection = task_protection(settings, log)
    try:
        stop_sqs = LazyClient(lambda: stop_sqs_client(settings))
        worker = Worker(settings, sqs, runner, log, protection, stop_sqs)
        worker.install_signal_handlers()
        if fleet_stopping(settings.run_dir):  # a stop signal lost before our handlers
            worker.request_stop()
        worker.run()
    finally:
        runner.close()
    return 0
