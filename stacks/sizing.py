"""What the kit's own processes cost a task: the figures the config check and the planner use.

Measured on 2026-12-04 with
``.venv/bin/python -m scripts.devtools.measure_memory --processes 8`` (the real
supervisord fleet against moto's server; docs/benchmarks.md, "What the kit itself costs"),
rounded up to whole MiB. Memory is counted as a task's memory cgroup is charged: each
process's own memory (anonymous pages and page tables) plus the files the kit's processes
map, each file once (RSS counts shared pages in every process, PSS splits them with processes
outside the task).

- Per task: the entrypoint (``python -m worker.supervise``), supervisord and its FATAL event
  listener, plus the mapped files of every kit process (the Python binary and libraries); in
  ``consumer`` mode the listener's pause reader on top (PAUSE_READER_MIB).
- Per slot: what ``max_memory_mib_per_process`` does not bound. ``callable``: the recycle
  limit counts the loop and its executor child together (worker/loop.py ``rss_mib``), so only
  the executor's multiprocessing resource tracker comes on top. ``command``: the limit bounds
  the command's processes, the worker loop comes on top. ``consumer``: the limit bounds the
  team's consumer, the kit's watcher around it (worker/consumer.py, no boto3) comes on top
  (measured with ``--modes consumer`` on 2026-11-25).
"""

from __future__ import annotations

from collections.abc import Mapping

KIT_TASK_OVERHEAD_MIB = 42
"""supervisord, the entrypoint, the FATAL listener and the kit's mapped files, once a task
(measured 39.1 MiB on 2026-11-25, 39.7 on 2026-12-04: 2 MiB for the run-to-run variance)."""

PAUSE_READER_MIB = 27
"""``consumer`` mode only, once a task: the FATAL listener also reads the pause tags for the
task's watchers (worker.pause.PauseReader: boto3 and an SQS client), 32.9 MiB own instead of 6.1
(task charged 66.3 MiB on 2026-12-07, ``--modes consumer``: 42 + 27 keeps the 2 MiB for the
variance)."""

KIT_SLOT_OVERHEAD_MIB: Mapping[str, int] = {
    "callable": 7,  # the resource tracker (6.4 MiB); loop + executor are inside the limit
    "command": 34,  # the worker loop (33.0 MiB on 2026-12-07: Python, botocore, its SQS client)
    "consumer": 13,  # the watcher around the team's consumer (12.6 MiB)
}
"""The kit's memory per worker process that the recycle limit does not bound, by mode."""


def kit_task_mib(handler_mode: str) -> int:
    """The kit's own memory once a task, whatever its processes (the pause reader in consumer
    mode)."""
    return KIT_TASK_OVERHEAD_MIB + (PAUSE_READER_MIB if handler_mode == "consumer" else 0)


def kit_memory_mib(processes: int, handler_mode: str) -> int:
    """The kit's own memory in a task of ``processes`` worker processes."""
    return kit_task_mib(handler_mode) + processes * KIT_SLOT_OVERHEAD_MIB[handler_mode]


def task_memory_need_mib(processes: int, max_memory_mib_per_process: int, handler_mode: str) -> int:
    """Task memory that holds every process at its recycle limit plus the kit's own share."""
    return processes * max_memory_mib_per_process + kit_memory_mib(processes, handler_mode)


def processes_that_fit(memory_mib: int, process_memory_mib: int, handler_mode: str) -> int:
    """The most worker processes of ``process_memory_mib`` each that a task's memory holds."""
    per_slot = process_memory_mib + KIT_SLOT_OVERHEAD_MIB[handler_mode]
    return max(0, (memory_mib - kit_task_mib(handler_mode)) // per_slot)
