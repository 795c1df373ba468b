"""Facts about AWS Fargate that config validation, the planner and the simulator share."""

from __future__ import annotations


def _mib(start_gib: int, stop_gib: int, step_gib: int) -> tuple[int, ...]:
    return tuple(gib * 1024 for gib in range(start_gib, stop_gib + 1, step_gib))


# Valid task memory (MiB) for each task CPU (CPU units; 1024 = 1 vCPU), Linux tasks.
VALID_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _mib(1, 4, 1),
    1024: _mib(2, 8, 1),
    2048: _mib(4, 16, 1),
    4096: _mib(8, 30, 1),
    8192: _mib(16, 60, 4),
    16384: _mib(32, 120, 8),
}

# ECS stops a task with SIGTERM, then SIGKILL after the container's stopTimeout: at most
# 120 s on Fargate.
MAX_STOP_TIMEOUT_SECONDS = 120
