"""Known answers of the simulator on small handcrafted templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim_fixtures import kit_template, write

from scripts.capacity.sim import report
from scripts.capacity.sim.engine import SimConfig, Simulation, _step_for
from scripts.capacity.sim.template import PolicySpec, StepSpec, read_model

NO_HEARTBEAT_NO_PROTECTION: dict[str, str | None] = {
    "HEARTBEAT_INTERVAL_SECONDS": None,
    "TASK_PROTECTION": None,
    "WORKER_STOP_GRACE_SECONDS": None,
}


def _fixed_fleet(template: dict[str, Any], schedule: list[tuple[str, int]]) -> dict[str, Any]:
    """Capacity 0 until scheduled (cron, tasks) actions set min = max = tasks."""
    target = template["Resources"]["Target"]["Properties"]
    target["MinCapacity"] = target["MaxCapacity"] = 0
    target["ScheduledActions"] = [
        {
            "ScheduledActionName": f"set{index}",
            "Schedule": cron,
            "Timezone": "Asia/Tokyo",
            "ScalableTargetAction": {"MinCapacity": tasks, "MaxCapacity": tasks},
        }
        for index, (cron, tasks) in enumerate(schedule)
    ]
    return template


def simulate(tmp_path: Path, template: dict[str, Any], **config: Any) -> Simulation:
    model = read_model([write(tmp_path, template)])
    settings: dict[str, Any] = {"arrival_start": 4 * 3600, "arrival_end": 4 * 3600}
    settings.update(config)
    return Simulation(model, SimConfig(**settings)).run()


def test_fixed_capacity_finishes_at_start_latency_plus_rounds_of_jobs(tmp_path: Path) -> None:
    # K=2 tasks of P=3 from 04:00; 13 jobs of 100 s: ceil(13 / 6) = 3 rounds after 60 s start.
    template = _fixed_fleet(
        kit_template(processes=3, scaling=False, window_min=None), [("cron(0 4 * * ? *)", 2)]
    )
    sim = simulate(tmp_path, template, messages=13, duration_low=100, duration_high=100)
    result = report.build(sim, "fixed", "default")
    assert result.finish == "04:06:00"  # 04:00 + 60 s + 3 x 100 s
    assert result.deadline_met and result.lost == 0 and result.duplicate_runs == 0
    # Billing: two tasks from 04:00 to the end of the day (min = max = 2 all day).
    assert result.task_hours == round(2 * 20 * 3600 / 3600, 2)


def test_scale_in_without_protection_kills_a_running_job_that_runs_again(tmp_path: Path) -> None:
    template = _fixed_fleet(
        kit_template(processes=1, scaling=False, window_min=None, env=NO_HEARTBEAT_NO_PROTECTION),
        [("cron(0 4 * * ? *)", 2), ("cron(5 4 * * ? *)", 1)],
    )
    sim = simulate(tmp_path, template, messages=2, duration_low=600, duration_high=600)
    result = report.build(sim, "scale-in", "default")
    assert result.killed_by_scale_in == 1
    assert result.duplicates_by_scaling == 1
    assert result.remaining == 0 and result.lost == 0


def test_task_protection_keeps_the_busy_task_until_its_job_is_done(tmp_path: Path) -> None:
    template = _fixed_fleet(
        kit_template(processes=1, scaling=False, window_min=None),
        [("cron(0 4 * * ? *)", 2), ("cron(5 4 * * ? *)", 1)],
    )
    sim = simulate(tmp_path, template, messages=2, duration_low=600, duration_high=600)
    result = report.build(sim, "protected", "default")
    assert result.killed_by_scale_in == 0 and result.duplicate_runs == 0
    stopped = [
        task.stopped for task in sim.tasks if task.stopped is not None and task.stopped < 86_400
    ]
    assert stopped == [4 * 3600 + 60 + 600]  # stopped once its only job was done


def test_grace_hands_the_message_back_instead_of_killing(tmp_path: Path) -> None:
    template = _fixed_fleet(
        kit_template(processes=1, scaling=False, window_min=None, env={"TASK_PROTECTION": "off"}),
        [("cron(0 4 * * ? *)", 2), ("cron(5 4 * * ? *)", 1)],
    )
    sim = simulate(tmp_path, template, messages=2, duration_low=600, duration_high=600)
    result = report.build(sim, "grace", "default")
    assert (result.handed_back, result.killed_by_scale_in, result.duplicates_by_scaling) == (
        1,
        0,
        0,
    )
    assert result.remaining == 0


def test_job_longer_than_visibility_without_heartbeat_runs_twice(tmp_path: Path) -> None:
    template = _fixed_fleet(
        kit_template(
            processes=2,
            scaling=False,
            window_min=None,
            visibility=60,
            env={"HEARTBEAT_INTERVAL_SECONDS": None},
        ),
        [("cron(0 4 * * ? *)", 1)],
    )
    sim = simulate(tmp_path, template, messages=1, duration_low=100, duration_high=100)
    assert sim.messages[0].runs == 2
    assert sim.stats.duplicates_by_visibility == 1


def test_job_longer_than_visibility_with_heartbeat_runs_once(tmp_path: Path) -> None:
    template = _fixed_fleet(
        kit_template(processes=2, scaling=False, window_min=None, visibility=60),
        [("cron(0 4 * * ? *)", 1)],
    )
    sim = simulate(tmp_path, template, messages=1, duration_low=100, duration_high=100)
    assert sim.messages[0].runs == 1 and sim.messages[0].state == "deleted"


def test_poison_messages_go_to_the_dlq_after_max_receive_count(tmp_path: Path) -> None:
    template = _fixed_fleet(
        kit_template(
            processes=2,
            scaling=False,
            window_min=None,
            max_receive=3,
            env={"RETRY_BACKOFF_BASE_SECONDS": "10"},
        ),
        [("cron(0 4 * * ? *)", 1)],
    )
    sim = simulate(
        tmp_path, template, messages=10, duration_low=30, duration_high=30, poison_fraction=0.2
    )
    result = report.build(sim, "poison", "default")
    assert result.dead_lettered == 2
    assert [m.runs for m in sim.messages if m.poison] == [3, 3]
    assert result.lost == 0 and result.remaining == 0


def test_scheduled_window_raises_the_floor_at_the_tokyo_time(tmp_path: Path) -> None:
    sim = simulate(tmp_path, kit_template(window_min=6), messages=1)
    raised = [(t, new) for t, reason, _, new in sim.stats.scaling_actions if "RaiseFloor" in reason]
    assert raised == [(4 * 3600, 6)]  # 04:00 Asia/Tokyo on the simulated day


def test_kit_design_scales_out_on_the_backlog_and_back_to_zero(tmp_path: Path) -> None:
    # No window: only the metric math alarms act, after the idle queue's wake-up lag.
    sim = simulate(
        tmp_path,
        kit_template(window_min=None, target=20),
        messages=400,
        arrival_start=3 * 3600 + 55 * 60,
    )
    result = report.build(sim, "kit", "default")
    first = next(t for t, reason, _, _ in sim.stats.scaling_actions if reason == "PolicyFleet")
    assert 3 * 3600 + 55 * 60 + 600 <= first <= 3 * 3600 + 55 * 60 + 600 + 180
    assert result.peak_tasks == 5  # ceil(400 / (20 x 4))
    assert sim.desired == 0 and result.remaining == 0
    assert result.killed_by_scale_in == 0 and result.duplicate_runs == 0


def test_qpfs_cpu_target_tracking_scales_in_busy_single_process_tasks(tmp_path: Path) -> None:
    # QPFS shape: one process per 0.25 vCPU task (20% CPU when busy), CPU target 50%.
    template = _fixed_fleet(
        kit_template(processes=1, scaling=False, window_min=None, env=NO_HEARTBEAT_NO_PROTECTION),
        [("cron(0 4 * * ? *)", 2), ("cron(1 4 * * ? *)", 0)],
    )
    template["Resources"]["Target"]["Properties"]["MaxCapacity"] = 2
    template["Resources"]["Target"]["Properties"]["ScheduledActions"][1]["ScalableTargetAction"] = {
        "MinCapacity": 1,
        "MaxCapacity": 2,
    }
    template["Resources"]["Cpu"] = {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                },
                "TargetValue": 50,
            },
        },
    }
    sim = simulate(tmp_path, template, messages=40, duration_low=300, duration_high=300)
    scale_in = [(t, new) for t, reason, _, new in sim.stats.scaling_actions if reason == "Cpu"]
    # 20% < 45% for 15 one-minute datapoints: ceil(2 x 20 / 50) = 1 task.
    assert scale_in and scale_in[0][1] == 1
    assert 4 * 3600 + 15 * 60 <= scale_in[0][0] <= 4 * 3600 + 18 * 60
    assert sim.stats.killed_by_scale_in >= 1


def test_a_step_ending_at_the_threshold_acts_on_a_metric_at_the_threshold() -> None:
    """QPFS's scale-in: an alarm at visible <= 0 and one step (-inf, 0]: an empty queue (0,
    the threshold itself) removes tasks; above the threshold the lower bound is inclusive."""
    scale_in = PolicySpec("in", "StepScaling", steps=(StepSpec(None, 0, -25),))
    assert _step_for(scale_in, 0.0) == -25
    assert _step_for(scale_in, -3.0) == -25
    scale_out = PolicySpec("out", "StepScaling", steps=(StepSpec(0, 99, 5), StepSpec(99, None, 25)))
    assert _step_for(scale_out, 0.0) == 5
    assert _step_for(scale_out, 99.0) == 25
