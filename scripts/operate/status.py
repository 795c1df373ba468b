"""One screen per environment: tasks, queue, DLQ, alarms, and the batch's progress.

    queue-worker status --env prod
    queue-worker status --env prod --json
    queue-worker status --env prod --worker mails

An environment with several queues or workers shows each worker (its tasks and batch) and each
queue (its depth, pause and DLQ); --worker NAME shows one worker and the queues it consumes.

Read-only calls only. Resources come from the deployed stacks' outputs (ClusterName,
ServiceName of QueueWorker-ENV-Worker; QueueUrl, DeadLetterQueueUrl of QueueWorker-ENV-Queue):
ECS DescribeServices, ListTasks and GetTaskProtection (tasks running / desired / pending, how
many hold scale-in protection); SQS GetQueueAttributes (visible, in flight, DLQ depth) and
ListQueueTags (paused: the work queue's `queue-worker:paused` tag, `queue-worker pause`);
CloudWatch ApproximateAgeOfOldestMessage (the oldest message), DescribeAlarms (alarms named
QueueWorker-ENV-* in ALARM) and, during a batch window of the environment's config, the job
metric JobsProcessed: the progress since the window's start and the estimated finish =
now + work left (visible + in flight + delayed) / processed per minute over the last
RATE_MINUTES minutes, against the window's deadline (its end minus deadline_margin_minutes,
the time the scaling and the deadline alarm aim at).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError
from worker.contract import JOBS_PROCESSED, PAUSED_TAG

from scripts import _cli
from scripts._aws import (
    CLUSTER_OUTPUT,
    DLQ_URL_OUTPUT,
    QUEUE_URL_OUTPUT,
    SERVICE_OUTPUT,
    WORKER_STACK,
    Target,
    add_env_options,
    add_worker_option,
    queue_counts,
    queue_name,
)
from scripts._cli import OpsError, Parser, UsageError, error_code, print_json
from stacks.config import BatchWindow
from stacks.naming import job_metric_namespace

HELP = "one screen: tasks, queue, DLQ, alarms, and the batch's progress against its deadline"
RATE_MINUTES = 15  # processed-per-minute is measured over this many minutes
AGE_LOOKBACK_MINUTES = 15  # SQS publishes once a minute; an idle queue's metrics lag more
PROTECTION_BATCH = 10  # GetTaskProtection takes at most 10 tasks a call


@dataclass(frozen=True)
class Tasks:
    """The service's task counts and how many hold scale-in protection."""

    running: int
    desired: int
    pending: int
    protected: int | None
    """None when unknown (the API is missing or refused; see `protection_note`)."""
    protection_note: str = ""


@dataclass(frozen=True)
class QueueState:
    """A queue's approximate counts; the oldest message's age when known."""

    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: int | None = None


@dataclass(frozen=True)
class Batch:
    """A batch window in progress: what is done, what is left, when it will be finished."""

    window: str
    deadline: str
    """The window's end minus its margin (ISO 8601, the window's timezone)."""
    processed_since_start: int
    left: int
    per_minute: float
    estimated_finish: str | None
    on_time: bool | None
    """None when there is no rate to estimate from (nothing processed lately)."""


@dataclass(frozen=True)
class WorkerState:
    """A worker of the environment: its service's tasks and its batch window's progress."""

    name: str
    queues: tuple[str, ...]
    """The queues it consumes, in priority order."""
    tasks: Tasks
    batch: Batch | None


@dataclass(frozen=True)
class QueueOfEnvironment:
    """A queue of the environment: its depth, its pause tag's value (None: not paused), its DLQ."""

    name: str
    queue: QueueState
    paused: str | None
    dead_letter_queue: QueueState


def add_arguments(parser: Parser) -> None:
    """The command line."""
    add_env_options(parser)
    add_worker_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--now",
        help="evaluate the batch window at this ISO 8601 time, YYYY-MM-DDTHH:MM (UTC unless it "
        "names a zone, e.g. +09:00; default: now)",
    )


def now_option(text: str) -> datetime:
    """--now: an ISO 8601 time, UTC unless it names a zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--now: {text!r} is not an ISO 8601 time; use YYYY-MM-DDTHH:MM (UTC) or "
            "YYYY-MM-DDTHH:MM+HH:MM"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def execute(args: argparse.Namespace) -> int:
    """Collect and print the environment's status."""
    now = now_option(args.now) if args.now else datetime.now(UTC)
    target = Target(args)
    config = target.config
    assert config is not None
    shown = [target.worker_choice()] if args.worker else list(config.fleets)
    cloudwatch = target.client("cloudwatch")
    queues = {
        name: queue_of_environment(target, name, cloudwatch, now)
        for worker in shown
        for name in config.fleets[worker].queues
    }
    workers = [worker_state(target, name, queues, cloudwatch, now) for name in shown]
    alarms = alarms_in_alarm(cloudwatch, f"{config.stack_prefix}-")
    report: dict[str, Any] = {
        "environment": config.name,
        "region": target.region,
        "time": now.isoformat(timespec="seconds"),
    }
    if len(config.fleets) == 1 and len(config.work_queues) == 1:
        [worker], [queue] = workers, queues.values()
        report.update(
            tasks=asdict(worker.tasks),
            queue=asdict(queue.queue),
            paused=queue.paused,
            dead_letter_queue=asdict(queue.dead_letter_queue),
            alarms=alarms,
            batch=asdict(worker.batch) if worker.batch else None,
        )
        lines = render(config.stack_prefix, worker, queue, alarms)
    else:
        report.update(
            workers=[asdict(worker) for worker in workers],
            queues=[asdict(queue) for queue in queues.values()],
            alarms=alarms,
        )
        lines = render_several(config.stack_prefix, workers, list(queues.values()), alarms)
    if args.json:
        print_json(report)
    else:
        print("\n".join(lines))
    return 0


def worker_state(
    target: Target,
    name: str,
    queues: dict[str, QueueOfEnvironment],
    cloudwatch: Any,
    now: datetime,
) -> WorkerState:
    """The worker's tasks, and its batch window's progress on the queues it consumes."""
    assert target.config is not None
    fleet = target.config.fleets[name]
    tasks = task_state(
        target.client("ecs"),
        target.output(WORKER_STACK, CLUSTER_OUTPUT),
        target.worker_output(SERVICE_OUTPUT, name),
    )
    consumed = [queues[queue].queue for queue in fleet.queues]
    namespace = job_metric_namespace(target.config.name, name)
    batch = batch_state(cloudwatch, namespace, fleet.batch_windows, consumed, now)
    return WorkerState(name, tuple(fleet.queues), tasks, batch)


def queue_of_environment(
    target: Target, name: str, cloudwatch: Any, now: datetime
) -> QueueOfEnvironment:
    """The queue NAME of the environment: depth and oldest message, pause tag, DLQ depth."""
    url = target.queue_output(QUEUE_URL_OUTPUT, name)
    queue = queue_state(target, url, cloudwatch, now)
    paused = target.sqs.list_queue_tags(QueueUrl=url).get("Tags", {}).get(PAUSED_TAG)
    dlq = queue_state(target, target.queue_output(DLQ_URL_OUTPUT, name), None, now)
    return QueueOfEnvironment(name, queue, paused, dlq)


def task_state(ecs: Any, cluster: str, service: str) -> Tasks:
    """DescribeServices, then ListTasks + GetTaskProtection of the running tasks."""
    try:
        response = ecs.describe_services(cluster=cluster, services=[service])
    except ClientError as error:
        if error_code(error) == "ClusterNotFoundException":
            raise OpsError(f"ECS cluster {cluster} does not exist") from None
        raise
    found = [s for s in response.get("services", []) if s.get("status") != "INACTIVE"]
    if not found:
        raise OpsError(f"ECS service {service} does not exist in cluster {cluster}")
    described = found[0]
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, serviceName=service, desiredStatus="RUNNING"
    ):
        arns.extend(page.get("taskArns", []))
    protected: int | None = 0
    note = ""
    try:
        for start in range(0, len(arns), PROTECTION_BATCH):
            answer = ecs.get_task_protection(
                cluster=cluster, tasks=arns[start : start + PROTECTION_BATCH]
            )
            protected = (protected or 0) + sum(
                1 for task in answer.get("protectedTasks", []) if task.get("protectionEnabled")
            )
    except ClientError as error:
        protected, note = None, f"GetTaskProtection failed: {error_code(error) or error}"
    return Tasks(
        running=int(described.get("runningCount", 0)),
        desired=int(described.get("desiredCount", 0)),
        pending=int(described.get("pendingCount", 0)),
        protected=protected,
        protection_note=note,
    )


def queue_state(target: Target, url: str, cloudwatch: Any | None, now: datetime) -> QueueState:
    """A queue's counts; with a CloudWatch client also its oldest message's age."""
    counts = queue_counts(target, url)
    age = None
    if cloudwatch is not None:
        age = latest(
            cloudwatch,
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": queue_name(url)},
            now - timedelta(minutes=AGE_LOOKBACK_MINUTES),
            now,
        )
    return QueueState(
        name=queue_name(url),
        **counts,
        oldest_age_seconds=None if age is None else int(age),
    )


def latest(
    cloudwatch: Any,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    start: datetime,
    end: datetime,
) -> float | None:
    """The newest one-minute Maximum of a metric in [start, end]; None without datapoints."""
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=60,
        Statistics=["Maximum"],
    ).get("Datapoints", [])
    if not points:
        return None
    return float(max(points, key=lambda p: p["Timestamp"])["Maximum"])


def total(cloudwatch: Any, namespace: str, metric: str, start: datetime, end: datetime) -> float:
    """The Sum of a metric (no dimensions) over [start, end]."""
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        StartTime=start,
        EndTime=end,
        Period=60,
        Statistics=["Sum"],
    ).get("Datapoints", [])
    return float(sum(p["Sum"] for p in points))


def alarms_in_alarm(cloudwatch: Any, prefix: str) -> list[dict[str, str]]:
    """The environment's alarms (names starting with `prefix`) in state ALARM."""
    found = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=prefix, StateValue="ALARM", AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    ):
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            if alarm.get("StateValue") == "ALARM":  # checked again: not every endpoint filters
                found.append({"name": alarm["AlarmName"], "reason": alarm.get("StateReason", "")})
    return found


def active_window(windows: Sequence[BatchWindow], now: datetime) -> BatchWindow | None:
    """The batch window `now` falls in (in the window's timezone), if any."""
    for window in windows:
        local = now.astimezone(ZoneInfo(window.timezone)).time()
        if window.start <= local < window.end:
            return window
    return None


def batch_state(
    cloudwatch: Any,
    namespace: str,
    windows: Sequence[BatchWindow],
    queues: Sequence[QueueState],
    now: datetime,
) -> Batch | None:
    """Progress (jobs in the worker's metric `namespace`) and estimated finish (of the work in
    `queues`) when `now` is inside a batch window; else None."""
    window = active_window(windows, now)
    if window is None:
        return None
    zone = ZoneInfo(window.timezone)
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), window.start, zone)
    deadline = datetime.combine(local.date(), window.deadline, zone)
    processed = total(cloudwatch, namespace, JOBS_PROCESSED, start, now)
    recent_start = max(start, now - timedelta(minutes=RATE_MINUTES))
    minutes = max(1.0, (now - recent_start).total_seconds() / 60)
    per_minute = total(cloudwatch, namespace, JOBS_PROCESSED, recent_start, now) / minutes
    left = sum(queue.visible + queue.in_flight + queue.delayed for queue in queues)
    finish: datetime | None = None
    if left == 0:
        finish = local
    elif per_minute > 0:
        finish = local + timedelta(minutes=math.ceil(left / per_minute))
    return Batch(
        window=f"{window.start:%H:%M}-{window.end:%H:%M} {window.timezone}",
        deadline=deadline.isoformat(timespec="minutes"),
        processed_since_start=int(processed),
        left=left,
        per_minute=round(per_minute, 1),
        estimated_finish=finish.isoformat(timespec="minutes") if finish else None,
        on_time=None if finish is None else finish <= deadline,
    )


def render(
    prefix: str, worker: WorkerState, queue: QueueOfEnvironment, alarms: list[dict[str, str]]
) -> list[str]:
    """The screen of an environment with one worker and one queue."""
    return [
        prefix,
        *tasks_lines(worker.tasks),
        *queue_lines(queue),
        *alarm_lines(alarms),
        *batch_lines(worker.batch),
    ]


def render_several(
    prefix: str,
    workers: Sequence[WorkerState],
    queues: Sequence[QueueOfEnvironment],
    alarms: list[dict[str, str]],
) -> list[str]:
    """The screen of an environment with several queues or workers: each worker (tasks,
    batch), then each queue (depth, pause, DLQ), then the alarms."""
    lines = [prefix]
    for worker in workers:
        lines.append(f"  worker {worker.name}: consumes {', '.join(worker.queues)}")
        lines.extend(
            f"  {line}" for line in [*tasks_lines(worker.tasks), *batch_lines(worker.batch)]
        )
    for queue in queues:
        lines.append(f"  queue {queue.name}")
        lines.extend(f"  {line}" for line in queue_lines(queue))
    return [*lines, *alarm_lines(alarms)]


def tasks_lines(tasks: Tasks) -> list[str]:
    """The service's tasks and how many are protected from scale-in."""
    protected = (
        f"{tasks.protected} of {tasks.running} protected from scale-in"
        if tasks.protected is not None
        else f"protection: unknown ({tasks.protection_note})"
    )
    return [
        f"  tasks   running {tasks.running} / desired {tasks.desired} / pending "
        f"{tasks.pending}; {protected}"
    ]


def queue_lines(of: QueueOfEnvironment) -> list[str]:
    """The queue's depth and oldest message, its pause (when paused), its DLQ's depth."""
    queue, dlq = of.queue, of.dead_letter_queue
    age = (
        "oldest: unknown (no datapoint)"
        if queue.oldest_age_seconds is None
        else f"oldest {_duration(queue.oldest_age_seconds)}"
    )
    return [
        f"  queue   {queue.visible} visible, {queue.in_flight} in flight, {age} ({queue.name})",
        *(
            [f"  paused  {of.paused} (the workers take no new work; `continue` resumes)"]
            if of.paused
            else []
        ),
        f"  dlq     {dlq.visible} messages ({dlq.name})",
    ]


def alarm_lines(alarms: list[dict[str, str]]) -> list[str]:
    """How many alarms are in ALARM, one line each."""
    return [
        f"  alarms  {len(alarms)} in ALARM" + ("" if alarms else " (none)"),
        *[f"          {alarm['name']}: {alarm['reason']}" for alarm in alarms],
    ]


def batch_lines(batch: Batch | None) -> list[str]:
    """The batch window's progress and estimated finish, or that there is none now."""
    if batch is None:
        return ["  batch   no batch window now"]
    lines = [
        f"  batch   window {batch.window}: {batch.processed_since_start} processed since "
        f"its start, {batch.left} left, {batch.per_minute:g}/min over the last "
        f"{RATE_MINUTES} min"
    ]
    if batch.estimated_finish is None:
        lines.append(
            f"          finish: unknown (nothing processed lately); deadline "
            f"{batch.deadline[11:16]}"
        )
    else:
        verdict = "on time" if batch.on_time else "LATE"
        lines.append(
            f"          estimated finish {batch.estimated_finish[11:16]}, deadline "
            f"{batch.deadline[11:16]}: {verdict}"
        )
    return lines


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.status`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
