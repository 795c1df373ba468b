"""Pause the worker: it takes no new work within a minute and finishes what runs.

    queue-worker pause --env prod
    queue-worker pause --env prod --json
    queue-worker pause --env prod --worker mails   # one worker of several: its queues, service
    queue-worker pause --queue NAME|URL            # the flag only: no stacks, no scaling change

Horizon's `horizon:pause` for the kit; `queue-worker continue` undoes it. Three steps, each
done only when not done yet (run it again after a failure or a deploy; it says what it did):

1. Tags the work queue `queue-worker:paused` (each queue of the worker, with several; its
   value: when, and the service's desired count then). Every worker loop reads the tag before
   a receive, at most every PAUSE_CHECK_SECONDS (30 s): from then on it receives nothing,
   finishes and deletes what it holds (nothing is handed back, nothing runs twice), releases its
   task protection and only polls the tag.
2. Suspends the service's scalable target (RegisterScalableTarget: dynamic scale-in, dynamic
   scale-out and scheduled scaling suspended): neither the queue-depth step scaling nor a batch
   window changes the service's count while paused.
3. Sets the service's desired count to 0 (UpdateService): idle tasks stop now; a task that still
   holds scale-in protection (a process running a job) stops once its jobs are done.

An environment with several workers names one with `--worker` (its queues and its service);
`--queue` names no queue there: a worker's queues pause together. `status` shows the pause. In
`consumer` handler mode the fleet's watch reads the tag instead of the loop, once a task at the
same interval, and each process's watcher obeys it: it sends the framework's consumer its
graceful stop (SIGTERM: Laravel's `queue:work` and Symfony's `messenger:consume` end the current
job and exit), waits without a consumer while the tag is there and starts a fresh one once it
is gone (worker.pause.PauseReader, worker.consumer).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker.contract import PAUSE_CHECK_SECONDS, PAUSED_TAG

from scripts import _cli
from scripts._aws import (
    CLUSTER_OUTPUT,
    QUEUE_URL_OUTPUT,
    SERVICE_OUTPUT,
    WORKER_STACK,
    Target,
    add_queue_options,
    add_worker_option,
    queue_name,
)
from scripts._cli import Parser, UsageError, print_json
from scripts.operate.status import Tasks, task_state

HELP = "stop taking work (the running jobs finish) and keep scaling from starting tasks"
SCALABLE_DIMENSION = "ecs:service:DesiredCount"
# The three scaling activities RegisterScalableTarget suspends (pause) and resumes (continue).
SUSPEND_KEYS = (
    "DynamicScalingInSuspended",
    "DynamicScalingOutSuspended",
    "ScheduledScalingSuspended",
)


@dataclass(frozen=True)
class Service:
    """The environment's worker service, as Application Auto Scaling names it."""

    cluster: str
    name: str

    @property
    def resource_id(self) -> str:
        """`service/CLUSTER/SERVICE`: the scalable target's ResourceId."""
        return f"service/{self.cluster}/{self.name}"


def add_arguments(parser: Parser) -> None:
    """The command line (pause and continue)."""
    add_queue_options(parser)
    add_worker_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def service_of(target: Target) -> Service | None:
    """The worker service of --env (its stack's outputs); None with --queue."""
    if target.config is None:
        return None
    return Service(
        target.output(WORKER_STACK, CLUSTER_OUTPUT), target.worker_output(SERVICE_OUTPUT)
    )


def flagged_queues(args: argparse.Namespace, target: Target, verb: str) -> list[str]:
    """The URLs of the queues that carry the pause tag: with --env every queue the worker
    consumes (checked to exist), else --queue's. UsageError for --queue with --env."""
    if target.config is None:
        return [target.queue_url()]
    if args.queue:
        workers = ", ".join(target.config.fleets)
        raise UsageError(
            f"--queue: with --env, {verb} acts on a worker and every queue it consumes; "
            f"pass --worker NAME (workers: {workers})"
        )
    fleet = target.config.fleets[target.worker_choice()]
    urls = [target.queue_output(QUEUE_URL_OUTPUT, queue) for queue in fleet.queues]
    for url in urls:
        target.attributes(url, "QueueArn")
    return urls


def by_queue(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report's fields of each flagged queue (by name): `queue` and the fields of the one
    queue, else `queues` mapping each name to its fields."""
    if len(fields) == 1:
        [(name, only)] = fields.items()
        return {"queue": name, **only}
    return {"queues": fields}


def pause_tag(sqs: Any, url: str) -> str | None:
    """The value of the queue's pause tag; None when the queue is not paused."""
    tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    value = tags.get(PAUSED_TAG)
    return None if value is None else str(value)


def tag_value(now: datetime, desired: int | None) -> str:
    """`since=2026-12-07T00:40:00Z desired=3` (no desired count without a service)."""
    since = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"since={since}" + ("" if desired is None else f" desired={desired}")


def tag_fields(value: str) -> dict[str, str]:
    """The `key=value` words of a pause tag's value."""
    return dict(word.split("=", 1) for word in value.split() if "=" in word)


def scalable_target(autoscaling: Any, service: Service) -> dict[str, Any] | None:
    """The service's scalable target (DescribeScalableTargets); None when it has none."""
    response = autoscaling.describe_scalable_targets(
        ServiceNamespace="ecs",
        ResourceIds=[service.resource_id],
        ScalableDimension=SCALABLE_DIMENSION,
    )
    found = response.get("ScalableTargets", [])
    return dict(found[0]) if found else None


def suspended(found: dict[str, Any]) -> bool:
    """Whether all three of a scalable target's scaling activities are suspended."""
    state = found.get("SuspendedState") or {}
    return all(bool(state.get(key)) for key in SUSPEND_KEYS)


def suspend(autoscaling: Any, service: Service, value: bool) -> None:
    """Suspend (True) or resume (False) all three scaling activities of the service's target;
    its min and max stay as they are (RegisterScalableTarget updates what it is given)."""
    autoscaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=service.resource_id,
        ScalableDimension=SCALABLE_DIMENSION,
        SuspendedState=dict.fromkeys(SUSPEND_KEYS, value),
    )


def set_desired(ecs: Any, service: Service, count: int) -> None:
    """UpdateService with the new desired count (nothing else changes)."""
    ecs.update_service(cluster=service.cluster, service=service.name, desiredCount=count)


def finish(args: argparse.Namespace, report: dict[str, Any], lines: list[str]) -> int:
    """Print the JSON report (--json) or the lines of what was done; exit 0."""
    if args.json:
        print_json(report)
    else:
        print("\n".join(lines))
    return 0


def execute(args: argparse.Namespace) -> int:
    """Set the flag, suspend scaling, set the count to 0; print what was done."""
    target = Target(args)
    urls = flagged_queues(args, target, "pause")
    service = service_of(target)
    tasks: Tasks | None = None
    if service is not None:
        tasks = task_state(target.client("ecs"), service.cluster, service.name)
    lines: list[str] = []
    value = tag_value(datetime.now(UTC), tasks.desired if tasks else None)
    flagged: dict[str, dict[str, Any]] = {}
    for url in urls:
        name, existing = queue_name(url), pause_tag(target.sqs, url)
        if existing is None:
            target.sqs.tag_queue(QueueUrl=url, Tags={PAUSED_TAG: value})
            lines.append(
                f"tagged {name} {PAUSED_TAG}={value}: each worker process stops receiving "
                f"within {PAUSE_CHECK_SECONDS:g} s and finishes what it holds"
            )
        else:
            lines.append(f"{name} was already tagged {PAUSED_TAG}={existing}")
        flagged[name] = {"value": existing or value, "already_paused": existing is not None}
    report: dict[str, Any] = {**by_queue(flagged), "tag": PAUSED_TAG}
    if service is None or tasks is None:
        lines.append("--queue: the flag only (--env also suspends scaling and stops the tasks)")
        report.update(scaling=None, desired_count=None)
    else:
        report.update(pause_service(target, service, tasks, lines))
    return finish(args, report, lines)


def pause_service(
    target: Target, service: Service, tasks: Tasks, lines: list[str]
) -> dict[str, Any]:
    """Steps 2 and 3: suspend the scalable target, desired count 0; the report's fields."""
    autoscaling = target.client("application-autoscaling")
    found = scalable_target(autoscaling, service)
    if found is None:
        scaling = "none"
        lines.append(f"{service.resource_id} has no scalable target: no scaling to suspend")
    elif suspended(found):
        scaling = "already suspended"
        lines.append(f"scaling of {service.resource_id} was already suspended")
    else:
        suspend(autoscaling, service, True)
        scaling = "suspended"
        lines.append(
            f"suspended scaling of {service.resource_id}: step scaling (in and out) and the "
            "batch windows' scheduled actions"
        )
    if tasks.desired:
        set_desired(target.client("ecs"), service, 0)
        busy = ""
        if tasks.protected is None:
            busy = "; a task still running a job stops once it is done"
        elif tasks.protected:
            busy = f"; {tasks.protected} protected tasks stop once their jobs are done"
        lines.append(
            f"desired count of {service.name} {tasks.desired} -> 0: idle tasks stop now{busy}"
        )
    else:
        lines.append(f"desired count of {service.name} was already 0")
    return {
        "scaling": scaling,
        "desired_count": {"before": tasks.desired, "after": 0},
        "running_tasks": tasks.running,
        "protected_tasks": tasks.protected,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.pause`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
