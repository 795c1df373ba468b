"""Handcrafted templates for the simulator tests, shaped like the kit's and QPFS's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stacks.constructs.queue_scaling import capacity_steps

Json = dict[str, Any]


def _metric(metric_id: str, namespace: str, name: str, dimension: Json) -> Json:
    return {
        "Id": metric_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": [dimension]},
            "Period": 60,
            "Stat": "Maximum",
        },
        "ReturnData": False,
    }


def exact_steps(max_tasks: int, threshold: int = 0) -> list[Json]:
    """ExactCapacity steps over the metric (relative to the threshold), as
    stacks/constructs/queue_scaling.py exact_capacity_policy: round up to the next size."""
    sizes = [size for size in capacity_steps(max_tasks) if size >= threshold]
    steps, lower = [], 0
    for size, following in zip(sizes, [*sizes[1:], None], strict=True):
        upper = {} if following is None else {"MetricIntervalUpperBound": size + 1 - threshold}
        steps.append({"MetricIntervalLowerBound": lower, "ScalingAdjustment": size} | upper)
        lower = size + 1 - threshold
    return steps


def _policy(target: str, steps: list[Json], cooldown: int = 0) -> Json:
    return {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyType": "StepScaling",
            "ScalingTargetId": {"Ref": target},
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ExactCapacity",
                "Cooldown": cooldown,
                "MetricAggregationType": "Maximum",
                "StepAdjustments": steps,
            },
        },
    }


def _alarm(
    policy: str,
    comparison: str,
    threshold: int,
    minutes: int,
    metrics: list[Json],
    missing: str = "notBreaching",
) -> Json:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmActions": [{"Ref": policy}],
            "ComparisonOperator": comparison,
            "EvaluationPeriods": minutes,
            "DatapointsToAlarm": minutes,
            "Threshold": threshold,
            "TreatMissingData": missing,
            "Metrics": metrics,
        },
    }


def kit_template(
    *,
    processes: int = 4,
    cpu: int = 256,
    memory: int = 1024,
    min_tasks: int = 0,
    max_tasks: int = 60,
    target: int = 98,
    window_min: int | None = 6,
    visibility: int = 120,
    max_receive: int = 5,
    env: dict[str, str | None] | None = None,
    stop_timeout: int = 120,
    scaling: bool = True,
    spot: bool = False,
    strategy: list[Json] | None = None,
    fallback: Json | None = None,
) -> Json:
    """Queue + DLQ, a worker service and (scaling=True) the kit's step scaling on metric math.

    ``strategy``: the service's capacity provider strategy (default: all FARGATE, or all
    FARGATE_SPOT with ``spot``); ``fallback`` ({"max": N, "out": MINUTES, "in": MINUTES}): the
    kit's on-demand fallback service and its two alarms (stacks/constructs/capacity.py)."""
    environment: dict[str, str] = {
        "WORKER_PROCESSES": str(processes),
        "HEARTBEAT_INTERVAL_SECONDS": "30",
        "TASK_PROTECTION": "on",
        "WORKER_STOP_GRACE_SECONDS": "100",
    }
    for key, value in (env or {}).items():  # None removes a variable
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    queue_dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WorkQueue", "QueueName"]}}
    resources: Json = {
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "WorkQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "VisibilityTimeout": visibility,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                    "maxReceiveCount": max_receive,
                },
            },
        },
        "TaskDef": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Cpu": str(cpu),
                "Memory": str(memory),
                "RuntimePlatform": {"CpuArchitecture": "X86_64"},
                "ContainerDefinitions": [
                    {
                        "Name": "worker",
                        "StopTimeout": stop_timeout,
                        "Environment": [{"Name": k, "Value": v} for k, v in environment.items()],
                        "LogConfiguration": {"Options": {"awslogs-region": "ap-northeast-1"}},
                    }
                ],
            },
        },
        "Service": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "TaskDefinition": {"Ref": "TaskDef"},
                "CapacityProviderStrategy": strategy
                or [{"CapacityProvider": "FARGATE_SPOT" if spot else "FARGATE", "Weight": 1}],
            },
        },
    }
    actions: list[Json] = []
    if window_min is not None:
        actions = [
            {
                "ScheduledActionName": "RaiseFloor0400To0900",
                "Schedule": "cron(0 4 * * ? *)",
                "Timezone": "Asia/Tokyo",
                "ScalableTargetAction": {"MinCapacity": window_min},
            },
            {
                "ScheduledActionName": "ReleaseFloor0400To0900",
                "Schedule": "cron(30 4 * * ? *)",
                "Timezone": "Asia/Tokyo",
                "ScalableTargetAction": {"MinCapacity": min_tasks},
            },
        ]
    resources["Target"] = {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "Properties": {
            "MinCapacity": min_tasks,
            "MaxCapacity": max_tasks,
            "ScheduledActions": actions,
        },
    }
    if fallback is not None:
        resources |= _fallback(fallback)
    if not scaling:
        return {"Resources": resources}
    visible = _metric("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue_dimension)
    in_flight = _metric(
        "in_flight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", queue_dimension
    )
    busy = f"CEIL(in_flight / {processes})"
    fleet = {
        "Id": "fleet",
        "Expression": f"IF(needed > {busy}, needed, {busy})",
        "ReturnData": True,
    }
    needed = {
        "Id": "needed",
        "Expression": f"CEIL(visible / {target * processes})",
        "ReturnData": False,
    }
    resources["PolicyFleet"] = _policy("Target", exact_steps(max_tasks), cooldown=60)
    resources["AlarmFleet"] = _alarm(
        "PolicyFleet",
        "GreaterThanOrEqualToThreshold",
        0,
        1,
        [visible, in_flight, needed, fleet],
    )
    return {"Resources": resources}


def write(tmp_path: Path, template: Json, name: str = "stack") -> Path:
    """Write a template dict as NAME.template.json under tmp_path; return its path."""
    path = tmp_path / f"{name}.template.json"
    path.write_text(json.dumps(template))
    return path


def _fallback(spec: Json) -> Json:
    """The kit's fallback: an on-demand twin service, its scalable target and two alarms."""
    counts = [
        _metric(
            name,
            "ECS/ContainerInsights",
            f"{name.capitalize()}TaskCount",
            {"Name": "ServiceName", "Value": {"Fn::GetAtt": ["Service", "Name"]}},
        )
        for name in ("desired", "running", "pending")
    ]
    unplaced = {
        "Id": "unplaced",
        "Expression": "desired - running - pending",
        "ReturnData": False,
    }
    resources: Json = {
        "FallbackService": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "TaskDefinition": {"Ref": "TaskDef"},
                "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE", "Weight": 1}],
            },
        },
        "FallbackTarget": {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "MinCapacity": 0,
                "MaxCapacity": spec["max"],
                "ResourceId": {
                    "Fn::Join": ["", ["service/c/", {"Fn::GetAtt": ["FallbackService", "Name"]}]]
                },
            },
        },
    }
    resources["FallbackOutPolicy"] = _policy("FallbackTarget", exact_steps(spec["max"], 1))
    resources["FallbackInPolicy"] = _policy(
        "FallbackTarget", [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}]
    )
    returned = {**unplaced, "ReturnData": True}
    resources["FallbackOutAlarm"] = _alarm(
        "FallbackOutPolicy", "GreaterThanOrEqualToThreshold", 1, spec["out"], [*counts, returned]
    )
    resources["FallbackInAlarm"] = _alarm(
        "FallbackInPolicy",
        "LessThanOrEqualToThreshold",
        0,
        spec["in"],
        [*counts, returned],
        missing="breaching",
    )
    return resources
