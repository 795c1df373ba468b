"""ECS task scale-in protection, shared by every worker process of one task.

A task is protected while any of its processes holds messages and released when none does.
The processes agree through a shared directory (WORKER_TASK_DIR): one `busy-<pid>` marker per
busy process, changed under an exclusive lock on `lock`. Markers of dead pids (a process killed
mid-job) are removed and ignored. Only the task's 0 -> busy and busy -> 0 transitions call the
ECS agent (PUT $ECS_AGENT_URI/task-protection/v1/state); while the task stays busy, the
protection is renewed when a process turns busy after half its expiry has passed, so a task
busy for longer than TASK_PROTECTION_EXPIRES_MINUTES stays protected.
Off (no markers, no calls) when ECS_AGENT_URI is unset or TASK_PROTECTION=off.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import urllib.request
from pathlib import Path

from worker.logs import EventLog

_AGENT_TIMEOUT_SECONDS = 3.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TaskProtection:
    """`busy()` / `idle()` for this process; the task-wide state lives in `directory`."""

    def __init__(self, agent_uri: str, directory: str, expires_minutes: int, log: EventLog) -> None:
        self.agent_uri = agent_uri
        self.directory = Path(directory)
        self.expires_minutes = expires_minutes
        self.log = log
        self.pid = os.getpid()
        self._busy = False
        self.directory.mkdir(parents=True, exist_ok=True)

    def busy(self) -> None:
        """Mark this process busy; protect the task if no other process was."""
        if not self._busy:
            self._update(busy=True)
        self._busy = True

    def idle(self) -> None:
        """Mark this process idle; release the task if no other process is busy."""
        if self._busy:
            self._update(busy=False)
        self._busy = False

    def _update(self, *, busy: bool) -> None:
        marker = self.directory / f"busy-{self.pid}"
        stamp = self.directory / "protected-at"
        with open(self.directory / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            others = [pid for pid in self._live_pids("busy-") if pid != self.pid]
            if busy:
                marker.touch()
            else:
                marker.unlink(missing_ok=True)
            if busy and others:
                if time.time() - _read_float(stamp) < self.expires_minutes * 30:
                    return  # the task is already protected and not half-way to expiry
            elif others:
                return  # another process is still busy
            if self._put(busy):
                if busy:
                    stamp.write_text(str(time.time()))
                else:
                    stamp.unlink(missing_ok=True)

    def _live_pids(self, prefix: str) -> list[int]:
        pids = []
        for path in self.directory.glob(prefix + "*"):
            pid = int(path.name.removeprefix(prefix))
            if _alive(pid):
                pids.append(pid)
            else:
                path.unlink(missing_ok=True)  # a process that died busy
        return pids

    def _put(self, enabled: bool) -> bool:
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self.expires_minutes
        request = urllib.request.Request(
            f"{self.agent_uri}/task-protection/v1/state",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        try:
            with urllib.request.urlopen(request, timeout=_AGENT_TIMEOUT_SECONDS) as response:
                reply = json.loads(response.read() or b"{}")
        except (OSError, ValueError) as error:
            self.log.warning("task_protection", protected=enabled, error=repr(error))
            return False
        if reply.get("failure"):
            self.log.warning("task_protection", protected=enabled, error=str(reply["failure"]))
            return False
        self.log.info("task_protection", protected=enabled)
        return True


def _read_float(path: Path) -> float:
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return 0.0
