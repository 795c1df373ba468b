"""Command-line values shared by the planner and the simulator, validated all at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class Durations:
    """Job durations in seconds: uniform between low and high (low == high: fixed)."""

    low: int
    high: int

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


class Problems:
    """Collects "--flag VALUE: what is allowed" messages so all are reported together."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, flag: str, value: object, allowed: str) -> None:
        self.items.append(f"{flag} {value!r}: {allowed}")

    def clock(self, flag: str, value: str) -> int:
        """Seconds after midnight of an HH:MM value (0 when invalid, after recording it)."""
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
        if not match or int(match.group(1)) > 24 or int(match.group(2)) > 59:
            self.add(flag, value, "expected HH:MM between 00:00 and 24:00")
            return 0
        return int(match.group(1)) * 3600 + int(match.group(2)) * 60

    def timezone(self, flag: str, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.add(flag, value, "expected an IANA timezone such as Asia/Tokyo or UTC")
        return value

    def durations(self, flag: str, value: str) -> Durations:
        """`uniform:LOW:HIGH` or `fixed:SECONDS` (seconds, 1 <= low <= high)."""
        match = re.fullmatch(r"uniform:(\d+):(\d+)|fixed:(\d+)", value)
        if match and match.group(3):
            fixed = int(match.group(3))
            found = Durations(fixed, fixed)
        elif match:
            found = Durations(int(match.group(1)), int(match.group(2)))
        else:
            found = Durations(0, 0)
        if found.low < 1 or found.low > found.high:
            self.add(flag, value, "expected uniform:LOW:HIGH or fixed:SECONDS, 1 <= LOW <= HIGH")
        return found

    def at_least(self, flag: str, value: float, low: float) -> None:
        if value < low:
            self.add(flag, value, f"must be >= {low}")

    def fail(self, prog: str) -> None:
        """Print every problem and exit 2 when there is any."""
        if self.items:
            import sys

            print(f"{prog}: invalid input:", file=sys.stderr)
            for item in self.items:
                print(f"  {item}", file=sys.stderr)
            raise SystemExit(2)
