"""`consumer` mode: the team's own long-running consumer (for example `php artisan queue:work`)
run as a child of a small watcher, so the kit still recycles it by memory.

The watcher starts the command (split like a shell would split it; no shell runs it) in its own
process group (supervisord gives every program one), so supervisord's `killasgroup` reaches the
consumer and whatever it started; the kernel kills the consumer if the watcher dies
(PR_SET_PDEATHSIG).
About once a second it sums the RSS of the processes of its group but itself; above
MAX_MEMORY_MIB_PER_PROCESS it sends the consumer SIGTERM (Laravel's `queue:work` and Symfony's
`messenger:consume` finish the current job and exit), logs `recycle_memory`, and exits 0 when
the consumer has gone, so supervisord starts a fresh one. A consumer still running
WORKER_STOP_GRACE_SECONDS after that SIGTERM gets SIGKILL. SIGTERM/SIGINT to the watcher are
forwarded to the consumer (its own graceful stop); the consumer's exit status is the watcher's.

What this mode does not do (the docs' table): no visibility heartbeat, no task scale-in
protection, no hand-back on SIGTERM, no `job` lines (hence no job metrics): the framework
consumer receives and deletes the messages itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from types import FrameType

from worker.handlers import SAMPLE_SECONDS, ExitWatch, group_rss_bytes
from worker.logs import EventLog
from worker.settings import Settings

# supervisord counts a process that exits within `startsecs` (1 s) as a failed start.
MIN_LIFETIME_SECONDS = 1.5
_PR_SET_PDEATHSIG = 1


def _die_with_watcher() -> None:
    """In the child before exec: SIGKILL when the watcher dies (no orphan consumer)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ConsumerWatcher:
    """Runs the consumer command, forwards stop signals, recycles it above the memory limit."""

    def __init__(self, settings: Settings, argv: list[str], log: EventLog) -> None:
        self.settings = settings
        self.argv = argv
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_reason = ""
        self._stop_sent_at: float | None = None
        self.peak_rss = 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop("sigterm", signum)

    def _stop(self, reason: str, signum: int = signal.SIGTERM) -> None:
        """Ask the consumer to stop (once): its own graceful stop."""
        if self.process is None or self._stop_sent_at is not None:
            return
        self.stop_reason = reason
        self._stop_sent_at = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def run(self) -> int:
        """Run the consumer to its end; returns the exit status for the watcher."""
        started = time.monotonic()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        self.process = subprocess.Popen(
            self.argv, cwd=self.settings.workdir, preexec_fn=_die_with_watcher
        )
        self.log.info(
            "worker_started",
            mode="consumer",
            handler=self.settings.handler,
            consumer_pid=self.process.pid,
        )
        limit = self.settings.max_memory_mib_per_process
        exited = ExitWatch(self.process)
        while not exited.wait(SAMPLE_SECONDS):
            rss = group_rss_bytes(os.getpgid(0), exclude=os.getpid())
            self.peak_rss = max(self.peak_rss, rss)
            if limit and rss > limit * 2**20 and self._stop_sent_at is None:
                self.log.warning("recycle_memory", rss_mib=round(rss / 2**20, 1), limit_mib=limit)
                self._stop("recycle_memory")
            sent = self._stop_sent_at
            if sent is not None and time.monotonic() - sent > self.settings.stop_grace_seconds:
                self.process.kill()
        code = self.process.returncode
        asked = self._stop_sent_at is not None
        status = 0 if asked and code in (0, -signal.SIGTERM, -signal.SIGINT) else code
        status = status if status >= 0 else 128 - status
        if status == 0:  # a clean stop must not look like a failed start to supervisord
            time.sleep(max(0.0, started + MIN_LIFETIME_SECONDS - time.monotonic()))
        self.log.info(
            "worker_stopped",
            reason=self.stop_reason or "exited",
            exit_code=code,
            max_rss_mib=round(self.peak_rss / 2**20, 1),
        )
        return status
