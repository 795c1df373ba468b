"""Handlers for the runtime's tests: each run leaves lines in a record file, so a test can
count starts and completions per message (`<message_id> start|done`).

Body: JSON {"record": path, "duration_seconds": float, "fail": bool, "permanent": bool,
"hang_on_first": bool (sleeps an hour on receive 1), "leak_mib": int (kept forever)}.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from worker.handlers import JobContext, PermanentFailure

_LEAKED: list[bytes] = []


def _record(path: str, message_id: str, what: str) -> None:
    with open(path, "a", encoding="ascii") as record:  # O_APPEND: lines never interleave
        record.write(f"{message_id} {what} {os.getpid()}\n")


def recorded_job(body: str, context: JobContext) -> None:
    """Run the job the body describes, recording its start and its completion."""
    job = json.loads(body)
    _record(job["record"], context.message_id, "start")
    if job.get("hang_on_first") and context.receive_count == 1:
        time.sleep(3600)
    time.sleep(float(job.get("duration_seconds", 0)))
    if job.get("leak_mib"):
        _LEAKED.append(b"\x01" * (int(job["leak_mib"]) * 2**20))
    if job.get("permanent"):
        raise PermanentFailure("asked to fail permanently")
    if job.get("fail"):
        raise RuntimeError("asked to fail")
    _record(job["record"], context.message_id, "done")


def runs(path: Path) -> dict[str, dict[str, int]]:
    """{message_id: {"start": n, "done": n}} from a record file (empty when absent)."""
    counts: dict[str, dict[str, int]] = {}
    if path.exists():
        for line in path.read_text(encoding="ascii").splitlines():
            message_id, what, _pid = line.split()
            entry = counts.setdefault(message_id, {"start": 0, "done": 0})
            entry[what] += 1
    return counts
