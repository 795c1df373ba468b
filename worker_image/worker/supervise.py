"""The container's entrypoint around supervisord, and supervisord's FATAL event listener.

`python -m worker.supervise` (PID 1 in the image): fills in defaults for the variables that
supervisord.conf expands (so the image runs with just QUEUE_URL), starts `supervisord -n`,
forwards SIGTERM/SIGINT/SIGHUP to it, reaps orphans, and exits with supervisord's status, or 1
when a worker program went FATAL (it could not stay up: ECS must replace the task, not keep
a crash loop alive). supervisord itself always exits 0, hence this wrapper.

`python -m worker.supervise --fatal-listener` (the [eventlistener:fatal] of supervisord.conf):
on PROCESS_STATE_FATAL, leaves a marker in WORKER_RUN_DIR and SIGTERMs supervisord, which stops
the other workers gracefully (their jobs get their grace period).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

DEFAULTS = {
    "WORKER_PROCESSES": "2",
    "SUPERVISOR_STOPWAITSECS": "110",
    "WORKER_RUN_DIR": "/tmp/worker-run",
}
FATAL_MARKER = "fatal"
CONF = Path(__file__).resolve().parent.parent / "supervisord.conf"


def _say(level: str, event: str, **fields: object) -> None:
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "event": event,
        "process": "supervise",
        "pid": os.getpid(),
        **fields,
    }
    print(json.dumps(record), file=sys.stderr, flush=True)


def run_supervisord(environ: dict[str, str]) -> int:
    """Start supervisord with `environ` + defaults, wait for it; return the exit status."""
    env = {**environ}
    for name, value in DEFAULTS.items():
        if not env.get(name):
            env[name] = value
    run_dir = Path(env["WORKER_RUN_DIR"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FATAL_MARKER).unlink(missing_ok=True)
    bin_dir = str(Path(sys.executable).parent)  # the venv's bin: python and supervisord
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    conf = env.get("SUPERVISOR_CONF") or str(CONF)
    supervisord = os.path.join(bin_dir, "supervisord")
    pid = os.posix_spawn(supervisord, [supervisord, "-n", "-c", conf], env)

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:  # as PID 1, also reap orphans re-parented to us
        child, status = os.waitpid(-1, 0)
        if child == pid:
            break
    code = os.waitstatus_to_exitcode(status)
    if (run_dir / FATAL_MARKER).exists():
        _say("error", "fleet_failed", reason="a worker program went FATAL", supervisord_exit=code)
        return 1
    return code if code >= 0 else 128 - code


def fatal_listener() -> None:
    """supervisord eventlistener protocol: READY, read header + payload, answer OK."""
    run_dir = Path(os.environ.get("WORKER_RUN_DIR") or DEFAULTS["WORKER_RUN_DIR"])
    inp = sys.stdin
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        line = inp.readline()
        if not line:
            return
        header = dict(token.split(":", 1) for token in line.split())
        payload = inp.read(int(header["len"]))
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()
        if header.get("eventname") == "PROCESS_STATE_FATAL":
            fields = dict(token.split(":", 1) for token in payload.split())
            _say("error", "process_fatal", program=fields.get("processname", "?"))
            (run_dir / FATAL_MARKER).write_text(payload)
            os.kill(os.getppid(), signal.SIGTERM)


if __name__ == "__main__":
    if sys.argv[1:] == ["--fatal-listener"]:
        fatal_listener()
    else:
        sys.exit(run_supervisord(dict(os.environ)))
