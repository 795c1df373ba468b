"""Monitoring: one alarm topic, the dashboard, job metrics from the logs, saved log queries.

Hand-written with aws_cloudwatch rather than cdk-monitoring-constructs' MonitoringFacade. The
facade synthesizes cleanly (cdk-nag 3, cfn-lint) and covers the queue/DLQ and memory alarms,
but half of what is needed here is outside its monitors: the error rate as metric math over
log metric filters, running < desired (its task-count alarm is a fixed minimum, wrong for a
service that scales to zero), the deadline alarms made elsewhere, the deployment-failed
EventBridge rule and the Logs Insights queries. Its defaults (5-minute periods, average memory
across tasks, DLQ > 0) would be overridden one by one, and its dashboard would sit beside ours
instead of being one page. A dozen plain alarms with thresholds from config read better.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct
from worker import contract as c
from worker.contract import FAILED_OUTCOMES

from stacks.config import DEFAULT_NAME, EnvironmentConfig
from stacks.constructs.work_queue import ConsumedQueue
from stacks.naming import job_metric_namespace, scoped_id

MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
# An idle queue's metrics can lag ~15 min when it wakes; scale-out and a task start add ~5.
WAKE_UP_SECONDS = 20 * 60
MEMORY_ALARM_PERCENT = 90
# FIFO queues only: message groups with a message in flight.
FIFO_GROUPS_IN_FLIGHT = "ApproximateNumberOfGroupsWithInflightMessages"
GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD


@dataclass(frozen=True)
class JobMetric:
    """A metric filter on the worker's ``job`` log lines (docs/c.md)."""

    name: str
    outcomes: tuple[str, ...]
    value: str = "1"
    unit: cloudwatch.Unit = cloudwatch.Unit.COUNT
    default_value: float | None = 0
    """Emitted for non-matching lines: counts get 0, so a rate has data whenever logs flow."""
    filter_id: str = ""
    """The filter's id where several filters publish one metric (default: ``name``)."""

    @property
    def key(self) -> str:
        return self.filter_id or self.name

    @property
    def pattern(self) -> str:
        """``{ $.event = "job" && ($.outcome = "a" || $.outcome = "b") }``."""
        outcomes = " || ".join(f'$.{c.OUTCOME} = "{o}"' for o in self.outcomes)
        if len(self.outcomes) > 1:
            outcomes = f"({outcomes})"
        return f'{{ $.{c.EVENT} = "{c.JOB_EVENT}" && {outcomes} }}'


JOB_METRICS = (
    JobMetric(c.JOBS_PROCESSED, (c.DONE,)),
    JobMetric(c.JOBS_FAILED, FAILED_OUTCOMES),
    JobMetric(c.JOBS_RETRIED, (c.RETRY,)),
    JobMetric(
        c.JOB_DURATION,
        (c.DONE,),
        value=f"$.{c.DURATION_SECONDS}",
        unit=cloudwatch.Unit.SECONDS,
        default_value=None,
    ),
    # One metric, two filters: its average over a period is the share of failed jobs, so the
    # error-rate alarm reads one metric (0.10 USD a month) instead of two; no data, no jobs.
    JobMetric(
        c.JOB_FAILURE_PERCENT,
        FAILED_OUTCOMES,
        value="100",
        unit=cloudwatch.Unit.PERCENT,
        default_value=None,
        filter_id=f"{c.JOB_FAILURE_PERCENT}-failed",
    ),
    JobMetric(
        c.JOB_FAILURE_PERCENT,
        (c.DONE,),
        value="0",
        unit=cloudwatch.Unit.PERCENT,
        default_value=None,
        filter_id=f"{c.JOB_FAILURE_PERCENT}-done",
    ),
)

# Logs Insights queries, saved as "<stack>/<name>". Edit the placeholder value before running.
STORY_FIELDS = ", ".join(
    ["@timestamp", "@logStream", c.LEVEL, c.EVENT, c.PROCESS, c.PID, c.MESSAGE_ID, c.RECEIVE_COUNT]
)
QUERIES = {
    "process-story": logs.QueryString(
        fields=[f"{STORY_FIELDS}, {c.OUTCOME}, {c.DURATION_SECONDS}, {c.REASON}, {c.ERROR}"],
        filter_statements=[f'{c.PROCESS} = "worker_00"'],
        sort="@timestamp asc",
        limit=1000,
    ),
    "message-story": logs.QueryString(
        fields=[
            f"{STORY_FIELDS}, {c.OUTCOME}, {c.DURATION_SECONDS}, {c.ERROR}, "
            f"{c.OUTPUT_STREAM}, {c.OUTPUT_TEXT}"  # a command's output, beside its job line
        ],
        filter_statements=[f'{c.MESSAGE_ID} = "MESSAGE-ID"'],
        sort="@timestamp asc",
        limit=1000,
    ),
    "slowest-jobs": logs.QueryString(
        fields=[
            f"@timestamp, {c.DURATION_SECONDS}, {c.OUTCOME}, {c.MESSAGE_ID}, {c.RECEIVE_COUNT}, "
            f"{c.PROCESS}, @logStream"
        ],
        filter_statements=[f'{c.EVENT} = "{c.JOB_EVENT}"'],
        sort=f"{c.DURATION_SECONDS} desc",
        limit=50,
    ),
    "errors": logs.QueryString(
        fields=[f"{STORY_FIELDS}, {c.OUTCOME}, {c.ERROR}, {c.REASON}, @message"],
        filter_statements=[
            f'{c.LEVEL} = "error" or {c.OUTCOME} in {json.dumps(list(FAILED_OUTCOMES))}'
        ],
        sort="@timestamp desc",
        limit=500,
    ),
}


def oldest_message_age_seconds(config: EnvironmentConfig) -> int:
    """The age of the oldest message that raises the alarm.

    ``alarms.oldest_message_age_minutes`` when set. Default: an idle service wakes up
    (``WAKE_UP_SECONDS``, 20 min), runs the job to its timeout and, if its process crashed,
    gets the message back after one visibility timeout; a batch is meant to wait for up to
    its window's length (the deadline alarm watches that more finely), so the longest window
    raises the threshold.
    """
    if config.alarms.oldest_message_age_minutes is not None:
        return config.alarms.oldest_message_age_minutes * 60
    healthy = (
        WAKE_UP_SECONDS
        + config.worker.job_timeout_seconds
        + config.queue.visibility_timeout_seconds
    )
    windows = [
        (w.end.hour - w.start.hour) * 3600 + (w.end.minute - w.start.minute) * 60
        for w in config.batch_windows
    ]
    return max([healthy, *windows])


def _groups_in_flight(consumed: ConsumedQueue, label: str) -> list[cloudwatch.Metric]:
    """A FIFO queue's groups with a message in flight (none for a standard queue): SQS gives
    a group to one receiver at a time, so processes beyond this number have nothing to do."""
    if not consumed.config.fifo:
        return []
    return [
        consumed.queue.metric(
            FIFO_GROUPS_IN_FLIGHT, label=label, period=MINUTE, statistic="Maximum"
        )
    ]


def _allow_publish(topic: sns.Topic, service: str, source_arn: str, operator: str) -> None:
    """``service`` may publish on behalf of ``source_arn`` in this account only."""
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(service)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Stack.of(topic).account},
                operator: {"aws:SourceArn": source_arn},
            },
        )
    )


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """An SNS topic as a rule target, without the unconditional ``events.amazonaws.com``
    publish grant of ``aws_events_targets.SnsTopic``: Monitoring grants it for its own rule
    only (``aws:SourceArn``)."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self._topic.topic_arn, input=self._message, target_resource=self._topic
        )


@dataclass(frozen=True)
class WatchedFleet:
    """One worker's monitoring (:meth:`Monitoring.watch`): ``alarms`` (name suffix -> alarm),
    ``job_metrics`` (filter id -> metric filter), ``queries``, and the two rules."""

    alarms: dict[str, cloudwatch.Alarm]
    job_metrics: dict[str, logs.MetricFilter]
    deployment_failed_rule: events.Rule
    tasks_not_starting_rule: events.Rule
    queries: dict[str, logs.QueryDefinition]


class Monitoring(Construct):
    """Alarms to one topic, an optional dashboard and saved log queries for one environment.

    What it costs follows ``config.monitoring`` (docs/operations.md, "Monitoring levels";
    scripts/capacity/bill.py prices it). Shared by every worker of the environment:

    * Topic: SNS, encrypted with ``key`` (the kit's key, see KitKey), TLS only; only this
      account's CloudWatch alarms and this construct's EventBridge rules may publish
      (``aws:SourceAccount`` / ``aws:SourceArn``); ``config.alarms.email`` subscribed when set.
    * Dashboard ``<stack prefix>`` with ``monitoring.dashboard`` (made by the first
      :meth:`watch`, so None until then): each watched worker's rows.

    Each worker's alarms, rules, job metrics and queries come from :meth:`watch`.
    Attributes: ``topic``, ``key``, ``dashboard`` (or None), ``fleets`` (worker name ->
    :class:`WatchedFleet`, in the order they were watched).
    """

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvironmentConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, id_)
        self.key = key
        self.topic = self._topic(config.stack_prefix, config.alarms.email)
        self._action = cloudwatch_actions.SnsAction(self.topic)
        self.dashboard: cloudwatch.Dashboard | None = None
        self.fleets: dict[str, WatchedFleet] = {}

    def watch(
        self,
        worker: str,
        *,
        config: EnvironmentConfig,
        queues: Sequence[ConsumedQueue],
        cluster: ecs.ICluster,
        service: ecs.FargateService,
        log_group: logs.ILogGroup,
        deadline_alarms: Sequence[cloudwatch.Alarm] = (),
        scaling_alarms: Sequence[cloudwatch.Alarm] = (),
    ) -> WatchedFleet:
        """Watch the worker ``worker`` (``config``: the environment as that worker sees it,
        ``EnvironmentConfig.of_fleet``). Its resources' ids and names are the environment's for
        the ``default`` worker and carry the worker's name for the others (``scoped_id``):

        * Alarms (alarm and OK actions to the topic), named ``<stack prefix>[-<worker>]-<what>``,
          at every level: ``dlq-messages`` (DLQ >= ``dlq_messages_threshold``, default 1),
          ``oldest-message-age`` (see :func:`oldest_message_age_seconds`) for each of ``queues``
          (the worker's, in priority order; with several, a queue's two carry its name but for
          the ``default`` queue's: ``dlq-messages-high``), ``error-rate`` (the
          average of ``JobFailurePercent``: failed / all jobs > ``worker_error_rate_percent``,
          default 20, two 5-minute periods, only when jobs ran: one metric); plus the given
          ``deadline_alarms`` (default none). Level ``full`` adds ``memory-high`` (a task's
          memory > 90% for 3 minutes) and, with Container Insights, ``tasks-missing`` (running <
          desired for ``tasks_missing_minutes``, default 10). ``scaling_alarms`` (default none)
          are only shown on the dashboard.
        * EventBridge rules (free) mail the topic when a deployment fails (circuit breaker
          rollback) and when tasks cannot start (ECS service action events
          SERVICE_TASK_START_IMPAIRED, SERVICE_TASK_CONFIGURATION_FAILURE and, without Spot,
          SERVICE_TASK_PLACEMENT_FAILURE): tasks missing, without Container Insights.
        * Job metrics from the log group in :func:`~stacks.naming.job_metric_namespace`
          (``QueueWorkerKit/<env>`` for ``default``): ``JobsProcessed``, ``JobsFailed``,
          ``JobsRetried``, ``JobDuration`` (seconds, done jobs), ``JobFailurePercent`` (100 a
          failed job, 0 a done one).
        * Dashboard rows (titles prefixed ``<worker>: `` but for ``default``): queue, DLQ,
          tasks, scaling, CPU/memory, job outcomes.
        * Logs Insights queries ``<stack>[/<worker>]/process-story``, ``message-story``,
          ``slowest-jobs``, ``errors``.
        """
        fleet = _FleetMonitoring(self, worker, config, cluster, service, log_group)
        alarms = fleet.alarms(queues, service)
        for alarm in deadline_alarms:
            self.notify(alarm)
        watched = WatchedFleet(
            alarms=alarms,
            job_metrics=fleet.job_metrics,
            deployment_failed_rule=fleet.deployment_failed_rule(service),
            tasks_not_starting_rule=fleet.tasks_not_starting_rule(service),
            queries=fleet.queries(log_group),
        )
        if config.monitoring.dashboard:
            if self.dashboard is None:
                self.dashboard = cloudwatch.Dashboard(
                    self,
                    "Dashboard",
                    dashboard_name=config.stack_prefix,
                    default_interval=Duration.hours(12),
                )
            fleet.add_rows(
                self.dashboard,
                queues,
                service,
                log_group,
                [*alarms.values(), *deadline_alarms, *scaling_alarms],
            )
        self.fleets[worker] = watched
        return watched

    def _topic(self, prefix: str, email: str | None) -> sns.Topic:
        """Encrypted with the kit's key, TLS only; this account's alarms may publish."""
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{prefix} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        stack = Stack.of(self)
        _allow_publish(
            topic,
            "cloudwatch.amazonaws.com",
            f"arn:aws:cloudwatch:{stack.region}:{stack.account}:alarm:*",
            "ArnLike",
        )
        if email is not None:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def notify(self, alarm: cloudwatch.Alarm) -> cloudwatch.Alarm:
        """``alarm`` sends its alarm and OK actions to the topic."""
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        return alarm


class _FleetMonitoring:
    """What :meth:`Monitoring.watch` builds for one worker, in the Monitoring construct: ids
    and names are the environment's for ``default`` and carry the worker's name otherwise."""

    def __init__(
        self,
        monitoring: Monitoring,
        worker: str,
        config: EnvironmentConfig,
        cluster: ecs.ICluster,
        service: ecs.FargateService,
        log_group: logs.ILogGroup,
    ) -> None:
        self._monitoring = monitoring
        self._worker = worker
        self._config = config
        self._prefix = scoped_id(config.stack_prefix, worker)
        self.job_metrics = {
            m.key: log_group.add_metric_filter(
                m.key,
                filter_pattern=logs.FilterPattern.literal(m.pattern),
                metric_namespace=job_metric_namespace(config.name, worker),
                metric_name=m.name,
                metric_value=m.value,
                unit=m.unit,
                default_value=m.default_value,
            )
            for m in JOB_METRICS
        }
        task_dimensions = {"ClusterName": cluster.cluster_name, "ServiceName": service.service_name}
        self._insights = config.container_insights
        self._tasks = {
            name: cloudwatch.Metric(
                namespace="ECS/ContainerInsights",
                metric_name=f"{name.capitalize()}TaskCount",
                dimensions_map=task_dimensions,
                period=MINUTE,
                statistic="Average",
                label=f"{name} tasks",
            )
            for name in ("running", "desired", "pending")
        }

    def _title(self, title: str) -> str:
        return title if self._worker == DEFAULT_NAME else f"{self._worker}: {title}"

    def _error_rate_metric(self) -> cloudwatch.Metric:
        return self._job_metric(c.JOB_FAILURE_PERCENT, "Average")

    def deployment_failed_rule(self, service: ecs.FargateService) -> events.Rule:
        return self._service_event_rule(
            "DeploymentFailed",
            service,
            detail_type="ECS Deployment State Change",
            events_=["SERVICE_DEPLOYMENT_FAILED"],
            what="worker deployment failed and was rolled back",
            anchor="deployment-failed",
        )

    def tasks_not_starting_rule(self, service: ecs.FargateService) -> events.Rule:
        """Tasks that cannot start, without Container Insights: ECS says so as service action
        events (free). A placement failure is Spot's shortfall when the fallback covers it."""
        not_starting = ["SERVICE_TASK_START_IMPAIRED", "SERVICE_TASK_CONFIGURATION_FAILURE"]
        if not self._config.worker.capacity.spot:
            not_starting.append("SERVICE_TASK_PLACEMENT_FAILURE")
        return self._service_event_rule(
            "TasksNotStarting",
            service,
            detail_type="ECS Service Action",
            events_=not_starting,
            what="worker tasks cannot start",
            anchor="tasks-missing",
        )

    def queries(self, log_group: logs.ILogGroup) -> dict[str, logs.QueryDefinition]:
        stack_name = Stack.of(self._monitoring).stack_name
        prefix = stack_name if self._worker == DEFAULT_NAME else f"{stack_name}/{self._worker}"
        return {
            name: logs.QueryDefinition(
                self._monitoring,
                scoped_id(f"Query-{name}", self._worker),
                query_definition_name=f"{prefix}/{name}",
                query_string=query,
                log_groups=[log_group],
            )
            for name, query in QUERIES.items()
        }

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        periods: int,
        description: str,
        comparison: cloudwatch.ComparisonOperator = GT,
        anchor: str | None = None,
    ) -> cloudwatch.Alarm:
        """An alarm named ``<prefix>-<name>``: ``periods`` breaching datapoints in a row; its
        description points at docs/operations.md#<anchor> (default: ``name``)."""
        return self._monitoring.notify(
            cloudwatch.Alarm(
                self._monitoring,
                scoped_id(f"Alarm-{name}", self._worker),
                alarm_name=f"{self._prefix}-{name}",
                alarm_description=f"{description} See docs/operations.md#{anchor or name}.",
                metric=metric,
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )

    def _queue_alarms(self, consumed: ConsumedQueue, several: bool) -> dict[str, cloudwatch.Alarm]:
        """The DLQ and oldest-message alarms of one queue of the worker: named as ever for a
        worker of one queue; with ``several``, carrying the queue's name (``scoped_id``)."""
        alarms = self._config.alarms
        age = oldest_message_age_seconds(self._config)
        of_queue = f" of queue {consumed.name!r}" if several else ""
        names = {
            what: scoped_id(what, consumed.name) if several else what
            for what in ("dlq-messages", "oldest-message-age")
        }
        return {
            names["dlq-messages"]: self._alarm(
                names["dlq-messages"],
                consumed.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                threshold=alarms.dlq_messages_threshold,
                comparison=GTE,
                periods=1,
                description=f"The DLQ{of_queue} holds {alarms.dlq_messages_threshold}+ "
                "messages: jobs failed for good. Peek, fix, redrive.",
                anchor="dlq-messages",
            ),
            names["oldest-message-age"]: self._alarm(
                names["oldest-message-age"],
                consumed.queue.metric_approximate_age_of_oldest_message(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                threshold=age,
                periods=1,
                description=f"A message{of_queue} has waited over {age} s: the fleet is not "
                "consuming or not keeping up.",
                anchor="oldest-message-age",
            ),
        }

    def alarms(
        self, queues: Sequence[ConsumedQueue], service: ecs.FargateService
    ) -> dict[str, cloudwatch.Alarm]:
        alarms = self._config.alarms
        missing = alarms.tasks_missing_minutes
        alarms_ = {
            **{
                name: alarm
                for consumed in queues
                for name, alarm in self._queue_alarms(consumed, len(queues) > 1).items()
            },
            "error-rate": self._alarm(
                "error-rate",
                self._job_metric(c.JOB_FAILURE_PERCENT, "Average"),
                threshold=alarms.worker_error_rate_percent,
                periods=2,
                description=f"Over {alarms.worker_error_rate_percent}% of jobs failed (retry, "
                "dead_letter, timeout) for 10 min.",
            ),
        }
        if self._config.monitoring.level == "full":
            alarms_["memory-high"] = self._alarm(
                "memory-high",
                service.metric_memory_utilization(period=MINUTE, statistic="Maximum"),
                threshold=MEMORY_ALARM_PERCENT,
                periods=3,
                description=f"A task used over {MEMORY_ALARM_PERCENT}% of its memory for 3 "
                "min: it may be OOM-killed. Check recycling settings.",
            )
        if self._config.monitoring.level == "full" and self._insights:
            alarms_["tasks-missing"] = self._alarm(
                "tasks-missing",
                cloudwatch.MathExpression(
                    expression="FILL(desired, 0) - FILL(running, 0)",
                    using_metrics={k: self._tasks[k] for k in ("desired", "running")},
                    label="Tasks desired but not running",
                    period=MINUTE,
                ),
                threshold=1,
                comparison=GTE,
                periods=missing,
                description=f"Fewer tasks ran than desired for {missing} min: tasks fail to "
                "start or crash-loop.",
            )
        return alarms_

    def _job_metric(self, name: str, statistic: str = "Sum") -> cloudwatch.Metric:
        metric_filter = self.job_metrics.get(name) or self.job_metrics[f"{name}-failed"]
        return metric_filter.metric(
            period=FIVE_MINUTES, statistic=statistic, label=f"{name} ({statistic})"
        )

    def _service_event_rule(
        self,
        id_: str,
        service: ecs.FargateService,
        *,
        detail_type: str,
        events_: list[str],
        what: str,
        anchor: str,
    ) -> events.Rule:
        """Mail the topic when ECS sends one of ``events_`` about ``service`` (EventBridge's AWS
        service events are free): SERVICE_DEPLOYMENT_FAILED when the circuit breaker rolls a
        deploy back, SERVICE_TASK_START_IMPAIRED and the task failures when tasks cannot start."""
        reason = events.EventField.from_path("$.detail.reason")
        name = events.EventField.from_path("$.detail.eventName")
        rule = events.Rule(
            self._monitoring,
            scoped_id(id_, self._worker),
            description=f"{self._prefix}: {what}",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=[detail_type],
                resources=[service.service_arn],
                detail={"eventName": events_},
            ),
            targets=[
                _TopicTarget(
                    self._monitoring.topic,
                    events.RuleTargetInput.from_text(
                        f"{self._prefix}: {what} ({name}): {reason}. "
                        f"See docs/operations.md#{anchor}."
                    ),
                )
            ],
        )
        topic = self._monitoring.topic
        _allow_publish(topic, "events.amazonaws.com", rule.rule_arn, "ArnEquals")
        return rule

    def add_rows(
        self,
        dashboard: cloudwatch.Dashboard,
        queues: Sequence[ConsumedQueue],
        service: ecs.FargateService,
        log_group: logs.ILogGroup,
        alarms: Sequence[cloudwatch.Alarm],
    ) -> None:
        """This worker's rows on the environment's dashboard; with several queues, each
        queue's lines carry its name."""
        age = oldest_message_age_seconds(self._config)

        def label(consumed: ConsumedQueue, what: str) -> str:
            return f"{consumed.name} {what}" if len(queues) > 1 else what

        def line(value: float, label: str) -> cloudwatch.HorizontalAnnotation:
            return cloudwatch.HorizontalAnnotation(value=value, label=label)

        def graph(
            title: str,
            metrics: Sequence[cloudwatch.IMetric],
            alarm_line: tuple[float, str] | None = None,
            y_axis: cloudwatch.YAxisProps | None = None,
        ) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=self._title(title),
                left=list(metrics),
                left_annotations=[line(*alarm_line)] if alarm_line else None,
                left_y_axis=y_axis,
                width=8,
                height=6,
            )

        dashboard.add_widgets(
            graph(
                "Queue depth",
                [
                    metric
                    for consumed in queues
                    for metric in (
                        consumed.queue.metric_approximate_number_of_messages_visible(
                            label=label(consumed, "visible"), period=MINUTE, statistic="Maximum"
                        ),
                        consumed.queue.metric_approximate_number_of_messages_not_visible(
                            label=label(consumed, "in flight"), period=MINUTE, statistic="Maximum"
                        ),
                        consumed.queue.metric_approximate_number_of_messages_delayed(
                            label=label(consumed, "delayed"), period=MINUTE, statistic="Maximum"
                        ),
                        *_groups_in_flight(consumed, label(consumed, "groups in flight")),
                    )
                ],
            ),
            graph(
                "Age of the oldest message (s)",
                [
                    consumed.queue.metric_approximate_age_of_oldest_message(
                        label=label(consumed, "oldest"), period=MINUTE, statistic="Maximum"
                    )
                    for consumed in queues
                ],
                alarm_line=(age, "alarm"),
            ),
            graph(
                "DLQ depth",
                [
                    consumed.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        label=label(consumed, "in DLQ"), period=MINUTE, statistic="Maximum"
                    )
                    for consumed in queues
                ],
                alarm_line=(self._config.alarms.dlq_messages_threshold, "alarm"),
            ),
        )
        dashboard.add_widgets(
            graph("Tasks: running / desired / pending", list(self._tasks.values()))
            if self._insights
            else graph(
                "Tasks running (tasks reporting CPU)",
                [
                    service.metric_cpu_utilization(
                        period=MINUTE, statistic="SampleCount", label="running tasks"
                    )
                ],
            ),
            cloudwatch.AlarmStatusWidget(
                title=self._title("Alarms (scale-out / scale-in show scaling activity)"),
                alarms=list(alarms),
                width=8,
                height=6,
            ),
            graph(
                "Task CPU and memory (%)",
                [
                    service.metric_cpu_utilization(period=MINUTE, label="CPU avg"),
                    service.metric_memory_utilization(period=MINUTE, label="memory avg"),
                    service.metric_memory_utilization(
                        label="memory max", period=MINUTE, statistic="Maximum"
                    ),
                ],
                alarm_line=(MEMORY_ALARM_PERCENT, "memory alarm"),
                y_axis=cloudwatch.YAxisProps(min=0, max=100),
            ),
        )
        dashboard.add_widgets(
            graph(
                "Jobs per 5 min",
                [
                    self._job_metric(name)
                    for name in (c.JOBS_PROCESSED, c.JOBS_FAILED, c.JOBS_RETRIED)
                ],
            ),
            graph(
                "Job duration of done jobs (s)",
                [self._job_metric(c.JOB_DURATION, p) for p in ("p50", "p90", "p99")],
            ),
            graph(
                "Failed jobs (%)",
                [self._error_rate_metric()],
                alarm_line=(self._config.alarms.worker_error_rate_percent, "alarm"),
            ),
        )
        dashboard.add_widgets(
            cloudwatch.LogQueryWidget(
                title=self._title("Errors and failed jobs (latest)"),
                log_group_names=[log_group.log_group_name],
                query_string=QUERIES["errors"].to_string(),
                width=24,
                height=6,
            )
        )
