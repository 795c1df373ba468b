"""Application Auto Scaling schedules: `cron(m h d M w y)` and `at(yyyy-mm-ddThh:mm:ss)`.

Cron fields take `*`, `?`, numbers, names (JAN-DEC, SUN-SAT), lists `a,b`, ranges `a-b` and
steps `a/n` or `*/n`; day-of-week 1-7 is SUN-SAT (AWS style). `L`, `W` and `#` are not
supported. Times are wall-clock times in the action's `Timezone` (default UTC).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (name, low, high, names)
_FIELDS = [
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day-of-month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, []),
]


class ScheduleError(ValueError):
    """A schedule expression the simulator cannot read."""


def _parse_field(text: str, low: int, high: int, names: list[str]) -> set[int] | None:
    """The set of allowed values, or None for any (`*`, `?`)."""
    if text in ("*", "?"):
        return None
    allowed: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, stop = low, high
        else:
            first, _, last = base.partition("-")
            start = _value(first, names)
            stop = _value(last, names) if last else (high if step_text else start)
        if not low <= start <= stop <= high or step < 1:
            raise ScheduleError(f"cron field {text!r} out of range {low}-{high}")
        allowed.update(range(start, stop + 1, step))
    return allowed


def _value(text: str, names: list[str]) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + 1
    if not upper.isdigit():
        raise ScheduleError(f"cron value {text!r} is not supported")
    return int(upper)


def fire_times(
    schedule: str, timezone: str | None, start: datetime, end: datetime
) -> list[datetime]:
    """The moments in [start, end) (aware datetimes) at which `schedule` fires, in UTC."""
    zone = ZoneInfo(timezone or "UTC")
    at = re.fullmatch(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)", schedule.strip())
    if at:
        moment = datetime.fromisoformat(at.group(1)).replace(tzinfo=zone)
        return [moment.astimezone(ZoneInfo("UTC"))] if start <= moment < end else []
    cron = re.fullmatch(r"cron\((.*)\)", schedule.strip())
    if not cron or len(cron.group(1).split()) != 6:
        raise ScheduleError(
            f"unsupported schedule {schedule!r}: expected cron(m h d M w y) or at(...)"
        )
    fields = [
        _parse_field(text, low, high, names)
        for text, (_, low, high, names) in zip(cron.group(1).split(), _FIELDS, strict=True)
    ]
    minute, hour, day, month, weekday, year = fields
    moments: list[datetime] = []
    local = start.astimezone(zone).replace(second=0, microsecond=0)
    if local < start:
        local += timedelta(minutes=1)
    while local < end:
        if _matches(local, minute, hour, day, month, weekday, year):
            moments.append(local.astimezone(ZoneInfo("UTC")))
        local = (local.astimezone(ZoneInfo("UTC")) + timedelta(minutes=1)).astimezone(zone)
    return moments


def _matches(moment: datetime, *fields: set[int] | None) -> bool:
    minute, hour, day, month, weekday, year = fields
    actual = [
        (minute, moment.minute),
        (hour, moment.hour),
        (day, moment.day),
        (month, moment.month),
        (weekday, (moment.isoweekday() % 7) + 1),  # SUN=1 .. SAT=7
        (year, moment.year),
    ]
    return all(allowed is None or value in allowed for allowed, value in actual)
