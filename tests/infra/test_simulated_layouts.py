"""Mails beside the batch (issue 20): the layouts of docs/benchmarks.md ("Several queues: mails
beside the batch") simulated on the synthesized templates, and the figures its recommendation
rests on. Benchmarks, not timed: with two workers the mails wait under 60 s at the 95th
percentile all day, the batch keeps its deadline and its reference day, and the month costs
less than the one worker that also keeps mails under 60 s all day (a floor of one task)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.capacity import simulate
from tests.infra.conftest import Synthesized, synthesize

MAILS = ["--queue", "emails=5000@00:00-23:59,fixed:5", "--deadline", "08:30", "--json"]


def mail_fleet() -> Synthesized:
    """The docs' mail worker: dev's shape (2 processes on 256/512, no window) with a floor of
    one task, prod's monitoring level and log retention."""
    return synthesize(
        "dev",
        scaling={"min_tasks": 1},
        monitoring={"level": "full"},
        worker={"log_retention_days": 30},
    )


def layout(capsys: pytest.CaptureFixture[str], batch: Synthesized, *flags: str) -> dict[str, Any]:
    assert simulate.main(["--cdk-out", str(batch.outdir), *MAILS, *flags]) == 0
    found = dict(json.loads(capsys.readouterr().out))
    found["by_queue"] = {q["name"]: q for q in found["queues"]}
    return found


def test_two_workers_keep_mails_under_a_minute_and_the_batch_on_time_for_less(
    prod: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = Path(mail_fleet().outdir)
    two = layout(capsys, prod, "--fleet", f"mail=emails@{mail}")
    one = layout(capsys, prod, "--priority", "emails,default")
    floor = layout(
        capsys, synthesize("prod", scaling={"min_tasks": 1}), "--priority", "emails,default"
    )
    batch_first = layout(capsys, prod)
    for day in (two, one, floor, batch_first):
        assert day["by_queue"]["default"]["deadline_met"] is True
    # Two workers: the batch fleet's day is the reference day (docs: 06:00:00, 11.74).
    assert two["fleets"][0]["task_hours"] == 11.74
    assert two["by_queue"]["default"]["finish"] == "06:00:00"
    assert two["by_queue"]["emails"]["wait_p95"] < 60
    # One worker, mails first: under a minute while the batch drains, not all day (the fleet
    # scales out from zero for the night's mails) unless it keeps a task.
    assert one["by_queue"]["emails"]["wait_p95_during_drain"] < 60
    assert one["by_queue"]["emails"]["wait_p95"] > 60
    assert floor["by_queue"]["emails"]["wait_p95"] < 60
    # The batch first: mails wait behind it.
    assert batch_first["by_queue"]["emails"]["wait_p95_during_drain"] > 600
    # What the docs recommend from: two workers cost less than the one worker that holds the
    # mails' target, and less than the one that does not.
    assert two["month"]["total"] < floor["month"]["total"]
    assert two["month"]["total"] < one["month"]["total"]
