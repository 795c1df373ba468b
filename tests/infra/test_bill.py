"""The whole month, priced from the synthesized templates (scripts/bill.py): the targets of
docs/benchmarks.md ("The whole bill") hold on what CloudFormation would deploy.

Benchmarks, not timed: prod's month at the reference workload (the simulated day, 30.4 times)
is within 1.5x of its compute; dev idle (no task, no message) is under 3 USD; Spot's month,
Container Insights and the fallback's alarms included, is below on-demand's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts import bill, simulate
from tests.infra.conftest import Synthesized, synthesize

SPOT = {"capacity": {"spot_weight": 1, "on_demand_weight": 0}}
MAX_6 = {"max_tasks": 6}  # with the fallback, (6 + 6) x 8 processes stay under the cap of 100


def simulated_day(s: Synthesized, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    templates = sorted(str(p) for p in Path(s.outdir).glob("*.template.json"))
    assert simulate.main([a for t in templates for a in ("--template", t)] + ["--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def month(s: Synthesized, day: dict[str, Any] | None) -> bill.Bill:
    facts = bill.facts([s.queue_json, s.worker_json], s.config.region)
    return bill.bill(facts, bill.usage_of_day(day, s.config.scaling.mean_job_seconds))


def test_prod_month_at_the_reference_workload_is_within_1_5x_its_compute(
    prod: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    b = month(prod, simulated_day(prod, capsys))
    assert b.compute > 0 and b.total() <= 1.5 * b.compute, "\n".join(bill.text(b))


def test_dev_idle_month_is_under_3_usd(dev: Synthesized) -> None:
    b = month(dev, None)
    assert b.compute == 0 and b.total() < 3, "\n".join(bill.text(b))


def test_spot_month_is_below_on_demand_month(capsys: pytest.CaptureFixture[str]) -> None:
    on_demand = synthesize("prod", scaling=MAX_6)
    spot = synthesize("prod", worker=SPOT, scaling=MAX_6)
    od_month = month(on_demand, simulated_day(on_demand, capsys))
    spot_month = month(spot, simulated_day(spot, capsys))
    assert spot_month.total("fixed") > od_month.total("fixed")  # Container Insights, alarms
    assert spot_month.total() < od_month.total(), "\n".join(bill.text(spot_month))


def test_a_dashboard_adds_its_monthly_price() -> None:
    plain = month(synthesize("dev"), None)
    with_dashboard = month(synthesize("dev", monitoring={"dashboard": True}), None)
    assert with_dashboard.total() - plain.total() == pytest.approx(3.00)


def test_container_insights_is_priced_when_the_cluster_has_it(dev: Synthesized) -> None:
    on = bill.facts(
        [synthesize("dev", monitoring={"container_insights": True}).worker_json], "ap-northeast-1"
    )
    off = bill.facts([dev.worker_json], "ap-northeast-1")
    assert (on.container_insights, off.container_insights) == (True, False)
    items = [line.item for line in bill.bill(on, bill.usage_of_day(None, 165)).lines if line.usd]
    assert any(item.startswith("Container Insights") for item in items)


def test_a_metric_math_alarm_pays_for_every_metric_it_reads() -> None:
    template = {
        "Resources": {
            "Math": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [
                        {"Id": "a", "MetricStat": {"Period": 60}},
                        {"Id": "b", "MetricStat": {"Period": 60}},
                        {"Id": "e", "Expression": "a + b", "ReturnData": True},
                    ]
                },
            },
            "Plain": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 300}},
        }
    }
    assert sorted(bill.facts([template], "us-east-1").alarm_metrics) == [1, 2]
