"""Memory and CPU the kit's own processes cost, per task and per worker slot, in each mode.

    .venv/bin/python -m scripts.devtools.measure_memory --processes 8
        [--modes callable command consumer] [--busy-seconds 20]

For each handler mode: starts moto's server on loopback and the real fleet as the image runs
it (`python -m worker.supervise`: supervisord, its FATAL listener, N worker loops), waits until
every loop has started, measures every process of the fleet idle (long-polling an empty queue),
then enqueues one long job per process and measures again while all N jobs run.

Per process: RSS (/proc/PID/status VmRSS), PSS (/proc/PID/smaps_rollup: shared pages split
between the processes that map them, on this host also with processes outside the fleet) and
its own memory (anonymous pages + page tables); CPU is utime + stime of /proc/PID/stat over the
measured seconds. "Charged" is what a task's memory cgroup holds: own memory, plus the files
the kit's processes map counted once (with the task: its processes and those files; with a
slot: its processes). "Beyond the limit" is the part of a slot that max_memory_mib_per_process
does not bound (BEYOND_LIMIT): what stacks/sizing.py adds per process. Jobs are the kit's
example sleep job (callable) or `cat >/dev/null; sleep S` (command); a consumer is `sleep`
itself: their memory and CPU are the team's, not the kit's, and are shown apart.

Prints one table per mode and the figures stacks/sizing.py holds (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3

from scripts.devtools.local_run import FAKE_CREDENTIALS, REGION, WORKER_IMAGE, CountingMoto

MODES = ("callable", "command", "consumer")
TASK_ROLES = ("entrypoint", "supervisord", "fatal listener")
SLOT_ROLES = ("loop", "resource tracker", "executor")
KIT_ROLES = (*TASK_ROLES, *SLOT_ROLES)
# Per slot, what max_memory_mib_per_process does not bound (stacks/sizing.py): in callable mode
# the recycle limit counts the loop and its executor together (worker/loop.py rss_mib); in
# command mode it bounds the command; in consumer mode the consumer, under the kit's watcher
# (`python -m worker` too, the "loop" role here; worker/consumer.py).
BEYOND_LIMIT = {"callable": ("resource tracker",), "command": ("loop",), "consumer": ("loop",)}
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One process at one moment."""

    pid: int
    role: str
    rss_kib: int
    pss_kib: int
    own_kib: int
    """Anonymous memory and page tables: what this process alone adds."""
    files_kib: dict[str, int]
    """Resident pages of each mapped file (shared with every process that maps it)."""
    cpu_ticks: int


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _field_kib(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def _stat(pid: int) -> tuple[int, int, int]:
    """(parent pid, session id, utime + stime ticks) from /proc/PID/stat."""
    text = _read(f"/proc/{pid}/stat")
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[1]), int(fields[3]), int(fields[11]) + int(fields[12])


def role_of(argv: list[str], parent_role: str) -> str:
    """What a fleet process is, by its command line (and its parent's role)."""
    text = " ".join(argv)
    if "worker.supervise" in text:
        return "fatal listener" if "--fatal-listener" in argv else "entrypoint"
    if "supervisord" in text:
        return "supervisord"
    if argv[1:3] == ["-m", "worker"] and len(argv) == 3:
        return "loop"
    if "resource_tracker" in text:
        return "resource tracker"
    if "multiprocessing" in text:
        return "executor"
    if parent_role == "supervisord":
        return "consumer (team's)"
    return "job (team's)"


def snapshot(session: int) -> list[Sample]:
    """Every live process of the fleet's session, with its role."""
    procs: dict[int, tuple[int, list[str], int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            parent, sid, ticks = _stat(pid)
        except (ValueError, IndexError):
            continue
        if sid != session:
            continue
        argv = _read(f"/proc/{pid}/cmdline").rstrip("\0").split("\0")
        procs[pid] = (parent, argv, ticks)
    roles: dict[int, str] = {}

    def role(pid: int) -> str:
        if pid not in roles:
            parent, argv, _ = procs[pid]
            roles[pid] = role_of(argv, role(parent) if parent in procs else "")
        return roles[pid]

    samples = []
    for pid, (_, _, ticks) in sorted(procs.items()):
        status = _read(f"/proc/{pid}/status")
        rollup = _read(f"/proc/{pid}/smaps_rollup")
        if status:
            rss, pss = _field_kib(status, "VmRSS"), _field_kib(rollup, "Pss")
            own = _field_kib(rollup, "Anonymous") + _field_kib(status, "VmPTE")
            samples.append(Sample(pid, role(pid), rss, pss, own, _files(pid), ticks))
    return samples


def _files(pid: int) -> dict[str, int]:
    """Resident KiB per mapped file, from /proc/PID/smaps."""
    files: dict[str, int] = defaultdict(int)
    path = ""
    for line in _read(f"/proc/{pid}/smaps").splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:  # a mapping's header line
            path = head[5] if len(head) > 5 and head[4] != "0" else ""
        elif path and line.startswith("Rss:"):
            files[path] += int(head[1])
    return dict(files)


class Fleet:
    """The real fleet (`python -m worker.supervise`) in its own session; output drained."""

    def __init__(self, mode: str, processes: int, endpoint: str, queue_url: str, job: float):
        handler = {
            "callable": "worker.examples:sleep_job",
            "command": f"cat >/dev/null; sleep {job:g}",
            "consumer": "sleep 86400",
        }[mode]
        self.run_dir = tempfile.mkdtemp(prefix="kit-memory-")
        env = {
            **os.environ,
            **FAKE_CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "QUEUE_URL": queue_url,
            "WORKER_PROCESSES": str(processes),
            "WORKER_HANDLER_MODE": mode,
            "WORKER_HANDLER": handler,
            "WORKER_RUN_DIR": self.run_dir,
            "WORKER_TASK_DIR": self.run_dir,
            "TASK_PROTECTION": "off",
            "JOB_TIMEOUT_SECONDS": str(job * 2),
            "WORKER_STOP_GRACE_SECONDS": "1",
            "SUPERVISOR_STOPWAITSECS": "5",
            "PYTHONPATH": str(WORKER_IMAGE),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.supervise"],
            cwd=WORKER_IMAGE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.output: list[bytes] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def started(self) -> int:
        return sum(b'"worker_started"' in line for line in list(self.output))

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass(frozen=True)
class Phase:
    """One measurement: per role the count and means (MiB, CPU ms per second), and the
    fleet's kit memory as a cgroup is charged: own memory of each process + files once."""

    name: str
    count: dict[str, int]
    rss: dict[str, float]
    pss: dict[str, float]
    own: dict[str, float]
    cpu_ms_per_s: dict[str, float]
    files_mib: float
    """Resident pages of the files the kit's processes map, each file counted once."""

    def per_slot(self, of: dict[str, float], roles: tuple[str, ...] = SLOT_ROLES) -> float:
        """What one slot's kit processes of `roles` add, by the mean of each role."""
        slots = self.count.get("loop", 0)
        total = sum(of.get(r, 0.0) * self.count.get(r, 0) for r in roles)
        return total / slots if slots else 0.0

    @property
    def task_mib(self) -> float:
        """Per task: its processes' own memory, plus every file the kit maps (once)."""
        return sum(self.own.get(r, 0.0) for r in TASK_ROLES) + self.files_mib


def measure(session: int, name: str, seconds: float) -> Phase:
    """Samples at the start and the end of `seconds`: memory at the end, CPU in between."""
    before = {s.pid: s for s in snapshot(session)}
    time.sleep(seconds)
    after = snapshot(session)
    count: dict[str, int] = defaultdict(int)
    sums: dict[str, dict[str, float]] = {
        k: defaultdict(float) for k in ("rss", "pss", "own", "cpu")
    }
    files: dict[str, int] = {}
    for s in after:
        count[s.role] += 1
        sums["rss"][s.role] += s.rss_kib / 1024
        sums["pss"][s.role] += s.pss_kib / 1024
        sums["own"][s.role] += s.own_kib / 1024
        if s.pid in before:
            ticks = s.cpu_ticks - before[s.pid].cpu_ticks
            sums["cpu"][s.role] += ticks / TICKS * 1000 / seconds
        if s.role in KIT_ROLES:
            for path, kib in s.files_kib.items():
                files[path] = max(files.get(path, 0), kib)
    mean = {k: {r: v / count[r] for r, v in values.items()} for k, values in sums.items()}
    return Phase(
        name,
        dict(count),
        mean["rss"],
        mean["pss"],
        mean["own"],
        mean["cpu"],
        sum(files.values()) / 1024,
    )


def run_mode(mode: str, processes: int, busy_seconds: float, idle_seconds: float) -> list[Phase]:
    moto = CountingMoto()
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto.url, **_credentials())
    queue_url = sqs.create_queue(QueueName=f"memory-{mode}")["QueueUrl"]
    job = busy_seconds + 15
    fleet = Fleet(mode, processes, moto.url, queue_url, job)
    phases = []
    try:
        wait_for(lambda: fleet.started() >= processes, f"{processes} workers to start")
        time.sleep(3)  # imports settle, the first long poll is out
        phases.append(measure(fleet.process.pid, "idle", idle_seconds))
        if mode != "consumer":
            for _ in range(processes):
                sqs.send_message(QueueUrl=queue_url, MessageBody=f'{{"duration_seconds": {job}}}')

            def all_busy() -> bool:
                attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
                    "Attributes"
                ]
                return int(attributes["ApproximateNumberOfMessagesNotVisible"]) == processes

            wait_for(all_busy, "every process to hold a job")
            time.sleep(2)
            phases.append(measure(fleet.process.pid, "busy", busy_seconds))
    finally:
        fleet.stop()
        moto.close()
    return phases


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def table(mode: str, phases: list[Phase]) -> list[str]:
    lines = [
        f"\n{mode} mode",
        "| process | phase | count | RSS MiB | PSS MiB | own MiB | CPU ms/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase in phases:
        for role in sorted(phase.count, key=_role_order):
            lines.append(
                f"| {role} | {phase.name} | {phase.count[role]} | {phase.rss[role]:.1f} | "
                f"{phase.pss[role]:.1f} | {phase.own[role]:.1f} | "
                f"{phase.cpu_ms_per_s.get(role, 0.0):.2f} |"
            )
        lines.append(f"| files the kit maps, once | {phase.name} | | {phase.files_mib:.1f} | | | |")
    return lines


def _role_order(role: str) -> int:
    order = (*TASK_ROLES, *SLOT_ROLES)
    return order.index(role) if role in order else len(order)


def summary(results: dict[str, list[Phase]]) -> list[str]:
    """Per task and per slot, the highest of the phases, and what stacks/sizing.py holds."""
    lines = [
        "\nthe kit's own share, the highest of idle and busy (MiB; CPU in ms per second)",
        "| mode | task RSS | task PSS | task charged | slot RSS | slot PSS | slot charged | "
        "slot beyond the limit | busy slot CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def task(of: dict[str, float]) -> float:
        return sum(of.get(r, 0.0) for r in TASK_ROLES)

    for mode, phases in results.items():
        busy = [p for p in phases if p.name == "busy"]
        cpu = busy[0].per_slot(busy[0].cpu_ms_per_s) if busy else 0.0
        beyond = max(p.per_slot(p.own, BEYOND_LIMIT[mode]) for p in phases)
        lines.append(
            f"| {mode} | {max(task(p.rss) for p in phases):.1f} | "
            f"{max(task(p.pss) for p in phases):.1f} | "
            f"{max(p.task_mib for p in phases):.1f} | "
            f"{max(p.per_slot(p.rss) for p in phases):.1f} | "
            f"{max(p.per_slot(p.pss) for p in phases):.1f} | "
            f"{max(p.per_slot(p.own) for p in phases):.1f} | "
            f"{beyond:.1f} | {cpu:.2f} |"
        )
    lines.append("")
    for mode, phases in results.items():
        charged = max(p.task_mib for p in phases)
        lines.append(f"stacks/sizing.py: kit_task_mib({mode!r}) >= {math.ceil(charged)}")
    for mode, phases in results.items():
        slot = max(p.per_slot(p.own, BEYOND_LIMIT[mode]) for p in phases)
        lines.append(f"stacks/sizing.py: KIT_SLOT_OVERHEAD_MIB[{mode!r}] >= {math.ceil(slot)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--busy-seconds", type=float, default=20.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    results: dict[str, list[Phase]] = {}
    for mode in args.modes:
        results[mode] = run_mode(mode, args.processes, args.busy_seconds, args.idle_seconds)
        print("\n".join(table(mode, results[mode])), flush=True)
    print("\n".join(summary(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
