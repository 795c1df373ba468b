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

The hard ceiling: the consumer ends its current job after that SIGTERM, and a job that leaks
goes on leaking until it ends. Once the consumer is above the limit the watcher samples every
0.25 s, and above MEMORY_CEILING_FACTOR x the limit (before or after the SIGTERM) it SIGKILLs
the consumer's process group at once and logs `kill_memory`; the watcher then exits 0 like a
recycle. The job it was running is not deleted: SQS delivers it again after its visibility
timeout (and its receives count toward the redrive to the DLQ). So one leaking consumer cannot
take the memory of the task's other processes.

The pause (`queue-worker pause`): the watcher reads no tag and loads no boto3. The fleet's watch
reads the queues' pause tag once a task, every PAUSE_CHECK_SECONDS (30 s; worker.pause
.PauseReader), and leaves WORKER_RUN_DIR/paused while every queue carries it; the watcher looks
for that file at each memory sample (about once a second). While it is there the watcher sends
the consumer the recycle's SIGTERM (the framework ends its current job and exits; SIGKILL after
WORKER_STOP_GRACE_SECONDS), logs `consumer_paused` once the consumer is gone and stays up
without one (an exit would be a restart to supervisord, and fast ones a failed start), looking
at the file every PAUSED_SAMPLE_SECONDS; when it is gone it starts a fresh consumer and logs
`consumer_resumed`. A watcher that starts while the file is there starts no consumer. A
SIGTERM/SIGINT while paused ends the watcher at once, with 0.

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
from worker.supervise import fleet_paused, fleet_stopping, group_members

# supervisord counts a process that exits within `startsecs` (1 s) as a failed start.
MIN_LIFETIME_SECONDS = 1.5
# Above this multiple of MAX_MEMORY_MIB_PER_PROCESS the consumer is killed at once, mid-job.
MEMORY_CEILING_FACTOR = 1.5
# How often memory is sampled once the consumer is above the limit (else SAMPLE_SECONDS).
HOT_SAMPLE_SECONDS = 0.25
# How often a paused watcher (no consumer) looks for the pause file's removal or a stop signal.
PAUSED_SAMPLE_SECONDS = 0.2
PAUSE = "pause"
"""The stop reason of a consumer stopped because its queues carry the pause tag."""
CONSUMER_PAUSED_EVENT = "consumer_paused"
"""Logged once the consumer stopped for the pause (``exit_code``): the watcher waits without it."""
CONSUMER_RESUMED_EVENT = "consumer_resumed"
"""Logged when a fresh consumer starts after the pause (``consumer_pid``)."""
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
        self.stopping = False  # SIGTERM/SIGINT reached the watcher
        self._stop_sent_at: float | None = None
        self.peak_rss = 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.stop_reason == PAUSE:  # already stopping for the pause: now for good
            self.stop_reason = "sigterm"
        self._stop("sigterm", signum)

    def _stop(self, reason: str, signum: int = signal.SIGTERM) -> None:
        """Ask the consumer to stop (once): its own graceful stop."""
        if self.process is None or self._stop_sent_at is not None:
            return
        self.stop_reason = reason
        self._stop_sent_at = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def _kill_for_memory(self, rss: int, limit: int) -> None:
        """SIGKILL the consumer's process group mid-job: it is above the hard ceiling."""
        if self.process is None or self.stop_reason == "kill_memory":
            return
        ceiling = limit * MEMORY_CEILING_FACTOR
        rss_mib = round(rss / 2**20, 1)
        self.log.error(
            "kill_memory",
            rss_mib=rss_mib,
            limit_mib=limit,
            ceiling_mib=round(ceiling, 1),
            reason=f"killed mid-job: the consumer used {rss_mib:g} MiB, above"
            f" {MEMORY_CEILING_FACTOR:g} x MAX_MEMORY_MIB_PER_PROCESS={limit} ({ceiling:g} MiB)",
        )
        self.stop_reason = "kill_memory"
        self._stop_sent_at = self._stop_sent_at or time.monotonic()
        self._kill_consumer_group()

    def _kill_consumer_group(self) -> None:
        """SIGKILL the consumer and what it started: the watcher's process group but the
        watcher, when the watcher leads it (supervisord's setpgrp), else the consumer alone."""
        assert self.process is not None
        if os.getpgid(0) != os.getpid():
            self.process.kill()
            return
        for pid, _ in group_members(os.getpgid(0)):
            if int(pid) != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)

    def run(self) -> int:
        """Run the consumer to its end (with a pause: stop it, wait, start a fresh one); returns
        the exit status for the watcher."""
        started = time.monotonic()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        if fleet_stopping(self.settings.run_dir):  # a stop signal lost before our handlers
            self.log.info("worker_stopped", reason="sigterm", exit_code=None, max_rss_mib=0.0)
            return 0
        code: int | None = None
        resumed = False
        while True:
            while self.paused() and not self.stopping:  # paused: no consumer
                time.sleep(PAUSED_SAMPLE_SECONDS)
            if self.stopping:
                self.stop_reason = self.stop_reason or "sigterm"
                break
            code = self._run_consumer(resumed)
            if self.stop_reason != PAUSE or self.stopping:
                break
            self.log.info(CONSUMER_PAUSED_EVENT, exit_code=code)
            self.process, self._stop_sent_at, self.stop_reason = None, None, ""
            resumed = True
        asked = self._stop_sent_at is not None or code is None
        clean: tuple[int | None, ...] = (None, 0, -signal.SIGTERM, -signal.SIGINT)
        if self.stop_reason == "kill_memory":
            clean = (*clean, -signal.SIGKILL)  # a recycle, not a failure: start a fresh one
        status = 0 if asked and code in clean else (code or 0)
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

    def paused(self) -> bool:
        """Whether the fleet's watch found every queue paused (its file in WORKER_RUN_DIR)."""
        return fleet_paused(self.settings.run_dir)

    def _run_consumer(self, resumed: bool) -> int:
        """Start the consumer and watch it to its end: its memory, the pause file, the stop
        grace. Returns its exit code (negative: the signal that ended it)."""
        self.process = subprocess.Popen(
            self.argv, cwd=self.settings.workdir, preexec_fn=_die_with_watcher
        )
        if resumed:
            self.log.info(CONSUMER_RESUMED_EVENT, consumer_pid=self.process.pid)
        else:
            self.log.info(
                "worker_started",
                mode="consumer",
                handler=self.settings.handler,
                consumer_pid=self.process.pid,
            )
        limit = self.settings.max_memory_mib_per_process
        exited = ExitWatch(self.process)
        interval = SAMPLE_SECONDS
        while not exited.wait(interval):
            rss = group_rss_bytes(os.getpgid(0), exclude=os.getpid())
            self.peak_rss = max(self.peak_rss, rss)
            above = bool(limit) and rss > limit * 2**20
            interval = HOT_SAMPLE_SECONDS if above else SAMPLE_SECONDS
            if above and rss > limit * MEMORY_CEILING_FACTOR * 2**20:
                self._kill_for_memory(rss, limit)
            elif above and self._stop_sent_at is None:
                self.log.warning("recycle_memory", rss_mib=round(rss / 2**20, 1), limit_mib=limit)
                self._stop("recycle_memory")
            elif self.stopping and self._stop_sent_at is None:  # signalled before Popen returned
                self._stop("sigterm")
            elif self._stop_sent_at is None and self.paused():
                self._stop(PAUSE)
            sent = self._stop_sent_at
            if sent is not None and time.monotonic() - sent > self.settings.stop_grace_seconds:
                self.process.kill()
        return self.process.returncode
