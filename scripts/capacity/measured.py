"""A measurement of a team's image: the per-process figures `measure` writes and `plan` reads.

The JSON document is :class:`Measured`'s fields, nothing else: `queue-worker measure --out FILE`
writes it (:func:`write`), `queue-worker plan --measured FILE` reads it (:func:`read`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from scripts._cli import OpsError
from stacks import sizing

MIB = 1024 * 1024


@dataclass(frozen=True)
class Measured:
    """What one run of `measure` found; ``process_memory_mib`` and ``process_cpu`` are the
    planner's --process-memory and --process-cpu."""

    image: str
    measured_at: str  # UTC, ISO 8601
    environment: str  # whose synthesized templates set the worker
    handler_mode: str
    processes: int
    busy_seconds: float  # the window the CPU was counted over, every process busy
    jobs_done: int
    jobs_failed: int
    container_peak_mib: float
    kit_mib: int  # stacks/sizing.py's share of the kit in a task of ``processes``
    process_memory_mib: int
    process_cpu: float

    def planner_options(self) -> str:
        """``--process-memory N --process-cpu X``."""
        return f"--process-memory {self.process_memory_mib} --process-cpu {self.process_cpu:g}"

    def source(self) -> str:
        """Where the figures come from, for the plan's text."""
        return f"measured from {self.image} on {self.measured_at[:10]}"


def per_process(
    peak_bytes: int, cpu_seconds: float, busy_seconds: float, processes: int, handler_mode: str
) -> tuple[int, float, int]:
    """(process memory MiB, busy vCPU per process, the kit's MiB): the container's peak minus
    the kit's own share (stacks/sizing.py: per task and per slot, which the planner adds back)
    over ``processes``, rounded up to a MiB (at least 1); the CPU time over the busy window
    and the processes, rounded up to 0.001 vCPU (at least 0.001)."""
    kit = sizing.kit_memory_mib(processes, handler_mode)
    memory = max(1, math.ceil((peak_bytes / MIB - kit) / processes))
    cpu = max(0.001, math.ceil(cpu_seconds / busy_seconds / processes * 1000) / 1000)
    return memory, cpu, kit


def write(path: Path, measured: Measured) -> None:
    """The JSON document at ``path``."""
    path.write_text(json.dumps(asdict(measured), indent=2) + "\n")


def read(path: Path) -> Measured:
    """The measurement at ``path``; OpsError naming the file when it is not one."""
    try:
        document: Any = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise OpsError(f"--measured {path}: cannot read it ({error})") from None
    names = {f.name for f in fields(Measured)}
    if not isinstance(document, dict) or not names <= set(document):
        missing = sorted(names - set(document)) if isinstance(document, dict) else sorted(names)
        raise OpsError(
            f"--measured {path}: not a `queue-worker measure --out` document "
            f"(missing {', '.join(missing)})"
        )
    measured = Measured(**{name: document[name] for name in names})
    if measured.handler_mode not in sizing.KIT_SLOT_OVERHEAD_MIB:
        raise OpsError(f"--measured {path}: unknown handler_mode {measured.handler_mode!r}")
    if not (measured.process_memory_mib >= 1 and 0 < measured.process_cpu <= 16):
        raise OpsError(f"--measured {path}: process_memory_mib or process_cpu out of range")
    return measured
