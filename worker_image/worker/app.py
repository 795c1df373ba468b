"""`python -m worker`: build one consumer loop from the environment and run it."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping

from worker.consumer import ConsumerWatcher
from worker.handlers import (
    CallableRunner,
    CommandRunner,
    HandlerError,
    Runner,
    check_command,
    kill_orphan,
)
from worker.logs import EventLog
from worker.loop import Worker
from worker.protection import TaskProtection
from worker.settings import LOCAL_PROCESS_NAME, Settings, SettingsError

EX_CONFIG = 78  # a bad setting: supervisord gives up after startretries, the task is replaced


def sqs_client(settings: Settings) -> object:
    """An SQS client; AWS_ENDPOINT_URL (moto locally) and AWS_REGION come from the env.

    boto3 is imported here, not at the top: a process that cannot start (a bad setting or
    handler) fails before paying for it, and consumer mode never loads it."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=settings.receive_wait_seconds + 10,
    )
    return boto3.client("sqs", region_name=settings.region, config=config)


def make_runner(settings: Settings, log: EventLog) -> Runner:
    """The runner of the handler mode, checked now: a callable's executor is started, a
    command's executable must exist (HandlerError otherwise)."""
    # Under supervisord: one file per process name of the task (a local run has none) names
    # the running job's process group, for the process supervisord starts after a kill -9.
    job_file = (
        os.path.join(settings.task_dir, f"{settings.process_name}.job")
        if settings.process_name != LOCAL_PROCESS_NAME
        else None
    )
    kill_orphan(job_file, log)
    if settings.handler_mode == "command":
        command = CommandRunner(
            settings.handler,
            log,
            queue_url=settings.queue_url,
            memory_limit_mib=settings.max_memory_mib_per_process,
            cwd=settings.workdir,
            job_file=job_file,
        )
        command.check()
        return command
    runner = CallableRunner(settings.handler, job_file)
    runner.start()
    return runner


def task_protection(settings: Settings, log: EventLog) -> TaskProtection | None:
    """Scale-in protection, or None when ECS_AGENT_URI is unset or TASK_PROTECTION=off."""
    if not (settings.task_protection_active and settings.ecs_agent_uri):
        return None
    return TaskProtection(
        settings.ecs_agent_uri, settings.task_dir, settings.task_protection_expires_minutes, log
    )


def main(env: Mapping[str, str] = os.environ) -> int:
    """Run until SIGTERM or a recycle limit; 0 on a clean stop, 78 on a bad setting or a
    handler that cannot start; consumer mode: the consumer's exit status."""
    try:
        settings = Settings.from_env(env)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return EX_CONFIG
    log = EventLog(settings.process_name)
    try:
        if settings.handler_mode == "consumer":
            check_command(settings.handler)
            return ConsumerWatcher(settings, shlex.split(settings.handler), log).run()
        runner = make_runner(settings, log)
    except HandlerError as error:
        print(error, file=sys.stderr)
        return EX_CONFIG
    protection = task_protection(settings, log)
    try:
        worker = Worker(settings, sqs_client(settings), runner, log, protection)
        worker.install_signal_handlers()
        worker.run()
    finally:
        runner.close()
    return 0
