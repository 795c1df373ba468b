"""worker.capacity: the capacity provider strategy and the on-demand fallback for Spot."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from scripts.capacity import simulate
from scripts.capacity.sim.mathexpr import Expression
from scripts.capacity.sim.template import CapacityStrategy, read_model
from tests.infra.conftest import Synthesized, synthesize

SPOT = {"capacity": {"spot_weight": 3, "on_demand_base": 1}}
SPOT_LIMITS = {"max_tasks": 6}


def spot() -> Synthesized:
    return synthesize("prod", worker=SPOT, scaling=SPOT_LIMITS)


def services(s: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        key: value["Properties"]
        for key, value in s.worker.find_resources("AWS::ECS::Service").items()
    }


def fallback_alarm(s: Synthesized, name: str) -> dict[str, Any]:
    (alarm,) = [
        a["Properties"]
        for key, a in s.worker.find_resources("AWS::CloudWatch::Alarm").items()
        if key.startswith(f"SpotFallback{name}Alarm")
    ]
    return dict(alarm)


def value(alarm: dict[str, Any], **metrics: float | None) -> float | None:
    """The alarm's returned value through the simulator's metric math."""
    values: dict[str, float | None] = {
        m["Id"]: metrics[m["Id"]] for m in alarm["Metrics"] if "MetricStat" in m
    }
    pending = {m["Id"]: Expression(m["Expression"]) for m in alarm["Metrics"] if "Expression" in m}
    while pending:
        ready = [i for i, e in pending.items() if e.ids <= values.keys()]
        for query_id in ready:
            values[query_id] = pending.pop(query_id).evaluate(values)
    (returned,) = [m["Id"] for m in alarm["Metrics"] if m.get("ReturnData", True)]
    return values[returned]


def test_default_is_one_on_demand_service(prod: Synthesized) -> None:
    prod.worker.resource_count_is("AWS::ECS::Service", 1)
    prod.worker.has_resource_properties(
        "AWS::ECS::Service",
        {"CapacityProviderStrategy": [{"CapacityProvider": "FARGATE", "Weight": 1}]},
    )


def test_the_strategy_is_base_and_weights() -> None:
    (worker,) = [p for key, p in services(spot()).items() if key.startswith("WorkerService")]
    assert worker["CapacityProviderStrategy"] == [
        {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 3},
    ]


def test_all_spot_leaves_on_demand_out_of_the_strategy() -> None:
    s = synthesize(
        "prod",
        worker={"capacity": {"spot_weight": 1, "on_demand_weight": 0}},
        scaling=SPOT_LIMITS,
    )
    (worker,) = [p for key, p in services(s).items() if key.startswith("WorkerService")]
    assert worker["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]


def test_the_fallback_is_an_on_demand_twin_without_desired_count() -> None:
    found = services(spot())
    (worker,) = [p for key, p in found.items() if key.startswith("WorkerService")]
    (fallback,) = [p for key, p in found.items() if key.startswith("WorkerFallbackService")]
    assert fallback["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE", "Weight": 1}]
    assert fallback["TaskDefinition"] == worker["TaskDefinition"]
    assert fallback["NetworkConfiguration"] == worker["NetworkConfiguration"]
    assert "DesiredCount" not in fallback


def test_the_fallback_scales_between_zero_and_max_tasks_minus_the_base() -> None:
    targets = spot().worker.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    bounds = {
        key.split("Target")[0]: (t["Properties"]["MinCapacity"], t["Properties"]["MaxCapacity"])
        for key, t in targets.items()
    }
    assert bounds == {"Scaling": (0, 6), "SpotFallback": (0, 5)}


def test_the_fallback_scales_out_on_unplaced_tasks_after_the_configured_minutes() -> None:
    alarm = fallback_alarm(spot(), "ScaleOut")
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 3)
    assert (alarm["Threshold"], alarm["TreatMissingData"]) == (1, "notBreaching")
    # 6 desired, 2 running, 1 starting: 3 could not be placed.
    assert value(alarm, desired=6, running=2, pending=1) == 3
    # Tasks that are starting are not missing: no fallback for them.
    assert value(alarm, desired=6, running=2, pending=4) == 0


def test_a_missing_task_count_is_never_read_as_zero() -> None:
    """A late Container Insights datapoint makes the minute missing (no FILL): the scale-out
    alarm does not breach on it, the scale-in alarm does (the fallback stops, never grows)."""
    out, back = fallback_alarm(spot(), "ScaleOut"), fallback_alarm(spot(), "ScaleIn")
    assert value(out, desired=6, running=None, pending=None) is None
    assert "FILL" not in json.dumps(out["Metrics"]) + json.dumps(back["Metrics"])
    assert back["TreatMissingData"] == "breaching"


def test_the_fallback_scales_in_when_spot_is_back() -> None:
    alarm = fallback_alarm(spot(), "ScaleIn")
    assert alarm["EvaluationPeriods"] == 3  # scaling.scale_in_after_minutes
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "LessThanOrEqualToThreshold")
    assert value(alarm, desired=6, running=4, pending=2) == 0


def test_the_fallback_reads_the_services_task_counts() -> None:
    alarm = fallback_alarm(spot(), "ScaleOut")
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {
        "DesiredTaskCount",
        "RunningTaskCount",
        "PendingTaskCount",
    }
    for stat in stats.values():
        service = next(
            d["Value"] for d in stat["Metric"]["Dimensions"] if d["Name"] == "ServiceName"
        )
        assert "WorkerService" in str(service) and "Fallback" not in str(service)


def test_the_fallback_policies_set_the_unplaced_count_or_zero() -> None:
    policies = {
        key: p["Properties"]["StepScalingPolicyConfiguration"]
        for key, p in spot()
        .worker.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy")
        .items()
        if key.startswith("SpotFallback")
    }
    assert {p["AdjustmentType"] for p in policies.values()} == {"ExactCapacity"}
    (out,) = [p for key, p in policies.items() if "ScaleOut" in key]
    (back,) = [p for key, p in policies.items() if "ScaleIn" in key]
    assert [step["ScalingAdjustment"] for step in out["StepAdjustments"]] == [1, 2, 3, 4, 5]
    assert back["StepAdjustments"] == [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}]


def test_no_fallback_when_it_is_off() -> None:
    s = synthesize(
        "prod",
        worker={"capacity": {"spot_weight": 1, "fallback_after_minutes": None}},
        scaling=SPOT_LIMITS,
    )
    s.worker.resource_count_is("AWS::ECS::Service", 1)
    s.worker.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 1)


def test_spot_on_arm64() -> None:
    s = synthesize("prod", worker={**SPOT, "architecture": "arm64"}, scaling=SPOT_LIMITS)
    s.worker.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"RuntimePlatform": {"CpuArchitecture": "ARM64"}}
    )
    s.worker.has_resource_properties(
        "AWS::ECS::Service",
        {
            "CapacityProviderStrategy": Match.array_with(
                [{"CapacityProvider": "FARGATE_SPOT", "Weight": 3}]
            )
        },
    )


def test_the_simulator_reads_the_strategy_and_the_fallback() -> None:
    """One contract, two sides: what the construct synthesizes is what the simulator models."""
    model = read_model(sorted(spot().outdir.glob("*.template.json")))
    assert model.task.strategy == CapacityStrategy(
        on_demand_base=1, on_demand_weight=1, spot_weight=3
    )
    assert model.fallback is not None
    assert model.fallback.logical_id.startswith("WorkerFallbackService")
    assert (model.fallback.max_tasks, model.fallback.out_minutes, model.fallback.in_minutes) == (
        5,
        3,
        3,
    )
    # The steps it replays are the template's: 1..5 tasks out, 0 in.
    assert [step.adjustment for step in model.fallback.out_policy.steps] == [1, 2, 3, 4, 5]
    assert [step.adjustment for step in model.fallback.back_policy.steps] == [0]
    assert model.max_capacity == 6  # the worker service's target, not the fallback's


@pytest.mark.parametrize(
    ("flags", "fallback_used"),
    [
        (["--spot-capacity", "0"], True),
        (["--spot-interruptions-per-hour", "0.5"], False),
    ],
)
def test_the_reference_day_on_spot_holds_the_deadline_and_loses_nothing(
    capsys: pytest.CaptureFixture[str], flags: list[str], fallback_used: bool
) -> None:
    """No Spot capacity at all (the fallback runs every Spot task), or a stress rate of one
    interruption per two Spot task-hours: the deadline holds and no message is lost."""
    templates = sorted(str(p) for p in spot().outdir.glob("*.template.json"))
    args = [arg for path in templates for arg in ("--template", path)]
    assert simulate.main([*args, "--json", *flags]) == 0
    day = json.loads(capsys.readouterr().out)
    assert day["deadline_met"] is True, day["verdict"]
    assert day["lost"] == 0 and day["remaining"] == 0
    assert day["killed_by_scale_in"] == 0 and day["killed_by_interruption"] == 0
    assert (day["cost_by_capacity"]["fallback"] > 0) is fallback_used
