"""Example handler: `worker.examples:sleep_job`, an I/O-bound job simulated by sleeping."""

from __future__ import annotations

import json
import time

from worker.handlers import JobContext, PermanentFailure


def sleep_job(body: str, context: JobContext) -> None:
    """Body: {"duration_seconds": float, "fail": bool = false, "permanent": bool = false}.

    Sleeps `duration_seconds` (default 1), then raises RuntimeError when `fail` (retried, then
    dead-lettered by SQS after maxReceiveCount) or PermanentFailure when `permanent` (sent to
    the DLQ at once). A body that is not a JSON object raises PermanentFailure: retrying
    cannot fix it.
    """
    try:
        job = json.loads(body)
    except ValueError as error:
        raise PermanentFailure(f"malformed body: {error}") from error
    if not isinstance(job, dict):
        raise PermanentFailure("malformed body: not a JSON object")
    time.sleep(float(job.get("duration_seconds", 1.0)))
    if job.get("permanent"):
        raise PermanentFailure("job asked for a permanent failure")
    if job.get("fail"):
        raise RuntimeError(f"job failed on receive {context.receive_count}")
