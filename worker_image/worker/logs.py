"""One JSON object per line on stdout for every event (fields: docs/contract.md)."""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO


class EventLog:
    """Writes `{"time", "level", "event", "process", "pid", ...}` lines; safe across threads."""

    def __init__(self, process: str, stream: TextIO | None = None) -> None:
        self.process = process
        self.stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def emit(self, level: str, event: str, **fields: Any) -> None:
        """Write one line; `fields` must be JSON-serialisable (anything else is str()-ed)."""
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "event": event,
            "process": self.process,
            "pid": os.getpid(),
            **fields,
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
