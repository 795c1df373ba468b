"""Handlers for the runtime's tests: each run leaves lines in a record file, so a test can
count starts, completions and overlapping runs per message (`<message_id> <what> <pid>`).

Body: JSON {"record": path, "duration_seconds": float, "fail": bool, "fail_on_first": bool
(fails on receive 1 only), "permanent": bool,
"hang_on_first": bool (sleeps an hour on receive 1), "leak_mib": int (kept forever),
"child_seconds": float (on receive 1 only, the job shells out to a child that sleeps this long
and then records `child_done`; the job waits for it)}.

Every run holds an exclusive lock on `<record>.<message_id>.lock` for as long as it or any
process it started lives (the child inherits the descriptor): a run that finds the lock taken
records `overlap`, i.e. two runs of one message at once. The kernel drops the lock only when
the last process holding it is gone, so a child that outlived its killed job is caught too.
`python -m tests.unit.worker.recording_handlers` runs the same job as a command (body on
stdin, the message in WORKER_MESSAGE_ID / WORKER_RECEIVE_COUNT, its attributes read from
WORKER_MESSAGE_ATTRIBUTES_FILE).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from worker import contract
from worker.handlers import EX_DATAERR, JobContext, PermanentFailure

_LEAKED: list[bytes] = []
_ROOT = Path(__file__).resolve().parents[3]
RECORDED_COMMAND = (
    f"PYTHONPATH={_ROOT}:{_ROOT / 'worker_image'} {sys.executable}"
    " -m tests.unit.worker.recording_handlers"
)
"""The recorded job as a command-mode WORKER_HANDLER."""


def _record(path: str, message_id: str, what: str) -> None:
    with open(path, "a", encoding="ascii") as record:  # O_APPEND: lines never interleave
        record.write(f"{message_id} {what} {os.getpid()}\n")


def _take_run_lock(path: str, message_id: str) -> int:
    """Lock this message's run file; record `overlap` when another run still holds it."""
    fd = os.open(f"{path}.{message_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _record(path, message_id, "overlap")
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def recorded_job(body: str, context: JobContext) -> None:
    """Run the job the body describes, recording its start and its completion."""
    job = json.loads(body)
    record = job["record"]
    lock = _take_run_lock(record, context.message_id)
    try:
        _record(record, context.message_id, "start")
        if job.get("hang_on_first") and context.receive_count == 1:
            time.sleep(3600)
        if job.get("child_seconds") and context.receive_count == 1:
            say = f"echo '{context.message_id} child_done '$$ >> {record}"
            script = f"sleep {float(job['child_seconds'])}; {say}"
            subprocess.run(["/bin/sh", "-c", script], pass_fds=(lock,), check=True)
        time.sleep(float(job.get("duration_seconds", 0)))
        if job.get("leak_mib"):
            _LEAKED.append(b"\x01" * (int(job["leak_mib"]) * 2**20))
        if job.get("permanent"):
            raise PermanentFailure("asked to fail permanently")
        if job.get("fail") or (job.get("fail_on_first") and context.receive_count == 1):
            raise RuntimeError("asked to fail")
        _record(record, context.message_id, "done")
    finally:
        os.close(lock)


def runs(path: Path) -> dict[str, dict[str, int]]:
    """{message_id: {"start": n, "done": n, ...}} from a record file (empty when absent);
    `overlap` and `child_done` appear only when they happened."""
    counts: dict[str, dict[str, int]] = {}
    if path.exists():
        for line in path.read_text(encoding="ascii").splitlines():
            message_id, what, _pid = line.split()
            entry = counts.setdefault(message_id, {"start": 0, "done": 0})
            entry[what] = entry.get(what, 0) + 1
    return counts


def started(path: Path) -> list[str]:
    """The message ids in the order their runs started (empty when the record is absent)."""
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text(encoding="ascii").splitlines()]
    return [message_id for message_id, what, _pid in lines if what == "start"]


def main() -> int:
    """The recorded job as a command: exit 0 done, 65 permanent, 1 failed."""
    path = os.environ.get(contract.MESSAGE_ATTRIBUTES_FILE_VARIABLE)
    if path:
        with open(path, encoding="utf-8") as file:
            attributes = json.load(file)
    else:  # a kit before the file
        attributes = json.loads(os.environ.get(contract.MESSAGE_ATTRIBUTES_VARIABLE, "{}"))
    context = JobContext(
        os.environ["WORKER_MESSAGE_ID"], int(os.environ["WORKER_RECEIVE_COUNT"]), attributes
    )
    try:
        recorded_job(sys.stdin.read(), context)
    except PermanentFailure:
        return EX_DATAERR
    except Exception:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
