"""ECS task scale-in protection, shared by every worker process of one task.

A task is protected while any of its processes holds messages and released when none does.
The processes agree through a shared directory (WORKER_TASK_DIR): one `busy-<pid>` marker per
busy process, changed under an exclusive lock on `lock`. Markers of dead pids (a process killed
mid-job) are removed and ignored. Only the task's 0 -> busy and busy -> 0 transitions call the
ECS agent (PUT $ECS_AGENT_URI/task-protection/v1/state), never under the lock and never on the
job loop's thread (see TaskProtection); while the task stays busy, the protection is renewed
when a process turns busy after half its expiry has passed, so a task busy for longer than
TASK_PROTECTION_EXPIRES_MINUTES stays protected.
Off (no markers, no calls) when ECS_AGENT_URI is unset or TASK_PROTECTION=off.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from worker.logs import EventLog

# The calls run on their own thread, so a slow agent may take this long (a 5-s stall still
# protects the task); a stopping process waits less for its last call (worker.loop).
_AGENT_TIMEOUT_SECONDS = 8.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TaskProtection:
    """`busy()` / `idle()` for this process; the task-wide state lives in `directory`.

    Neither waits for the ECS agent: they decide under the task-wide lock (markers, the stamp,
    an epoch counter) and hand the call to this process's caller thread, which makes it with no
    lock held. A call's result is applied only if its epoch is still the task's newest; if
    another process decided since, the caller re-reads what the task needs (any live busy
    marker) and sends it again when its own call may have overwritten that: a stale call
    never undoes a newer state, and a stalled agent stalls no job loop and no other process.
    """

    def __init__(self, agent_uri: str, directory: str, expires_minutes: int, log: EventLog) -> None:
        self.agent_uri = agent_uri
        self.directory = Path(directory)
        self.expires_minutes = expires_minutes
        self.log = log
        self.pid = os.getpid()
        self._busy = False
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pending: tuple[bool, int] | None = None  # (protected, epoch) to send next
        self._calling = False
        self._calls = threading.Condition()
        threading.Thread(target=self._call_agent, name="task-protection", daemon=True).start()

    def busy(self) -> None:
        """Mark this process busy; protect the task if no other process was."""
        if not self._busy:
            self._submit(self._decide(busy=True))
        self._busy = True

    def idle(self) -> None:
        """Mark this process idle; release the task if no other process is busy."""
        if self._busy:
            self._submit(self._decide(busy=False))
        self._busy = False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the calls decided so far were made (True), or `timeout` seconds."""
        with self._calls:
            return self._calls.wait_for(
                lambda: self._pending is None and not self._calling, timeout
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def _decide(self, *, busy: bool) -> tuple[bool, int] | None:
        """Under the task-wide lock: change this process's marker; the call to make, if any."""
        marker = self.directory / f"busy-{self.pid}"
        with self._locked():
            others = [pid for pid in self._live_pids("busy-") if pid != self.pid]
            if busy:
                marker.touch()
            else:
                marker.unlink(missing_ok=True)
            if busy and others:
                if time.time() - _read_float(self._stamp) < self.expires_minutes * 30:
                    return None  # the task is already protected and not half-way to expiry
            elif others:
                return None  # another process is still busy
            if busy:  # others turning busy meanwhile need not call again
                self._stamp.write_text(str(time.time()))
            return busy, self._next_epoch()

    @property
    def _stamp(self) -> Path:
        return self.directory / "protected-at"

    def _next_epoch(self) -> int:
        epoch = int(_read_float(self.directory / "epoch")) + 1
        (self.directory / "epoch").write_text(str(epoch))
        return epoch

    def _submit(self, call: tuple[bool, int] | None) -> None:
        if call is not None:
            with self._calls:
                self._pending = call  # a newer decision replaces one not yet sent
                self._calls.notify_all()

    def _call_agent(self) -> None:
        """The caller thread: send the pending state, then settle it."""
        while True:
            with self._calls:
                self._calls.wait_for(lambda: self._pending is not None)
                assert self._pending is not None
                (protected, epoch), self._pending = self._pending, None
                self._calling = True
            again = self._settle(protected, epoch, self._put(protected))
            with self._calls:
                if again is not None and self._pending is None:
                    self._pending = again
                self._calling = False
                self._calls.notify_all()

    def _settle(self, protected: bool, epoch: int, ok: bool) -> tuple[bool, int] | None:
        """Under the lock: keep the stamp true to the call; the call to repeat when another
        process decided meanwhile and the task now needs the other state."""
        with self._locked():
            current = int(_read_float(self.directory / "epoch"))
            if current == epoch:
                if not ok or not protected:
                    self._stamp.unlink(missing_ok=True)
                return None
            needed = bool(self._live_pids("busy-"))
            if needed == protected:
                return None
            if needed:
                self._stamp.write_text(str(time.time()))
            return needed, self._next_epoch()

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
