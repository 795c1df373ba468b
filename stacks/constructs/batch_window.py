"""Daily batch windows: a raised task floor at the start, a deadline alarm at the end."""

from __future__ import annotations

from datetime import datetime, timedelta

from aws_cdk import Duration, TimeZone
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import BatchWindow


def _minutes(clock: datetime) -> int:
    return clock.hour * 60 + clock.minute


class BatchWindowSchedule(Construct):
    """For each window, two scheduled actions in its time zone and one deadline alarm.

    * At ``start`` the floor rises to ``min_tasks``: work starts at once even when the queue's
      metrics lag after a quiet night (an idle queue's first datapoints can be ~15 min late).
    * ``hold_minutes`` (30) later the floor goes back to ``floor_tasks``: by then queue scaling
      sees the backlog and holds the tasks it needs, and nothing idles until the window ends.
    * The deadline alarm fires when the oldest message has waited so long that a job started
      now could not finish by ``end`` (window length minus the job timeout).

    Attributes: ``deadline_alarms``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        scalable_target: appscaling.ScalableTarget,
        queue: sqs.IQueue,
        windows: tuple[BatchWindow, ...],
        floor_tasks: int,
        job_timeout_seconds: int,
    ) -> None:
        super().__init__(scope, id_)
        self.deadline_alarms: list[cloudwatch.Alarm] = []
        for window in windows:
            start = datetime.combine(datetime.min, window.start)
            end = datetime.combine(datetime.min, window.end)
            release = start + timedelta(minutes=window.hold_minutes)
            name = f"{start:%H%M}To{end:%H%M}"
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
            allowed_wait = max(60, (_minutes(end) - _minutes(start)) * 60 - job_timeout_seconds)
            self.deadline_alarms.append(
                queue.metric_approximate_age_of_oldest_message(
                    period=Duration.minutes(1), statistic="Maximum"
                ).create_alarm(
                    self,
                    f"Deadline{name}",
                    alarm_description=(
                        f"The batch will miss {window.end:%H:%M} {window.timezone}: a message "
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
