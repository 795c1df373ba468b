"""Daily batch windows: a raised task floor at the start, a deadline alarm, the window's clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aws_cdk import Duration, Stack, TimeZone
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import DEFAULT_NAME, BatchWindow
from stacks.constructs.work_queue import across_queues
from stacks.naming import scoped_id

DAY_MINUTES = 24 * 60


def _minutes(clock: datetime | time) -> int:
    return clock.hour * 60 + clock.minute


def window_name(window: BatchWindow) -> str:
    """The stable id part of a window, e.g. ``0400To0900``."""
    return f"{window.start:%H%M}To{window.end:%H%M}"


@dataclass(frozen=True)
class WindowClock:
    """A window on CloudWatch's clock: metric math time functions (HOUR, MINUTE) are UTC.

    ``start_utc`` is the UTC minute of the day the window opens at the zone's largest UTC
    offset; ``deadline`` the minutes from there to the deadline at that offset; ``span`` the
    minutes the deadline rule stays on: to the deadline at the zone's smallest offset. In a
    zone without daylight saving (Asia/Tokyo) the three are exact; in one with it
    (America/New_York) the rule opens at the earlier of the two UTC starts and, on
    standard-time days, aims at the deadline one hour early (then, past it, asks for one
    process per message): never late because of the clock change, a little less tight.
    The offsets are those the zone's rules give in the synth year and the next.
    """

    start_utc: int
    deadline: int
    span: int


def window_clock(window: BatchWindow, year: int | None = None) -> WindowClock:
    """Where ``window`` sits in UTC, whatever the day's offset (see :class:`WindowClock`)."""
    zone = ZoneInfo(window.timezone)
    first = date(year or date.today().year, 1, 1)
    offsets = set()
    for day in range(2 * 366):
        when = first + timedelta(days=day)
        for clock in (window.start, window.deadline):
            moment = datetime.combine(when, clock, tzinfo=zone)
            offset = moment.utcoffset()
            assert offset is not None
            offsets.add(int(offset.total_seconds()) // 60)
    largest, smallest = max(offsets), min(offsets)
    start, deadline = _minutes(window.start), _minutes(window.deadline)
    return WindowClock(
        start_utc=(start - largest) % DAY_MINUTES,
        deadline=deadline - start,
        span=deadline - start + largest - smallest,
    )


class BatchWindowSchedule(Construct):
    """For each window, two scheduled actions in its time zone and one deadline alarm.

    * At ``start`` the floor rises to ``min_tasks``: work starts at once even when the queue's
      metrics lag after a quiet night (an idle queue's first datapoints can be ~15 min late).
    * ``hold_minutes`` (30) later the floor goes back to ``floor_tasks``: by then queue scaling
      sees the backlog and holds the tasks it needs, and nothing idles until the window ends.
    * The deadline alarm fires when the oldest message of ``queues`` (the worker's: the
      oldest of them all) has waited so long that a job started
      now could not finish by the deadline (``end`` minus ``deadline_margin_minutes``: from
      ``start`` to the deadline, minus the job timeout).
    * The template's metadata ``Deadline<start>To<end>`` (``...-<worker>`` but for the
      ``default`` worker) holds the deadline as HH:MM local time, for
      scripts/capacity/simulate.py and operators.

    Deadline-aware scaling itself lives in the fleet-size alarm (``QueueScaling``), which reads
    each window's :func:`window_clock`. Attributes: ``deadline_alarms``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        scalable_target: appscaling.ScalableTarget,
        queues: Sequence[sqs.IQueue],
        windows: tuple[BatchWindow, ...],
        floor_tasks: int,
        job_timeout_seconds: int,
        worker: str = DEFAULT_NAME,
    ) -> None:
        super().__init__(scope, id_)
        self.deadline_alarms: list[cloudwatch.Alarm] = []
        oldest = across_queues(
            queues,
            lambda queue: queue.metric_approximate_age_of_oldest_message(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            function="MAX",
            id_="oldest",
            label="Age of the oldest message in the worker's queues",
        )
        for window in windows:
            start = datetime.combine(datetime.min, window.start)
            release = start + timedelta(minutes=window.hold_minutes)
            name = window_name(window)
            Stack.of(self).add_metadata(
                scoped_id(f"Deadline{name}", worker), f"{window.deadline:%H:%M}"
            )
            zone = TimeZone.of(window.timezone)
            scalable_target.scale_on_schedule(
                f"RaiseFloor{name}",
                schedule=appscaling.Schedule.cron(hour=str(start.hour), minute=str(start.minute)),
                time_zone=zone,
                min_capacity=window.min_tasks,
            )
            scalable_target.scale_on_schedule(
                f"ReleaseFloor{name}",
                schedule=appscaling.Schedule.cron(
                    hour=str(release.hour), minute=str(release.minute)
                ),
                time_zone=zone,
                min_capacity=floor_tasks,
            )
            to_deadline = _minutes(window.deadline) - _minutes(window.start)
            allowed_wait = max(60, to_deadline * 60 - job_timeout_seconds)
            self.deadline_alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"Deadline{name}",
                    metric=oldest,
                    alarm_description=(
                        f"The batch will miss {window.deadline:%H:%M} {window.timezone}: a message "
                        f"has waited over {allowed_wait} s, too long to finish by then. Raise "
                        "scaling.max_tasks or processes (see docs/operations.md)."
                    ),
                    threshold=allowed_wait,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=2,
                    datapoints_to_alarm=2,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
