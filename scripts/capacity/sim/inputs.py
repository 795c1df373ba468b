"""Command-line values shared by the planner and the simulator, validated all at once."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scripts._cli import UsageError
from scripts.capacity import pricing


def add_spot_arguments(parser: argparse.ArgumentParser, interruptions: float, what: str) -> None:
    """--spot-discount (pricing.SPOT_DISCOUNT) and --spot-interruptions-per-hour."""
    parser.add_argument(
        "--spot-discount",
        type=float,
        default=pricing.SPOT_DISCOUNT,
        help="Spot price = on-demand x (1 - this); scripts/capacity/pricing.py says why 0.5",
    )
    parser.add_argument(
        "--spot-interruptions-per-hour",
        type=float,
        default=interruptions,
        help=f"interruptions per Spot task-hour (0.01 = 1 per 100 task-hours): {what}",
    )


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
        """`SECONDS`, `fixed:SECONDS` or `uniform:LOW:HIGH` (whole seconds, 1 <= low <= high):
        the syntax of every --duration of the CLI (enqueue's also takes fractions)."""
        match = re.fullmatch(r"uniform:(\d+):(\d+)|(?:fixed:)?(\d+)", value)
        if match and match.group(3):
            fixed = int(match.group(3))
            found = Durations(fixed, fixed)
        elif match:
            found = Durations(int(match.group(1)), int(match.group(2)))
        else:
            found = Durations(0, 0)
        if found.low < 1 or found.low > found.high:
            self.add(
                flag, value, "expected SECONDS, fixed:SECONDS or uniform:LOW:HIGH, 1 <= LOW <= HIGH"
            )
        return found

    def spot(self, args: argparse.Namespace) -> None:
        """The values of :func:`add_spot_arguments`."""
        if not 0 <= args.spot_discount < 1:
            self.add("--spot-discount", args.spot_discount, "must be 0 to below 1")
        if not 0 <= args.spot_interruptions_per_hour <= 60:
            rate = args.spot_interruptions_per_hour
            self.add("--spot-interruptions-per-hour", rate, "must be 0 to 60")

    def at_least(self, flag: str, value: float, low: float) -> None:
        if value < low:
            self.add(flag, value, f"must be >= {low}")

    def fail(self) -> None:
        """Report every problem at once, as the CLI reports a bad argument: one line under
        the command's name, exit 2 (scripts/_cli.py)."""
        if self.items:
            raise UsageError("; ".join(self.items))
