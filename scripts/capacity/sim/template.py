"""Read synthesized CloudFormation templates into the simulator's model.

Only what scaling depends on is read: the work queue and its DLQ, the worker task definition
and service (with its capacity provider strategy), the scalable target with its scheduled
actions, the scaling policies and the alarms; with Spot, the on-demand fallback service, its
scalable target, alarms and policies (stacks/constructs/capacity.py). Defaults where a
property is absent are CloudFormation's/AWS's: queue visibility 30 s, container StopTimeout
30 s, one worker process per task (no WORKER_PROCESSES).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Json = dict[str, Any]

DEFAULT_VISIBILITY_SECONDS = 30
DEFAULT_STOP_TIMEOUT_SECONDS = 30
_REGION = re.compile(r"^(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d$")
_REGION_IN_ARN = re.compile(
    r"^arn:aws[a-z-]*:[a-z0-9-]+:((?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d):"
)


class TemplateError(ValueError):
    """The templates lack something the simulator needs."""


@dataclass(frozen=True)
class QueueSpec:
    """The work queue: base visibility and redrive (None: no DLQ)."""

    logical_id: str
    visibility_seconds: int
    max_receive_count: int | None
    dlq_logical_id: str | None


@dataclass(frozen=True)
class TaskSpec:
    """The worker task definition, its service and the worker settings it passes."""

    cpu: int
    memory_mib: int
    architecture: str  # x86_64 | arm64
    processes: int
    heartbeat_seconds: int | None
    task_protection: bool
    stop_grace_seconds: int | None
    stop_timeout_seconds: int
    retry_backoff_base: int | None
    retry_backoff_max: int | None
    desired_count: int | None
    strategy: CapacityStrategy = field(default_factory=lambda: CapacityStrategy())

    @property
    def spot_share(self) -> float:
        """The weight share of FARGATE_SPOT above the base."""
        return self.strategy.spot_share


@dataclass(frozen=True)
class CapacityStrategy:
    """The service's capacity provider strategy: FARGATE base and weights (none: on-demand)."""

    on_demand_base: int = 0
    on_demand_weight: float = 1.0
    spot_weight: float = 0.0

    @property
    def spot_share(self) -> float:
        total = self.on_demand_weight + self.spot_weight
        return self.spot_weight / total if total else 0.0

    def spot_tasks(self, desired: int) -> int:
        """How many of ``desired`` tasks ECS puts on Spot: the base on-demand, the rest by
        weight (the on-demand share rounded up)."""
        above = max(0, desired - self.on_demand_base)
        return above - math.ceil(above * (1 - self.spot_share)) if self.spot_weight else 0


@dataclass(frozen=True)
class FallbackSpec:
    """An on-demand service that runs the tasks the worker service could not place: its
    scale-out alarm (``unplaced >= 1``, ``out``) and scale-in alarm (``unplaced <= 0``,
    ``back``) drive their step policies, between 0 and ``max_tasks`` (its scalable target)."""

    logical_id: str
    max_tasks: int
    out: AlarmSpec
    back: AlarmSpec
    out_policy: PolicySpec
    back_policy: PolicySpec

    @property
    def out_minutes(self) -> int:
        return self.out.datapoints_to_alarm

    @property
    def in_minutes(self) -> int:
        return self.back.datapoints_to_alarm


@dataclass(frozen=True)
class ScheduledAction:
    """One scheduled action of the scalable target."""

    name: str
    schedule: str
    timezone: str | None
    min_capacity: int | None
    max_capacity: int | None


@dataclass(frozen=True)
class MetricQuery:
    """One entry of an alarm's `Metrics` (or the single metric of a classic alarm)."""

    id: str
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    statistic: str = "Average"
    period: int = 60
    expression: str | None = None
    return_data: bool = True


@dataclass(frozen=True)
class AlarmSpec:
    """A CloudWatch alarm; `queries[returned]` is the value compared with the threshold."""

    logical_id: str
    queries: tuple[MetricQuery, ...]
    returned: str
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing: str
    actions: tuple[str, ...]  # logical ids of scaling policies (other actions dropped)
    period: int


@dataclass(frozen=True)
class StepSpec:
    """One step adjustment, bounds relative to the alarm threshold (None: infinite)."""

    lower: float | None
    upper: float | None
    adjustment: int


@dataclass(frozen=True)
class PolicySpec:
    """A StepScaling or TargetTrackingScaling policy."""

    logical_id: str
    kind: str  # StepScaling | TargetTrackingScaling
    adjustment_type: str = "ChangeInCapacity"
    steps: tuple[StepSpec, ...] = ()
    cooldown: int = 0
    min_adjustment_magnitude: int | None = None
    metric_aggregation: str = "Average"
    target_value: float = 0.0
    predefined_metric: str | None = None
    scale_in_cooldown: int = 300
    scale_out_cooldown: int = 300
    disable_scale_in: bool = False


@dataclass
class Model:
    """Everything the simulator reads from the templates."""

    queue: QueueSpec
    task: TaskSpec
    min_capacity: int
    max_capacity: int
    scheduled_actions: list[ScheduledAction] = field(default_factory=list)
    policies: dict[str, PolicySpec] = field(default_factory=dict)
    alarms: list[AlarmSpec] = field(default_factory=list)
    other_alarms: list[AlarmSpec] = field(default_factory=list)
    """Alarms without scaling actions (deadline, DLQ, ...): evaluated and reported only."""
    region: str | None = None
    deadline: str | None = None  # HH:MM from an output/metadata naming the window's end
    window: tuple[str, str] | None = None  # (start, end) HH:MM of the first named window
    queue_names: dict[str, str] = field(default_factory=dict)  # dimension value -> queue id
    fallback: FallbackSpec | None = None


def load_resources(paths: list[Path]) -> tuple[Json, Json]:
    """Merge Resources and Outputs (+ Metadata under "Metadata") of several templates."""
    resources: Json = {}
    outputs: Json = {}
    for path in paths:
        template = json.loads(path.read_text())
        resources.update(template.get("Resources", {}))
        outputs.update(template.get("Outputs", {}))
        for key, value in template.get("Metadata", {}).items():
            outputs[f"Metadata.{key}"] = {"Value": value}
    if not resources:
        raise TemplateError(f"no resources in {', '.join(map(str, paths))}")
    return resources, outputs


def find_templates(cdk_out: Path) -> list[Path]:
    """The stacks' templates in a cloud assembly directory."""
    paths = sorted(cdk_out.glob("*.template.json"))
    if not paths:
        raise TemplateError(f"no *.template.json in {cdk_out}")
    return paths


def _of_type(resources: Json, kind: str) -> dict[str, Json]:
    return {lid: r for lid, r in resources.items() if r.get("Type") == kind}


def _props(resource: Json) -> Json:
    props: Json = resource.get("Properties", {})
    return props


def _ref(value: Any) -> str | None:
    """The logical id behind a Ref or Fn::GetAtt, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def _queue(resources: Json) -> QueueSpec:
    queues = _of_type(resources, "AWS::SQS::Queue")
    with_redrive = {lid: r for lid, r in queues.items() if "RedrivePolicy" in _props(r)}
    candidates = with_redrive or queues
    if not candidates:
        raise TemplateError("no AWS::SQS::Queue in the templates")
    # The contract's construct id is WorkQueue; prefer it when several queues have redrive.
    lid = next((lid for lid in candidates if "WorkQueue" in lid), sorted(candidates)[0])
    props = _props(candidates[lid])
    redrive = props.get("RedrivePolicy")
    max_receive = dlq = None
    if isinstance(redrive, dict):
        max_receive = int(redrive.get("maxReceiveCount", 0)) or None
        dlq = _ref(redrive.get("deadLetterTargetArn"))
    return QueueSpec(
        logical_id=lid,
        visibility_seconds=int(props.get("VisibilityTimeout", DEFAULT_VISIBILITY_SECONDS)),
        max_receive_count=max_receive,
        dlq_logical_id=dlq,
    )


def _providers(service: Json) -> set[str]:
    strategy = _props(service).get("CapacityProviderStrategy") or []
    return {str(item.get("CapacityProvider")) for item in strategy}


def _services(resources: Json) -> tuple[str, str | None]:
    """The worker service and the on-demand fallback service (None when there is none): with
    two services, the one whose strategy has FARGATE_SPOT is the worker service."""
    services = _of_type(resources, "AWS::ECS::Service")
    if len(services) == 1:
        return next(iter(services)), None
    spot = [lid for lid, r in services.items() if "FARGATE_SPOT" in _providers(r)]
    if len(services) != 2 or len(spot) != 1:
        raise TemplateError(
            f"expected one AWS::ECS::Service, or a Spot service and its on-demand fallback; "
            f"found {len(services)}"
        )
    (other,) = set(services) - set(spot)
    return spot[0], other


def _strategy(service: Json) -> CapacityStrategy:
    items = service.get("CapacityProviderStrategy") or []
    if not items:
        return CapacityStrategy()
    by_provider = {str(item.get("CapacityProvider")): item for item in items}
    on_demand = by_provider.get("FARGATE", {})
    return CapacityStrategy(
        on_demand_base=int(on_demand.get("Base", 0)),
        on_demand_weight=float(on_demand.get("Weight", 0)),
        spot_weight=float(by_provider.get("FARGATE_SPOT", {}).get("Weight", 0)),
    )


def _task(resources: Json, service_id: str) -> TaskSpec:
    service = _props(resources[service_id])
    task_def_id = _ref(service.get("TaskDefinition"))
    task_defs = _of_type(resources, "AWS::ECS::TaskDefinition")
    if task_def_id not in task_defs:
        raise TemplateError("the service's TaskDefinition is not in the templates")
    task_def = _props(task_defs[task_def_id])
    containers = task_def.get("ContainerDefinitions", [])
    if not containers:
        raise TemplateError(f"task definition {task_def_id} has no containers")
    container = next(
        (c for c in containers if _env(c).get("WORKER_PROCESSES") is not None), containers[0]
    )
    env = _env(container)
    platform = task_def.get("RuntimePlatform", {})
    desired = service.get("DesiredCount")
    return TaskSpec(
        cpu=int(task_def.get("Cpu", 256)),
        memory_mib=int(task_def.get("Memory", 512)),
        architecture="arm64" if platform.get("CpuArchitecture") == "ARM64" else "x86_64",
        processes=_int(env.get("WORKER_PROCESSES")) or 1,
        heartbeat_seconds=_int(env.get("HEARTBEAT_INTERVAL_SECONDS")) or None,
        task_protection=str(env.get("TASK_PROTECTION", "off")).lower() == "on",
        stop_grace_seconds=_int(env.get("WORKER_STOP_GRACE_SECONDS")),
        stop_timeout_seconds=int(container.get("StopTimeout", DEFAULT_STOP_TIMEOUT_SECONDS)),
        retry_backoff_base=_int(env.get("RETRY_BACKOFF_BASE_SECONDS")),
        retry_backoff_max=_int(env.get("RETRY_BACKOFF_MAX_SECONDS")),
        desired_count=None if desired is None else int(desired),
        strategy=_strategy(service),
    )


def _env(container: Json) -> dict[str, Any]:
    return {item["Name"]: item.get("Value") for item in container.get("Environment", [])}


def _int(value: Any) -> int | None:
    """An integer environment value; None when absent or not a literal number."""
    if isinstance(value, int | str) and str(value).strip().isdigit():
        return int(value)
    return None


def _scheduled(props: Json) -> list[ScheduledAction]:
    actions = []
    for index, item in enumerate(props.get("ScheduledActions") or []):
        target = item.get("ScalableTargetAction", {})
        actions.append(
            ScheduledAction(
                name=str(item.get("ScheduledActionName", f"action-{index}")),
                schedule=str(item["Schedule"]),
                timezone=item.get("Timezone"),
                min_capacity=_opt_int(target.get("MinCapacity")),
                max_capacity=_opt_int(target.get("MaxCapacity")),
            )
        )
    return actions


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _policy(lid: str, props: Json) -> PolicySpec:
    kind = str(props.get("PolicyType", "StepScaling"))
    if kind == "TargetTrackingScaling":
        config = props.get("TargetTrackingScalingPolicyConfiguration", {})
        predefined = config.get("PredefinedMetricSpecification", {})
        return PolicySpec(
            logical_id=lid,
            kind=kind,
            target_value=float(config["TargetValue"]),
            predefined_metric=predefined.get("PredefinedMetricType"),
            scale_in_cooldown=int(config.get("ScaleInCooldown", 300)),
            scale_out_cooldown=int(config.get("ScaleOutCooldown", 300)),
            disable_scale_in=bool(config.get("DisableScaleIn", False)),
        )
    config = props.get("StepScalingPolicyConfiguration", {})
    steps = tuple(
        StepSpec(
            lower=_opt_float(step.get("MetricIntervalLowerBound")),
            upper=_opt_float(step.get("MetricIntervalUpperBound")),
            adjustment=int(step["ScalingAdjustment"]),
        )
        for step in config.get("StepAdjustments", [])
    )
    magnitude = config.get("MinAdjustmentMagnitude")
    return PolicySpec(
        logical_id=lid,
        kind=kind,
        adjustment_type=str(config.get("AdjustmentType", "ChangeInCapacity")),
        steps=steps,
        cooldown=int(config.get("Cooldown", 0)),
        min_adjustment_magnitude=None if magnitude is None else int(magnitude),
        metric_aggregation=str(config.get("MetricAggregationType", "Average")),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _dimensions(items: list[Json] | None, exports: Json) -> tuple[tuple[str, str], ...]:
    """Dimensions as (name, value); a Ref/GetAtt value (also through another stack:
    Fn::ImportValue of an export, Fn::GetStackOutput of an output) becomes its logical id."""
    pairs = []
    for item in items or []:
        value = item.get("Value")
        if isinstance(value, dict) and isinstance(value.get("Fn::ImportValue"), str):
            value = exports.get(value["Fn::ImportValue"], value)
        elif isinstance(value, dict) and isinstance(value.get("Fn::GetStackOutput"), dict):
            value = exports.get(str(value["Fn::GetStackOutput"].get("OutputName")), value)
        pairs.append((str(item["Name"]), _ref(value) or json.dumps(value)))
    return tuple(pairs)


def _alarm(lid: str, props: Json, policy_ids: set[str], exports: Json) -> AlarmSpec:
    queries: list[MetricQuery]
    if "Metrics" in props:
        queries = []
        for item in props["Metrics"]:
            stat = item.get("MetricStat")
            metric = stat.get("Metric", {}) if stat else {}
            queries.append(
                MetricQuery(
                    id=str(item["Id"]),
                    namespace=metric.get("Namespace"),
                    metric_name=metric.get("MetricName"),
                    dimensions=_dimensions(metric.get("Dimensions"), exports),
                    statistic=str(stat.get("Stat", "Average")) if stat else "Average",
                    period=int(stat.get("Period", item.get("Period", 60))) if stat else 60,
                    expression=item.get("Expression"),
                    return_data=bool(item.get("ReturnData", True)),
                )
            )
        returned = [q.id for q in queries if q.return_data]
        if len(returned) != 1:
            raise TemplateError(f"alarm {lid}: exactly one metric must have ReturnData true")
        period = min((q.period for q in queries if q.expression is None), default=60)
        returned_id = returned[0]
    else:
        period = int(props.get("Period", 60))
        queries = [
            MetricQuery(
                id="m",
                namespace=props.get("Namespace"),
                metric_name=props.get("MetricName"),
                dimensions=_dimensions(props.get("Dimensions"), exports),
                statistic=str(props.get("Statistic", props.get("ExtendedStatistic", "Average"))),
                period=period,
            )
        ]
        returned_id = "m"
    evaluation = int(props.get("EvaluationPeriods", 1))
    actions = tuple(ref for ref in map(_ref, props.get("AlarmActions", [])) if ref in policy_ids)
    return AlarmSpec(
        logical_id=lid,
        queries=tuple(queries),
        returned=returned_id,
        threshold=float(props.get("Threshold", 0)),
        comparison=str(props["ComparisonOperator"]),
        evaluation_periods=evaluation,
        datapoints_to_alarm=int(props.get("DatapointsToAlarm", evaluation)),
        treat_missing=str(props.get("TreatMissingData", "missing")),
        actions=actions,
        period=period,
    )


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def _region(resources: Json) -> str | None:
    """The most frequent region literal (awslogs-region, ARNs) in the templates."""
    found: Counter[str] = Counter()
    for text in _strings(resources):
        if _REGION.match(text):
            found[text] += 1
        elif match := _REGION_IN_ARN.match(text):
            found[match.group(1)] += 1
    return found.most_common(1)[0][0] if found else None


def _deadline(outputs: Json, names: list[str]) -> str | None:
    """The window's end as HH:MM: an output/metadata key naming the deadline or the window's
    end with an "HH:MM" value, else a name like the kit's `...0400To0900` (scheduled actions,
    deadline alarms)."""
    for key, output in outputs.items():
        value = output.get("Value") if isinstance(output, dict) else None
        if (
            re.search(r"deadline|window_?end", key, re.IGNORECASE)
            and isinstance(value, str)
            and re.fullmatch(r"\d\d:\d\d", value)
        ):
            return value
    for name in names:
        if match := re.search(r"\d{4}To(\d\d)(\d\d)", name):
            return f"{match.group(1)}:{match.group(2)}"
    return None


def _window(names: list[str]) -> tuple[str, str] | None:
    """The first window named like the kit's scheduled actions (`...0400To0900`)."""
    for name in names:
        if match := re.search(r"(\d\d)(\d\d)To(\d\d)(\d\d)", name):
            return f"{match[1]}:{match[2]}", f"{match[3]}:{match[4]}"
    return None


def read_model(paths: list[Path]) -> Model:
    """The simulator's model of the merged templates."""
    resources, outputs = load_resources(paths)
    # Cross-stack references by export name (Fn::ImportValue) and by output name
    # (Fn::GetStackOutput).
    exports = {name: output.get("Value") for name, output in outputs.items()}
    exports |= {
        str(output["Export"]["Name"]): output.get("Value")
        for output in outputs.values()
        if isinstance(output, dict) and isinstance(output.get("Export", {}).get("Name"), str)
    }
    service_id, fallback_id = _services(resources)
    targets = _of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget")
    fallback_targets = {
        lid for lid, r in targets.items() if fallback_id and fallback_id in _strings_and_refs(r)
    }
    targets = {lid: r for lid, r in targets.items() if lid not in fallback_targets}
    if len(targets) > 1:
        raise TemplateError(f"expected at most one ScalableTarget, found {len(targets)}")
    all_policies = _of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy")
    fallback_policies = {
        lid
        for lid, r in all_policies.items()
        if _ref(_props(r).get("ScalingTargetId")) in fallback_targets
    }
    policies = {
        lid: _policy(lid, _props(r))
        for lid, r in all_policies.items()
        if lid not in fallback_policies
    }
    alarms: list[AlarmSpec] = []
    other: list[AlarmSpec] = []
    fallback_alarms: list[AlarmSpec] = []
    for lid, resource in sorted(_of_type(resources, "AWS::CloudWatch::Alarm").items()):
        alarm = _alarm(lid, _props(resource), set(policies) | fallback_policies, exports)
        if set(alarm.actions) & fallback_policies:
            fallback_alarms.append(alarm)
        else:
            (alarms if alarm.actions else other).append(alarm)
    task = _task(resources, service_id)
    fallback = (
        _fallback(
            fallback_id,
            targets_of=_props(resources[next(iter(fallback_targets))]),
            alarms=fallback_alarms,
            policies={lid: _policy(lid, _props(all_policies[lid])) for lid in fallback_policies},
        )
        if fallback_id and fallback_targets
        else None
    )
    if targets:
        target = _props(next(iter(targets.values())))
        low, high = int(target["MinCapacity"]), int(target["MaxCapacity"])
        scheduled = _scheduled(target)
    else:
        low = high = task.desired_count if task.desired_count is not None else 1
        scheduled = []
    queue = _queue(resources)
    queue_names = {queue.logical_id: "work"}
    if queue.dlq_logical_id:
        queue_names[queue.dlq_logical_id] = "dlq"
    return Model(
        queue=queue,
        task=task,
        min_capacity=low,
        max_capacity=high,
        scheduled_actions=scheduled,
        policies=policies,
        alarms=alarms,
        other_alarms=other,
        region=_region(resources),
        deadline=_deadline(
            outputs,
            [a.name for a in scheduled] + sorted(_of_type(resources, "AWS::CloudWatch::Alarm")),
        ),
        queue_names=queue_names,
        window=_window([a.name for a in scheduled]),
        fallback=fallback,
    )


def _strings_and_refs(node: Any) -> set[str]:
    """Every string and every Ref/GetAtt logical id inside ``node``."""
    found = set(_strings(node))
    if isinstance(node, dict):
        if (ref := _ref(node)) is not None:
            found.add(ref)
        for value in node.values():
            found |= _strings_and_refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _strings_and_refs(value)
    return found


def _fallback(
    logical_id: str, *, targets_of: Json, alarms: list[AlarmSpec], policies: dict[str, PolicySpec]
) -> FallbackSpec:
    """The fallback's bounds, its two alarms and their policies: the scale-out alarm fires
    when the unplaced tasks are many (>=), the scale-in alarm when they are few (<=)."""
    out = [a for a in alarms if a.comparison.startswith("Greater")]
    back = [a for a in alarms if a.comparison.startswith("Less")]
    if len(out) != 1 or len(back) != 1 or not all(len(a.actions) == 1 for a in alarms):
        raise TemplateError(
            f"fallback service {logical_id}: expected a scale-out and a scale-in alarm, one "
            "policy each"
        )
    return FallbackSpec(
        logical_id=logical_id,
        max_tasks=int(targets_of["MaxCapacity"]),
        out=out[0],
        back=back[0],
        out_policy=policies[out[0].actions[0]],
        back_policy=policies[back[0].actions[0]],
    )
