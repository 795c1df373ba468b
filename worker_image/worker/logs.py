"""One JSON object per line on stdout for every event (fields: docs/contract.md); secret values
masked in every field (worker.masking)."""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

from worker.masking import SecretMask


class EventLog:
    """Writes `{"time", "level", "event", "process", "pid", ...}` lines; safe across threads.
    Every string in `fields` goes through `mask` (the task's secret values become `***`)."""

    def __init__(
        self, process: str, stream: TextIO | None = None, mask: SecretMask | None = None
    ) -> None:
        self.process = process
        self.stream = stream if stream is not None else sys.stdout
        self.mask = mask or SecretMask()
        self._lock = threading.Lock()

    def emit(self, level: str, event: str, **fields: Any) -> None:
        """Write one line; `fields` must be JSON-serialisable (anything else is str()-ed)."""
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "event": event,
            "process": self.process,
            "pid": os.getpid(),
            **(self.mask.mask_fields(fields) if self.mask else fields),
        }
        line = json.dumps(record, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def info(self, event: str, **fields: Any) -> None:
        self.emit("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.emit("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.emit("error", event, **fields)
