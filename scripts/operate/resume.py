"""Continue after `queue-worker pause`: scaling and the batch windows resume, the loops receive.

    queue-worker continue --env prod
    queue-worker continue --env prod --json
    queue-worker continue --env prod --worker mails
    queue-worker continue --queue NAME|URL    # the flag only

Horizon's `horizon:continue` for the kit (this module is scripts/operate/resume.py: `continue`
is a Python keyword). Each step only when needed, in this order, so that a failed run leaves the
queue paused and a second run finishes the job:

1. Resumes the service's scalable target (RegisterScalableTarget, nothing suspended).
2. Sets the service's desired count back to the count the pause tag recorded, kept within the
   scalable target's current min and max (a batch window's min, if one is in force). From
   there the step scaling takes over: CloudWatch invokes a scaling action every minute while
   its alarm stays in ALARM, so a queue that grew during the pause adds tasks. A batch
   window's start or end that fell inside the pause is not run afterwards (Application Auto
   Scaling skips a scheduled action while scheduled scaling is suspended).
3. Removes the tag (from each queue of the worker, with several): each worker loop receives
   again within PAUSE_CHECK_SECONDS (30 s).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from worker.contract import PAUSE_CHECK_SECONDS, PAUSED_TAG

from scripts import _cli
from scripts._aws import Target, queue_name
from scripts._cli import Parser
from scripts.operate.pause import (
    SUSPEND_KEYS,
    Service,
    by_queue,
    finish,
    flagged_queues,
    pause_tag,
    scalable_target,
    service_of,
    set_desired,
    suspend,
    tag_fields,
)
from scripts.operate.pause import add_arguments as pause_arguments
from scripts.operate.status import task_state

HELP = "undo pause: scaling and the batch windows resume, the workers receive again"


def add_arguments(parser: Parser) -> None:
    """The command line (as pause's)."""
    pause_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    """Resume scaling, restore the count, remove the flag; print what was done."""
    target = Target(args)
    urls = flagged_queues(args, target, "continue")
    service = service_of(target)
    tags = {url: pause_tag(target.sqs, url) for url in urls}
    lines: list[str] = []
    flagged = {queue_name(url): {"was_paused": tag is not None} for url, tag in tags.items()}
    report: dict[str, Any] = {**by_queue(flagged), "tag": PAUSED_TAG}
    if service is None:
        report.update(scaling=None, desired_count=None)
    else:
        recorded = next((tag for tag in tags.values() if tag is not None), None)
        report.update(resume_service(target, service, recorded, lines))
    for url, existing in tags.items():
        name = queue_name(url)
        if existing is None:
            lines.append(f"{name} has no {PAUSED_TAG} tag: the workers were not paused")
        else:
            target.sqs.untag_queue(QueueUrl=url, TagKeys=[PAUSED_TAG])
            lines.append(
                f"removed {PAUSED_TAG} from {name}: each worker process receives again within "
                f"{PAUSE_CHECK_SECONDS:g} s"
            )
    return finish(args, report, lines)


def resume_service(
    target: Target, service: Service, tag: str | None, lines: list[str]
) -> dict[str, Any]:
    """Steps 1 and 2: resume the scalable target, restore the desired count; the report's
    fields."""
    autoscaling = target.client("application-autoscaling")
    found = scalable_target(autoscaling, service)
    if found is None:
        scaling = "none"
        lines.append(f"{service.resource_id} has no scalable target: no scaling to resume")
    elif any((found.get("SuspendedState") or {}).get(key) for key in SUSPEND_KEYS):
        suspend(autoscaling, service, False)
        scaling = "resumed"
        lines.append(
            f"resumed scaling of {service.resource_id}: step scaling and the batch windows"
        )
    else:
        scaling = "not suspended"
        lines.append(f"scaling of {service.resource_id} was not suspended")
    ecs = target.client("ecs")
    before = task_state(ecs, service.cluster, service.name).desired
    recorded = tag_fields(tag or "").get("desired", "")
    wanted = int(recorded) if recorded.isdigit() else None
    if wanted is not None and found is not None:
        wanted = min(max(wanted, int(found["MinCapacity"])), int(found["MaxCapacity"]))
    if wanted is None or wanted == before:
        after = before
        lines.append(f"desired count of {service.name} left at {before}")
    else:
        set_desired(ecs, service, wanted)
        after = wanted
        lines.append(f"desired count of {service.name} {before} -> {wanted} (as before the pause)")
    return {"scaling": scaling, "desired_count": {"before": before, "after": after}}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.operate.resume`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
