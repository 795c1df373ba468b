"""Handcrafted templates for the simulator tests, shaped like the kit's and QPFS's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def step_sizes(max_tasks: int) -> list[int]:
    """1..6, then about x1.5 (as the kit's design), at most 20 steps."""
    sizes = [1, 2, 3, 4, 5, 6]
    while sizes[-1] < max_tasks and len(sizes) < 20:
        sizes.append(sizes[-1] * 3 // 2)
    return [size for size in sizes if size <= max(max_tasks, 1)]


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
    ecs_dimension = {"Name": "ServiceName", "Value": {"Fn::GetAtt": ["Service", "Name"]}}
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
    desired = _metric("desired", "ECS/ContainerInsights", "DesiredTaskCount", ecs_dimension)
    sizes = step_sizes(max_tasks)
    uppers: list[int | None] = [*sizes[1:], None]
    out_steps = [
        {"MetricIntervalLowerBound": size - 1, "ScalingAdjustment": size}
        | ({} if upper is None else {"MetricIntervalUpperBound": upper - 1})
        for size, upper in zip(sizes, uppers, strict=True)
    ]
    in_steps = [
        {"MetricIntervalUpperBound": -(size - 1), "ScalingAdjustment": -size}
        | ({} if upper is None else {"MetricIntervalLowerBound": -(upper - 1)})
        for size, upper in zip(sizes, uppers, strict=True)
    ]
    expression_out = f"CEIL(visible / {target * processes}) - FILL(desired, 0)"
    expression_in = f"(visible + in_flight) / {processes} - FILL(desired, 0)"
    for name, expression, metrics, threshold, comparison, periods, steps, cooldown in (
        (
            "Out",
            expression_out,
            [visible, desired],
            1,
            "GreaterThanOrEqualToThreshold",
            1,
            out_steps,
            120,
        ),
        (
            "In",
            expression_in,
            [visible, in_flight, desired],
            -1,
            "LessThanOrEqualToThreshold",
            3,
            in_steps,
            60,
        ),
    ):
        resources[f"Policy{name}"] = {
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Properties": {
                "PolicyType": "StepScaling",
                "ScalingTargetId": {"Ref": "Target"},
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ChangeInCapacity",
                    "Cooldown": cooldown,
                    "MetricAggregationType": "Maximum",
                    "StepAdjustments": steps,
                },
            },
        }
        resources[f"Alarm{name}"] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmActions": [{"Ref": f"Policy{name}"}],
                "ComparisonOperator": comparison,
                "EvaluationPeriods": periods,
                "DatapointsToAlarm": periods,
                "Threshold": threshold,
                "Metrics": [*metrics, {"Id": "expr", "Expression": expression, "ReturnData": True}],
            },
        }
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
    own = _metric(
        "fallback",
        "ECS/ContainerInsights",
        "DesiredTaskCount",
        {"Name": "ServiceName", "Value": {"Fn::GetAtt": ["FallbackService", "Name"]}},
    )
    unplaced = {
        "Id": "unplaced",
        "Expression": "FILL(desired, 0) - FILL(running, 0) - FILL(pending, 0)",
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
    sizes = step_sizes(spec["max"])
    for name, expression, minutes, direction in (
        ("Out", "unplaced - FILL(fallback, 0)", spec["out"], +1),
        ("In", "FILL(fallback, 0) - unplaced", spec["in"], -1),
    ):
        steps = [  # as stacks/constructs/queue_scaling.py step_policy: about the metric's count
            {"MetricIntervalLowerBound": size - 1, "ScalingAdjustment": direction * size}
            | ({} if upper is None else {"MetricIntervalUpperBound": upper - 1})
            for size, upper in zip(sizes, [*sizes[1:], None], strict=True)
        ]
        resources[f"Fallback{name}Policy"] = {
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Properties": {
                "PolicyType": "StepScaling",
                "ScalingTargetId": {"Ref": "FallbackTarget"},
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ChangeInCapacity",
                    "StepAdjustments": steps,
                },
            },
        }
        resources[f"Fallback{name}Alarm"] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmActions": [{"Ref": f"Fallback{name}Policy"}],
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "EvaluationPeriods": minutes,
                "DatapointsToAlarm": minutes,
                "Threshold": 1,
                "Metrics": [
                    *counts,
                    own,
                    unplaced,
                    {"Id": "expr", "Expression": expression, "ReturnData": True},
                ],
            },
        }
    return resources
