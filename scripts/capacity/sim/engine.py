"""One simulated day: SQS, ECS tasks of N worker slots, CloudWatch, alarms and scaling.

Event driven with integer seconds since local midnight (`t`). Every minute (t % 60 == 0):
scheduled actions fire, one datapoint per metric is sampled (published after a lag), alarms
are evaluated on the datapoints published so far, and the policies of alarms in ALARM run.
Slots pull one message at a time, at once when free and a message is visible (long poll).
A fleet may consume several queues (SimConfig.other_queues): a slot takes a message of the first
queue in SimConfig.queue_order that has one visible, and the queue metrics the scaling reads are
the sums over them (the oldest message's age the oldest of any); scripts/capacity/sim/layout.py
runs several fleets.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from worker import contract

from scripts.capacity import pricing
from scripts.capacity.sim.mathexpr import Expression, Value
from scripts.capacity.sim.schedule import fire_times
from scripts.capacity.sim.template import AlarmSpec, MetricQuery, Model, PolicySpec

DAY = 86_400
ON_DEMAND = "on-demand"
SPOT = "spot"
CPU_PER_BUSY_PROCESS = 0.05  # vCPU of an I/O-bound busy worker process
IDLE_AFTER_SECONDS = 6 * 3600  # SQS treats a queue without activity this long as inactive

JOB_NAMESPACE_PREFIX = contract.metric_namespace("")
JOB_METRIC = contract.JOB_DURATION
SQS_METRICS = (
    "ApproximateNumberOfMessagesVisible",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateAgeOfOldestMessage",
)


Lag = tuple[int, int]
SOURCES = ("sqs", "ecs", "jobs")  # who publishes a metric: SQS, Container Insights, the kit's
# How many periods before the newest an alarm looks back for real datapoints (CloudWatch's
# "evaluation range" is wider than the evaluation periods; it evaluates the newest real ones).
EVALUATION_RANGE_EXTRA = 3


@dataclass(frozen=True)
class Gap:
    """Datapoints of `source` (one of SOURCES) for the minutes in [start, end) never arrive."""

    source: str
    start: int
    end: int


@dataclass(frozen=True)
class Batch:
    """`count` messages sent uniformly between `start` and `end` (seconds after midnight)."""

    count: int
    start: int
    end: int


@dataclass(frozen=True)
class QueueLoad:
    """Another queue the fleet consumes: its arrivals (batches) and job durations (uniform
    `duration_low`..`duration_high` seconds). None of its messages is poison or fails."""

    name: str
    batches: tuple[Batch, ...]
    duration_low: int
    duration_high: int

    @property
    def messages(self) -> int:
        return sum(batch.count for batch in self.batches)


@dataclass
class SimConfig:
    """Inputs of one simulated day (defaults: the reference day).

    `messages` arrive between `arrival_start` and `arrival_end`; `more_batches` arrive on top
    (for example a second batch late in the window)."""

    messages: int = 2000
    arrival_start: int = 3 * 3600 + 55 * 60  # seconds after local midnight
    arrival_end: int = 4 * 3600
    duration_low: int = 30
    duration_high: int = 300
    start_latency: int = 60
    seed: int = 1
    day: date = date(2026, 11, 24)
    timezone: str = "Asia/Tokyo"
    region: str = "ap-northeast-1"
    poison_fraction: float = 0.0
    sqs_lag: Lag = (60, 60)  # seconds a datapoint takes to publish, uniform low..high
    ecs_lag: Lag = (60, 60)  # Container Insights: AWS documents no latency
    job_lag: Lag = (60, 60)  # the kit's job metric: log delivery plus the metric filter
    gaps: tuple[Gap, ...] = ()  # minutes whose datapoints of one source never arrive
    wake_lag: int = 600
    deadline: int = 8 * 3600 + 30 * 60
    processes: int | None = None  # override WORKER_PROCESSES (what-if)
    more_batches: tuple[Batch, ...] = ()
    spot_interruptions_per_hour: float = 0.0  # per Spot task-hour (Poisson)
    spot_capacity: int | None = None  # Spot tasks that can run at once; None: no shortfall
    spot_short: tuple[int, int] = (0, DAY)  # when spot_capacity holds (seconds after midnight)
    spot_discount: float = pricing.SPOT_DISCOUNT
    first_attempt_failures: float = 0.0  # share of messages whose first run fails (then retried)

    # Several queues (issue 20): the template's queue is `queue_name`, the one `messages` and
    # `more_batches` go to; `other_queues` are consumed by the same fleet, in `priority` order
    # (empty: `queue_name` first, then `other_queues` as listed).
    queue_name: str = "default"
    other_queues: tuple[QueueLoad, ...] = ()
    priority: tuple[str, ...] = ()

    @property
    def queue_order(self) -> tuple[str, ...]:
        """The queues the fleet consumes, the first it takes a message of first."""
        return self.priority or (self.queue_name, *(q.name for q in self.other_queues))

    @property
    def batches(self) -> tuple[Batch, ...]:
        return (Batch(self.messages, self.arrival_start, self.arrival_end), *self.more_batches)

    @property
    def total_messages(self) -> int:
        return sum(batch.count for batch in self.batches)


@dataclass
class Message:
    sent: int
    duration: int
    poison: bool
    fails_first: bool = False  # the first run fails (retry), the next ones succeed
    state: str = "pending"  # pending | visible | inflight | deleted | dlq
    receives: int = 0
    receipt: int = 0
    runs: int = 0
    release: str = ""  # why it became visible again: scaling | handed_back | retry | visibility
    settled: int | None = None
    queue: int = 0  # its queue's place in SimConfig.queue_order
    started: int | None = None  # when its first run started


@dataclass
class Run:
    message: int
    receipt: int
    start: int
    end: int
    cancelled: bool = False


@dataclass
class Task:
    id: int
    requested: int
    state: str = "pending"  # pending | running | stopping | stopped
    running_since: int | None = None
    stopped: int | None = None
    slots: list[Run | None] = field(default_factory=list)
    capacity: str = ON_DEMAND  # ON_DEMAND | SPOT
    fallback: bool = False  # a task of the on-demand fallback service
    interrupted: bool = False  # got a Spot interruption warning (SIGTERM)

    def busy(self) -> int:
        return sum(run is not None for run in self.slots)


@dataclass
class Stats:
    killed_by_scale_in: int = 0
    handed_back: int = 0
    duplicates_by_scaling: int = 0
    duplicates_by_visibility: int = 0
    spot_interruptions: int = 0
    jobs_interrupted: int = 0  # jobs running when their task got the 2-minute warning
    reruns_after_interruption: int = 0  # of those, handed back unfinished: they run again
    killed_by_interruption: int = 0  # still running at SIGKILL (the grace was too long)
    peak_unplaced: int = 0  # worker tasks ECS could not place (no Spot capacity), at most
    retries: int = 0
    scaling_actions: list[tuple[int, str, int, int]] = field(default_factory=list)
    alarm_log: list[tuple[int, str, str]] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)


class _Metrics:
    """Per-minute datapoints (value, published at) per metric key."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str], dict[int, tuple[float, int]]] = {}

    def put(self, key: tuple[str, str], minute: int, value: float, published: int) -> None:
        self.points.setdefault(key, {})[minute] = (value, published)

    def get(self, key: tuple[str, str], minute: int, now: int) -> float | None:
        point = self.points.get(key, {}).get(minute)
        return point[0] if point is not None and point[1] <= now else None


def _dependency_order(expressions: dict[str, Expression]) -> list[str]:
    """Expression ids, each after the expressions it reads (a cycle keeps template order)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(query_id: str) -> None:
        if query_id in order or query_id in visiting:
            return
        visiting.add(query_id)
        for used in sorted(expressions[query_id].ids & expressions.keys()):
            visit(used)
        order.append(query_id)

    for query_id in expressions:
        visit(query_id)
    return order


def _aggregate(values: list[float], statistic: str) -> float | None:
    if not values:
        return None
    if statistic == "Maximum":
        return max(values)
    if statistic == "Minimum":
        return min(values)
    if statistic == "Sum":
        return sum(values)
    if statistic == "SampleCount":
        return float(len(values))
    return sum(values) / len(values)


class _Alarm:
    """An alarm's state machine over published datapoints."""

    def __init__(self, spec: AlarmSpec, metric_key: Callable[[MetricQuery], tuple[str, str]]):
        self.spec = spec
        self.state = "INSUFFICIENT_DATA"
        self.last_value: float | None = None
        self.keys = {q.id: metric_key(q) for q in spec.queries if q.expression is None}
        self.expressions = {
            q.id: Expression(q.expression) for q in spec.queries if q.expression is not None
        }
        # A job datapoint is stored as its statistic already (Sum, SampleCount): add them up.
        self.statistics = {
            q.id: "Sum" if self.keys.get(q.id, ("",))[0] == "jobs" else q.statistic
            for q in spec.queries
        }
        self.order = _dependency_order(self.expressions)

    def values(
        self, metrics: _Metrics, indices: range, now: int, midnight: datetime | None = None
    ) -> list[Value]:
        """The returned query's value for each period of `indices` (oldest first), as
        published by `now`; `midnight` (aware, local) dates them. FILL(id, REPEAT) takes the
        newest earlier real value of `id` among these periods, as CloudWatch does within the
        alarm's query range."""
        minutes = self.spec.period // 60
        previous: dict[str, float] = {}
        returned: list[Value] = []
        for period_index in indices:
            first = period_index * minutes
            # Seconds since midnight are elapsed seconds: add them in UTC (a DST day has 23 or
            # 25 h).
            stamp = (
                None if midnight is None else midnight.astimezone(UTC) + timedelta(minutes=first)
            )
            values: dict[str, Value] = {}
            for query_id, key in self.keys.items():
                points = [metrics.get(key, m, now) for m in range(first, first + minutes)]
                present = [p for p in points if p is not None]
                values[query_id] = _aggregate(present, self.statistics[query_id])
            # Expressions may read each other: evaluate each after the ids it reads.
            for query_id in self.order:
                try:
                    values[query_id] = self.expressions[query_id].evaluate(values, stamp, previous)
                except ValueError:
                    values[query_id] = None
            previous.update({k: v for k, v in values.items() if v is not None})
            returned.append(values.get(self.spec.returned))
        return returned

    def value(
        self, metrics: _Metrics, period_index: int, now: int, midnight: datetime | None = None
    ) -> Value:
        """The returned query's value for one period (see :meth:`values`)."""
        return self.values(metrics, range(period_index, period_index + 1), now, midnight)[0]

    def evaluate(self, metrics: _Metrics, now: int, midnight: datetime | None = None) -> str:
        """CloudWatch's evaluation: it reads a range of periods wider than the evaluation
        periods (EVALUATION_RANGE_EXTRA more) and, when that range holds enough real
        datapoints, evaluates the newest of them (a late newest datapoint delays the alarm, it
        is not "missing"); otherwise the newest periods, missing ones as `treat_missing` says."""
        spec = self.spec
        latest = now // spec.period - 1
        wanted = spec.evaluation_periods
        span = range(latest - wanted - EVALUATION_RANGE_EXTRA + 1, latest + 1)
        found = self.values(metrics, span, now, midnight)[::-1]  # newest first
        present = [v for v in found if v is not None]
        window = present[:wanted] if len(present) >= wanted else found[:wanted]
        present = [v for v in window if v is not None]
        self.last_value = present[0] if present else None
        missing = len(window) - len(present)
        breaching = sum(_breaches(v, spec.threshold, spec.comparison) for v in present)
        if spec.treat_missing == "breaching":
            breaching += missing
        elif not present and spec.treat_missing == "missing":
            self.state = "INSUFFICIENT_DATA"
            return self.state
        elif not present:  # ignore: keep the state; notBreaching: OK
            self.state = self.state if spec.treat_missing == "ignore" else "OK"
            return self.state
        self.state = "ALARM" if breaching >= spec.datapoints_to_alarm else "OK"
        return self.state


def _breaches(value: float, threshold: float, comparison: str) -> bool:
    return {
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "GreaterThanThreshold": value > threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }[comparison]


class Simulation:
    """One day of the model under `config`; `run()` then read the attributes."""

    def __init__(self, model: Model, config: SimConfig) -> None:
        self.model = model
        self.config = config
        self.processes = config.processes or model.task.processes
        self.rng = random.Random(config.seed)
        self.zone = ZoneInfo(config.timezone)
        self.midnight = datetime(
            config.day.year, config.day.month, config.day.day, tzinfo=self.zone
        )
        task = model.task
        full = pricing.task_price_per_second(
            task.cpu, task.memory_mib, config.region, task.architecture
        )
        spot = pricing.task_price_per_second(
            task.cpu,
            task.memory_mib,
            config.region,
            task.architecture,
            spot=True,
            spot_discount=config.spot_discount,
        )
        self.prices = {ON_DEMAND: full, SPOT: spot}
        # The strategy's blend: the ideal of the shape (report.build).
        self.price_per_second = full * (1 - task.spot_share) + spot * task.spot_share
        self.interruptions = random.Random(config.seed + 1)  # apart from the arrivals' draws
        self.fallback_desired = 0
        self.fallback_streaks = (0, 0)  # minutes in a row: (out, in) alarm breaching
        # The worker service's unplaced tasks per minute, with when Container Insights
        # publishes them (None: a gap swallowed it).
        self.unplaced_seen: list[tuple[int | None, int]] = []
        self.events: list[tuple[int, int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.sequence = 0
        self.now = 0
        self.messages: list[Message] = []
        self.queue_order = config.queue_order
        if sorted(self.queue_order) != sorted(
            {config.queue_name, *(q.name for q in config.other_queues)}
        ) or len(set(self.queue_order)) != len(self.queue_order):
            raise ValueError(f"priority {self.queue_order}: name every queue once")
        self.main_queue = self.queue_order.index(config.queue_name)
        # Per queue, in priority order; may hold stale entries: check Message.state.
        self.visible_queues: list[deque[int]] = [deque() for _ in self.queue_order]
        self.visible_in = [0] * len(self.queue_order)  # live entries of each
        self.visible_count = 0  # of every queue: what the fleet's scaling reads
        self.inflight = 0
        self.oldest: list[tuple[int, int, int]] = []  # (sent, message, receipt) heap, lazy
        self.dlq = 0
        self.tasks: list[Task] = []
        self.idle_slots: deque[tuple[Task, int]] = deque()
        self.min_capacity = model.min_capacity
        self.max_capacity = model.max_capacity
        self.peak_max_capacity = model.max_capacity
        self.desired = 0
        self.metrics = _Metrics()
        self.lags = random.Random(config.seed + 2)  # publishing delays, apart from the rest
        self.jobs_done: dict[int, tuple[float, int]] = {}  # minute -> (job seconds, jobs)
        self.stats = Stats()
        self.last_active = -10 * DAY  # the queue has been idle for long before the day
        self.wake_until = -1
        self.cooldowns: dict[str, tuple[int, int, str]] = {}  # policy -> (until, anchor, way)
        self.alarms = [_Alarm(spec, self._metric_key) for spec in model.alarms]
        self.alarms += self._target_tracking_alarms()
        # Alarms that only notify (deadline, DLQ): evaluated on the metrics the model has.
        self.watched = [_Alarm(spec, self._metric_key) for spec in model.other_alarms]

    # ---- events -------------------------------------------------------------------------
    def at(self, time: int, action: Callable[..., None], *args: Any, priority: int = 1) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (time, priority, self.sequence, action, args))

    def run(self) -> Simulation:
        self._schedule_arrivals()
        self._schedule_actions()
        for minute in range(DAY // 60):
            self.at(minute * 60, self._tick, priority=2)
        initial = self.model.task.desired_count
        self._set_desired(initial if initial is not None else self.min_capacity, "initial")
        for task in self.tasks:  # already running when the day starts
            self._task_running(task)
        while self.events and self.events[0][0] < DAY:
            time, _, _, action, args = heapq.heappop(self.events)
            self.now = time
            action(*args)
        self.now = DAY
        for task in self.tasks:
            if task.stopped is None:
                task.stopped = DAY
        return self

    # ---- SQS ----------------------------------------------------------------------------
    def _schedule_arrivals(self) -> None:
        config = self.config
        total = config.total_messages
        poison = set(self.rng.sample(range(total), round(total * config.poison_fraction)))
        failing = self.rng.sample(range(total), round(total * config.first_attempt_failures))
        times = sorted(
            batch.start + self.rng.randrange(max(batch.end - batch.start, 0) + 1)
            for batch in config.batches
            for _ in range(batch.count)
        )
        for index, sent in enumerate(times):
            duration = self.rng.randint(config.duration_low, config.duration_high)
            self.messages.append(
                Message(sent=sent, duration=duration, poison=index in poison, queue=self.main_queue)
            )
            self.at(sent, self._make_visible, index, 0)
        for index in failing:
            self.messages[index].fails_first = True
        # The other queues draw from their own generator: the template's queue keeps its day.
        draws = random.Random(config.seed + 3)
        for load in config.other_queues:
            place = self.queue_order.index(load.name)
            sent_times = sorted(
                batch.start + draws.randrange(max(batch.end - batch.start, 0) + 1)
                for batch in load.batches
                for _ in range(batch.count)
            )
            for sent in sent_times:
                duration = draws.randint(load.duration_low, load.duration_high)
                self.messages.append(Message(sent, duration, poison=False, queue=place))
                self.at(sent, self._make_visible, len(self.messages) - 1, 0)

    def _make_visible(self, index: int, receipt: int) -> None:
        """The message (at this receipt) becomes visible: new, expired, handed back, failed."""
        message = self.messages[index]
        if message.receipt != receipt or message.state not in ("pending", "inflight"):
            return
        if message.state == "inflight":
            self.inflight -= 1
        limit = self.model.queue.max_receive_count
        if limit is not None and message.receives >= limit:
            message.state = "dlq"
            message.settled = self.now
            self.dlq += 1
            return
        message.state = "visible"
        self.visible_count += 1
        self.visible_in[message.queue] += 1
        self.visible_queues[message.queue].append(index)
        heapq.heappush(self.oldest, (message.sent, index, message.receipt))
        self._dispatch()

    def _dispatch(self) -> None:
        while self.visible_count and self.idle_slots:
            task, slot = self.idle_slots.popleft()
            if task.state == "running" and task.slots[slot] is None:
                self._receive(task, slot)

    def _receive(self, task: Task, slot: int) -> None:
        """The slot takes the first visible message of the first queue that has one (as
        `queue:work --queue=high,default`): a later queue only when every earlier is empty."""
        visible = next(
            q for q, count in zip(self.visible_queues, self.visible_in, strict=True) if count
        )
        index = visible.popleft()
        message = self.messages[index]
        while message.state != "visible":
            index = visible.popleft()
            message = self.messages[index]
        self.visible_count -= 1
        self.visible_in[message.queue] -= 1
        if message.started is None:
            message.started = self.now
        message.receives += 1
        message.receipt += 1
        if message.runs and message.release not in ("retry", "handed_back"):
            if message.release == "scaling":
                self.stats.duplicates_by_scaling += 1
            else:
                self.stats.duplicates_by_visibility += 1
        message.release = ""
        message.runs += 1
        message.state = "inflight"
        self.inflight += 1
        run = Run(index, message.receipt, self.now, self.now + message.duration)
        task.slots[slot] = run
        self.at(run.end, self._job_end, task, slot, run)
        if self.model.task.heartbeat_seconds is None:
            self.at(
                self.now + self.model.queue.visibility_seconds, self._expire, index, run.receipt
            )

    def _expire(self, index: int, receipt: int) -> None:
        message = self.messages[index]
        if message.release == "":
            message.release = "visibility"
        self._make_visible(index, receipt)

    def _visible_after(self, run: Run) -> int:
        """When a message released without a delete comes back (heartbeat stops now)."""
        task = self.model.task
        base = self.model.queue.visibility_seconds
        if task.heartbeat_seconds is None:
            return run.start + base  # already scheduled by _receive
        beats = (self.now - run.start) // task.heartbeat_seconds
        return run.start + beats * task.heartbeat_seconds + base

    def _job_end(self, task: Task, slot: int, run: Run) -> None:
        if run.cancelled:
            return
        message = self.messages[run.message]
        latest = message.receipt == run.receipt and message.state in ("inflight", "visible")
        if message.poison or (message.fails_first and message.runs == 1):
            self.stats.retries += 1
            if latest:
                message.release = "retry"
                base = self.model.task.retry_backoff_base
                if base is not None:
                    cap = self.model.task.retry_backoff_max or 600
                    delay = min(base * 2 ** (message.receives - 1), cap)
                    self.at(self.now + delay, self._make_visible, run.message, run.receipt)
                elif self.model.task.heartbeat_seconds is not None:
                    self.at(self._visible_after(run), self._make_visible, run.message, run.receipt)
        elif message.state in ("inflight", "visible"):
            # Deleted even when an older receipt handle is used (SQS says it "might not" be:
            # in practice it is); a run of the same message still going is a duplicate.
            if message.state == "visible":
                self.visible_count -= 1
                self.visible_in[message.queue] -= 1
            else:
                self.inflight -= 1
            message.state = "deleted"
            message.settled = self.now
            seconds, count = self.jobs_done.get(self.now // 60, (0.0, 0))
            self.jobs_done[self.now // 60] = (seconds + self.now - run.start, count + 1)
        self._free_slot(task, slot)

    # ---- ECS ----------------------------------------------------------------------------
    def _set_desired(self, value: int, reason: str) -> None:
        value = max(self.min_capacity, min(self.max_capacity, value))
        if value != self.desired:
            self.stats.scaling_actions.append((self.now, reason, self.desired, value))
        self.desired = value
        self._reconcile()

    def _active(self) -> list[Task]:
        return [t for t in self.tasks if t.state in ("pending", "running")]

    def _protected(self, task: Task) -> bool:
        return self.model.task.task_protection and task.busy() > 0

    def _reconcile(self) -> None:
        """ECS brings each service to its desired count: the worker service by its capacity
        provider strategy (Spot tasks beyond ``spot_capacity`` cannot be placed), the fallback
        service on-demand."""
        strategy = self.model.task.strategy
        spot = strategy.spot_tasks(self.desired)
        self._converge(ON_DEMAND, False, self.desired - spot)
        self._converge(SPOT, False, spot)
        if self.model.fallback is not None:
            self._converge(ON_DEMAND, True, self.fallback_desired)

    def _converge(self, capacity: str, fallback: bool, wanted: int) -> None:
        active = [t for t in self._active() if t.capacity == capacity and t.fallback == fallback]
        missing = wanted - len(active)
        start, end = self.config.spot_short
        if capacity == SPOT and self.config.spot_capacity is not None and start <= self.now < end:
            placed = sum(t.capacity == SPOT and t.state != "stopped" for t in self.tasks)
            missing = min(missing, max(0, self.config.spot_capacity - placed))
        for _ in range(missing):
            task = Task(
                id=len(self.tasks),
                requested=self.now,
                slots=[None] * self.processes,
                capacity=capacity,
                fallback=fallback,
            )
            self.tasks.append(task)
            self.at(self.now + self.config.start_latency, self._task_running, task)
        excess = len(active) - wanted
        if excess <= 0:
            return
        # ECS does not know which tasks are idle: pending first, then the newest unprotected.
        candidates = sorted(
            (t for t in active if not self._protected(t)),
            key=lambda t: (t.state != "pending", -(t.running_since or t.requested), -t.id),
        )
        for task in candidates[:excess]:
            self._stop(task)

    def _unplaced(self) -> int:
        """Worker tasks desired but neither running nor pending: ECS could not place them."""
        placed = sum(t.state in ("pending", "running") and not t.fallback for t in self.tasks)
        return max(0, self.desired - placed)

    def _interrupt(self, task: Task) -> None:
        """A Spot interruption: the 2-minute warning is a SIGTERM, whatever the protection."""
        if task.state != "running":
            return
        self.stats.spot_interruptions += 1
        self.stats.jobs_interrupted += task.busy()
        task.interrupted = True
        self._stop(task)
        self._reconcile()  # ECS starts a replacement (on Spot, if it can place one)

    def _fallback_tick(self) -> None:
        """The fallback's two alarms on ``unplaced`` (Container Insights each minute, as
        published: late, or never in a gap) and their ExactCapacity policies: out sets the
        fallback to the unplaced count (the policy's step), in sets it to 0; a missing minute
        does not breach the out alarm and breaches the in alarm (the template says which)."""
        spec = self.model.fallback
        if spec is None:
            return
        seen = self._newest_published(self.unplaced_seen)
        out, back = self.fallback_streaks
        out_breach = seen is not None and _breaches(seen, spec.out.threshold, spec.out.comparison)
        back_breach = (
            _breaches(seen, spec.back.threshold, spec.back.comparison)
            if seen is not None
            else spec.back.treat_missing == "breaching"
        )
        out, back = (out + 1 if out_breach else 0), (back + 1 if back_breach else 0)
        self.fallback_streaks = (out, back)
        wanted = self.fallback_desired
        if out >= spec.out_minutes and seen is not None:
            step = _step_for(spec.out_policy, seen - spec.out.threshold)
            wanted = _adjusted(spec.out_policy, self.fallback_desired, step or 0)
        elif back >= spec.in_minutes:
            step = _step_for(spec.back_policy, (seen or 0) - spec.back.threshold)
            wanted = _adjusted(spec.back_policy, self.fallback_desired, step or 0)
        wanted = max(0, min(spec.max_tasks, wanted))
        if wanted != self.fallback_desired:
            self.stats.scaling_actions.append((self.now, "fallback", self.fallback_desired, wanted))
            self.fallback_desired = wanted
            self._reconcile()

    def _newest_published(self, points: list[tuple[int | None, int]]) -> int | None:
        """The newest value published by now among the last few minutes (CloudWatch's
        evaluation range); None when none is."""
        for published, value in reversed(points[-1 - EVALUATION_RANGE_EXTRA :]):
            if published is not None and published <= self.now:
                return value
        return None

    def _task_running(self, task: Task) -> None:
        if task.state != "pending":
            return
        task.state = "running"
        task.running_since = self.now
        rate = self.config.spot_interruptions_per_hour
        if task.capacity == SPOT and rate > 0:
            delay = self.interruptions.expovariate(rate / 3600)
            self.at(self.now + max(1, round(delay)), self._interrupt, task)
        for slot in range(len(task.slots)):
            self._free_slot(task, slot)

    def _free_slot(self, task: Task, slot: int) -> None:
        task.slots[slot] = None
        if task.state == "stopping":
            if task.busy() == 0:
                self._stopped(task)
            return
        if task.state != "running":
            return
        if self.visible_count:
            self._receive(task, slot)
        else:
            self.idle_slots.append((task, slot))
            if task.busy() == 0 and self.model.task.task_protection:
                self._reconcile()  # protection cleared: ECS may stop it now

    def _stop(self, task: Task) -> None:
        if task.state == "pending":
            self._stopped(task)
            return
        task.state = "stopping"
        spec = self.model.task
        grace = spec.stop_grace_seconds
        kill_at = self.now + spec.stop_timeout_seconds
        finish_by = kill_at if grace is None else min(kill_at, self.now + grace)
        for slot, run in enumerate(task.slots):
            if run is None or run.end <= finish_by:
                continue
            if grace is not None and self.now + grace < kill_at:
                self.at(self.now + grace, self._release, task, slot, run, "handed_back")
            else:
                self.at(kill_at, self._release, task, slot, run, "scaling")
        if task.busy() == 0:
            self._stopped(task)

    def _release(self, task: Task, slot: int, run: Run, why: str) -> None:
        """SIGTERM outcome for a job still running: handed back (visible now) or killed."""
        if run.cancelled or task.slots[slot] is not run:
            return
        run.cancelled = True
        message = self.messages[run.message]
        if message.receipt == run.receipt and message.state == "visible":
            message.release = why  # already visible (no heartbeat): the rerun is still ours
        if message.receipt == run.receipt and message.state == "inflight":
            message.release = why
            back = self.now if why == "handed_back" else self._visible_after(run)
            if why == "handed_back" or self.model.task.heartbeat_seconds is not None:
                self.at(max(back, self.now), self._make_visible, run.message, run.receipt)
        if why == "handed_back":
            self.stats.handed_back += 1
            self.stats.reruns_after_interruption += task.interrupted
        elif task.interrupted:
            self.stats.killed_by_interruption += 1
        else:
            self.stats.killed_by_scale_in += 1
        self._free_slot(task, slot)

    def _stopped(self, task: Task) -> None:
        task.state = "stopped"
        task.stopped = self.now

    # ---- scheduled actions ---------------------------------------------------------------
    def _schedule_actions(self) -> None:
        start = self.midnight
        end = start + timedelta(days=1)
        for action in self.model.scheduled_actions:
            for moment in fire_times(action.schedule, action.timezone, start, end):
                second = int((moment - start).total_seconds())
                self.at(
                    second,
                    self._scheduled,
                    action.name,
                    action.min_capacity,
                    action.max_capacity,
                    priority=0,
                )
            if action.max_capacity is not None:
                self.peak_max_capacity = max(self.peak_max_capacity, action.max_capacity)

    def _scheduled(self, name: str, low: int | None, high: int | None) -> None:
        if low is not None:
            self.min_capacity = low
        if high is not None:
            self.max_capacity = high
        self._set_desired(self.desired, f"scheduled {name}")

    # ---- CloudWatch ---------------------------------------------------------------------
    def _metric_key(self, query: MetricQuery) -> tuple[str, str]:
        namespace = query.namespace or ""
        if namespace == "AWS/SQS":
            queue = next((v for k, v in query.dimensions if k == "QueueName"), "")
            return (self.model.queue_names.get(queue, "work"), query.metric_name or "")
        if namespace.startswith(JOB_NAMESPACE_PREFIX):  # one datapoint per statistic
            return ("jobs", f"{query.metric_name}:{query.statistic}")
        return ("ecs", query.metric_name or "")

    def _published(self, source: str, minute: int, base: int) -> int | None:
        """When the datapoint of `minute` from `source` arrives (`base`: when it is complete,
        plus the source's lag); None when a gap swallows it."""
        if any(g.source == source and g.start <= minute * 60 < g.end for g in self.config.gaps):
            return None
        low, high = {"sqs": self.config.sqs_lag, "ecs": self.config.ecs_lag}.get(
            source, self.config.job_lag
        )
        return base + self.lags.randint(low, high)

    def _put(self, source: str, key: tuple[str, str], minute: int, value: float) -> None:
        base = max(self.now, self.wake_until) if source == "sqs" else self.now
        published = self._published(source, minute, base)
        if published is not None:
            self.metrics.put(key, minute, value, published)

    def _tick(self) -> None:
        minute = self.now // 60
        if self.model.task.strategy.spot_weight:
            self._reconcile()  # ECS retries placing what it could not
        # The worker service's tasks (its metrics); the fallback's apart.
        running = [t for t in self.tasks if t.state == "running" and not t.fallback]
        fallback = sum(t.state == "running" and t.fallback for t in self.tasks)
        messages = self.visible_count + self.inflight
        pending = sum(1 for t in self.tasks if t.state == "pending" and not t.fallback)
        unplaced = self._unplaced()
        self.stats.peak_unplaced = max(self.stats.peak_unplaced, unplaced)
        if messages or running or fallback:
            if self.now - self.last_active >= IDLE_AFTER_SECONDS:
                self.wake_until = self.now + self.config.wake_lag
            self.last_active = self.now
        if self.now - self.last_active < IDLE_AFTER_SECONDS:
            oldest = self._oldest_age()
            for name, value in zip(
                SQS_METRICS, (self.visible_count, self.inflight, oldest), strict=True
            ):
                self._put("sqs", ("work", name), minute, float(value))
            self._put("sqs", ("dlq", SQS_METRICS[0]), minute, float(self.dlq))
        self._put("ecs", ("ecs", "DesiredTaskCount"), minute, float(self.desired))
        self._put("ecs", ("ecs", "RunningTaskCount"), minute, float(len(running)))
        self.unplaced_seen.append((self._published("ecs", minute, self.now), unplaced))
        if running:
            vcpu = self.model.task.cpu / 1024
            busy = sum(t.busy() for t in running)
            cpu = 100 * busy * CPU_PER_BUSY_PROCESS / vcpu / len(running)
            self._put("ecs", ("ecs", "CPUUtilization"), minute, cpu)
        # The job lines of the minute that just ended (their metric filter's datapoint).
        seconds, count = self.jobs_done.pop(minute - 1, (0.0, 0))
        if count:
            for statistic, total in (("Sum", seconds), ("SampleCount", float(count))):
                self._put("jobs", ("jobs", f"{JOB_METRIC}:{statistic}"), minute - 1, total)
        counts: tuple[tuple[str, float], ...] = (
            ("visible", self.visible_count),
            ("in_flight", self.inflight),
            ("running", len(running)),
            ("pending", pending),
            ("unplaced", unplaced),
            ("fallback", fallback),
            ("spot", sum(t.state == "running" and t.capacity == SPOT for t in self.tasks)),
            ("desired", self.desired),
            ("max_tasks", self.max_capacity),
        )
        for name, number in counts:
            self.stats.series.setdefault(name, []).append(float(number))
        self._fallback_tick()
        self._evaluate_alarms()

    def _oldest_age(self) -> int:
        while self.oldest:
            sent, index, receipt = self.oldest[0]
            message = self.messages[index]
            if message.state == "visible" and message.receipt == receipt:
                return self.now - sent
            heapq.heappop(self.oldest)
        return 0

    def _evaluate_alarms(self) -> None:
        for alarm in [*self.alarms, *self.watched]:
            before = alarm.state
            state = alarm.evaluate(self.metrics, self.now, self.midnight)
            if state != before:
                self.stats.alarm_log.append((self.now, alarm.spec.logical_id, state))
            if state == "ALARM":
                for policy_id in alarm.spec.actions:
                    self._apply(self.model.policies[policy_id], alarm)

    def notifications(self) -> dict[str, int]:
        """Each notify-only alarm that went to ALARM, with the first second it did."""
        watched = {a.spec.logical_id for a in self.watched}
        fired: dict[str, int] = {}
        for now, logical_id, state in self.stats.alarm_log:
            if logical_id in watched and state == "ALARM":
                fired.setdefault(logical_id, now)
        return fired

    # ---- scaling policies ---------------------------------------------------------------
    def _target_tracking_alarms(self) -> list[_Alarm]:
        """The two alarms Application Auto Scaling creates for a CPU target-tracking policy."""
        alarms = []
        for policy in self.model.policies.values():
            if policy.kind != "TargetTrackingScaling":
                continue
            if policy.predefined_metric != "ECSServiceAverageCPUUtilization":
                raise ValueError(f"{policy.logical_id}: only ECSServiceAverageCPUUtilization")
            cpu = MetricQuery(id="m", namespace="AWS/ECS", metric_name="CPUUtilization")
            shapes = [("High", policy.target_value, "GreaterThanThreshold", 3)]
            if not policy.disable_scale_in:
                shapes.append(("Low", policy.target_value * 0.9, "LessThanThreshold", 15))
            for suffix, threshold, comparison, periods in shapes:
                spec = AlarmSpec(
                    logical_id=f"{policy.logical_id}-TargetTracking{suffix}",
                    queries=(cpu,),
                    returned="m",
                    threshold=threshold,
                    comparison=comparison,
                    evaluation_periods=periods,
                    datapoints_to_alarm=periods,
                    treat_missing="missing",
                    actions=(policy.logical_id,),
                    period=60,
                )
                alarms.append(_Alarm(spec, self._metric_key))
        return alarms

    def _apply(self, policy: PolicySpec, alarm: _Alarm) -> None:
        value = alarm.last_value
        if policy.kind == "TargetTrackingScaling":
            if value is None:
                return
            wanted = math.ceil(self.desired * value / policy.target_value)
            way = "out" if wanted > self.desired else "in"
            cooldown = policy.scale_out_cooldown if way == "out" else policy.scale_in_cooldown
            self._change(policy.logical_id, wanted, way, cooldown)
            return
        difference = (value if value is not None else alarm.spec.threshold) - alarm.spec.threshold
        step = _step_for(policy, difference)
        if step is None:
            return
        wanted = _adjusted(policy, self.desired, step)
        self._change(
            policy.logical_id,
            wanted,
            "out" if wanted > self.desired else "in",
            policy.cooldown,
            exact=policy.adjustment_type == "ExactCapacity",
        )

    def _change(
        self, policy_id: str, wanted: int, way: str, cooldown: int, *, exact: bool = False
    ) -> None:
        """Apply with Application Auto Scaling's cooldown rules: during a scale-out cooldown a
        new scale-out only adds what goes beyond the one that started the cooldown (its base
        is the capacity before that one; an exact capacity is what it says); a scale-in is
        blocked during its own cooldown."""
        until, anchor, last_way = self.cooldowns.get(policy_id, (-1, 0, ""))
        in_cooldown = self.now < until and last_way == way
        if way == "out":
            if in_cooldown and not exact:
                wanted = anchor + (wanted - self.desired)
            if wanted <= self.desired:
                return
        elif in_cooldown or wanted >= self.desired:
            return
        if not in_cooldown:
            self.cooldowns[policy_id] = (self.now + cooldown, self.desired, way)
        self._set_desired(wanted, policy_id)


def _step_for(policy: PolicySpec, difference: float) -> int | None:
    """The adjustment of the step containing `difference` (metric - threshold)."""
    for step in policy.steps:
        low = -math.inf if step.lower is None else step.lower
        high = math.inf if step.upper is None else step.upper
        # Above the threshold a step's lower bound is inclusive, below it its upper bound; at the
        # threshold itself (an alarm at <= or >=) either holds: a step [-inf, 0] matches 0.
        if (difference >= 0 and low <= difference < high) or (
            difference <= 0 and low < difference <= high
        ):
            return step.adjustment
    return None


def _adjusted(policy: PolicySpec, current: int, adjustment: int) -> int:
    if policy.adjustment_type == "ExactCapacity":
        return adjustment
    if policy.adjustment_type == "PercentChangeInCapacity":
        change = current * adjustment / 100
        rounded = (
            math.floor(change)
            if change > 1
            else math.ceil(change)
            if change < -1
            else (1 if change > 0 else -1 if change < 0 else 0)
        )
        magnitude = policy.min_adjustment_magnitude or 0
        if abs(rounded) < magnitude:
            rounded = magnitude if rounded > 0 else -magnitude
        return current + rounded
    return current + adjustment
