"""Metric math, schedules, template reading and the simulator's command line."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sim_fixtures import kit_template, write

from scripts.capacity import simulate
from scripts.capacity.sim.inputs import Durations, Problems
from scripts.capacity.sim.mathexpr import Expression, MathError
from scripts.capacity.sim.schedule import fire_times
from scripts.capacity.sim.template import read_model


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("CEIL(visible / (85 * 4)) - FILL(desired, 0)", {"visible": 2000, "desired": None}, 6),
        (
            "(visible + in_flight) / 4 - FILL(desired, 3)",
            {"visible": 2, "in_flight": 6, "desired": None},
            -1,
        ),
        ("FLOOR(a / 3) + ABS(-2)", {"a": 10}, 5),
        ("IF(a >= 1 AND b < 2, MAX([a, b, c]), MIN([a, b]))", {"a": 3, "b": 1, "c": None}, 3),
        ("IF(a > 5 || b > 5, 1, 0)", {"a": 3, "b": 1}, 0),
        ("a / b", {"a": 1, "b": 0}, None),
        ("a + 1", {"a": None}, None),
    ],
)
def test_metric_math(text: str, values: dict[str, float | None], expected: float | None) -> None:
    assert Expression(text).evaluate(values) == expected


@pytest.mark.parametrize("text", ["__import__('os')", "a.b", "a ** 2", "'x'", "CEIL(a, b)", "a["])
def test_metric_math_rejects_anything_else(text: str) -> None:
    with pytest.raises(MathError):
        Expression(text)


def test_cron_in_tokyo_fires_at_the_utc_second() -> None:
    start = datetime(2026, 11, 24, tzinfo=ZoneInfo("Asia/Tokyo"))
    times = fire_times("cron(30 4 ? * MON-FRI *)", "Asia/Tokyo", start, start + timedelta(days=1))
    assert times == [datetime(2026, 11, 23, 19, 30, tzinfo=ZoneInfo("UTC"))]
    sunday = datetime(2026, 11, 29, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert (
        fire_times("cron(30 4 ? * MON-FRI *)", "Asia/Tokyo", sunday, sunday + timedelta(days=1))
        == []
    )


def test_template_reading(tmp_path: Path) -> None:
    model = read_model([write(tmp_path, kit_template(spot=True))])
    assert (model.queue.visibility_seconds, model.queue.max_receive_count) == (120, 5)
    assert (model.task.processes, model.task.heartbeat_seconds, model.task.spot_share) == (
        4,
        30,
        1.0,
    )
    assert model.task.task_protection and model.task.stop_grace_seconds == 100
    assert model.region == "ap-northeast-1"
    assert [a.returned for a in model.alarms] == ["fleet"]


def test_cli_json_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, kit_template())
    assert simulate.main(["--cdk-out", str(tmp_path), "--messages", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["messages"] == 200 and result["deadline_met"] and result["lost"] == 0
    chart = tmp_path / "day.png"
    simulate.main(
        [
            "--cdk-out",
            str(tmp_path),
            "--messages",
            "200",
            "--markdown-row",
            "--markdown-header",
            "--label",
            "kit",
            "--chart",
            str(chart),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| setup |") and lines[2].startswith("| kit | 200 | 4 |")
    assert chart.stat().st_size > 1000


def test_cli_reports_every_bad_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, kit_template())
    with pytest.raises(SystemExit) as exit_info:
        simulate.main(
            [
                "--cdk-out",
                str(tmp_path),
                "--messages",
                "0",
                "--arrival",
                "4:00-03:00",
                "--duration",
                "uniform:9:1",
            ]
        )
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--messages" in error and "--arrival" in error and "--duration" in error


def test_a_duration_is_seconds_fixed_seconds_or_uniform() -> None:
    """The CLI's one --duration syntax: `120` and `fixed:120` are the same fixed duration."""
    problems = Problems()
    assert problems.durations("--duration", "120") == Durations(120, 120)
    assert problems.durations("--duration", "fixed:120") == Durations(120, 120)
    assert problems.durations("--duration", "uniform:30:300") == Durations(30, 300)
    assert problems.items == []
    for bad in ("0", "1.5", "fixed:", "uniform:300:30", "120s"):
        problems.durations("--duration", bad)
    assert len(problems.items) == 5
    assert "expected SECONDS, fixed:SECONDS or uniform:LOW:HIGH" in problems.items[0]
