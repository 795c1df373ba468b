"""The capacity planner: the reference workload's shape, the whole month it ranks shapes by,
validation and the cdk.json block."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from scripts import cdk_json
from scripts._cli import OpsError
from scripts.capacity import plan, pricing
from stacks import sizing
from stacks.config import load_config
from stacks.fargate import VALID_MEMORY_MIB

REFERENCE = ["--messages", "2000", "--duration", "uniform:30:300"]

SHIPPED_CDK_JSON = Path(__file__).resolve().parents[3] / "cdk.json"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert plan.main([*argv, "--json"]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_reference_workload_shape(capsys: pytest.CaptureFixture[str]) -> None:
    best = _json(capsys, REFERENCE)["best"]
    assert isinstance(best, dict)
    # By hand: (5 h - 30 min - 60 s start - 720 s scale-out delay - 300 s longest) / 165 s
    # = 91.6 -> 91 per process; 2 vCPU / 7 GiB hosts min((7168 - 64) // 207, 1.6 / 0.05)
    # = 32 processes; ceil(2000 / 2912) = 1 window task; ceil(20000 / 2912) = 7 max. Its
    # compute is within 1% of 0.25 vCPU / 1 GiB's (4 processes, 6 tasks), but 1/8 of the
    # task-hours pay 1/8 of the public IPv4 (0.005 USD a task-hour): 3 USD a month less.
    assert (best["architecture"], best["capacity"]) == ("arm64", "on-demand")
    assert (best["cpu"], best["memory_mib"], best["processes"]) == (2048, 7168, 32)
    assert (best["target_backlog_per_process"], best["window_min_tasks"], best["max_tasks"]) == (
        91,
        1,
        7,
    )


def test_mean_and_max_flags_match_the_uniform_distribution(
    capsys: pytest.CaptureFixture[str],
) -> None:
    by_range = _json(capsys, REFERENCE)["best"]
    by_moments = _json(
        capsys, ["--messages", "2000", "--duration-mean", "165", "--duration-max", "300"]
    )
    assert by_moments["best"] == by_range


def test_db_cap_limits_max_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    result = _json(capsys, [*REFERENCE, "--db-connections", "100"])
    block = result["cdk_json"]
    assert isinstance(block, dict)
    assert block["scaling"]["max_total_processes"] == 100
    assert block["scaling"]["max_tasks"] * block["worker"]["processes"] <= 100


@pytest.mark.parametrize(
    "extra", [[], ["--capacity", "on-demand"], ["--architecture", "x86_64"], ["--env", "prod"]]
)
def test_cdk_json_block_is_accepted_by_the_config_parser(
    capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    block = _json(capsys, [*REFERENCE, *extra])["cdk_json"]
    assert isinstance(block, dict)
    assert set(block) == {"region", "worker", "scaling", "batch_window"}
    config = load_config({"prod": block}, "prod")
    assert config.worker.processes == block["worker"]["processes"]
    assert (
        config.scaling.target_backlog_per_process == block["scaling"]["target_backlog_per_process"]
    )


def test_cdk_json_block_gives_the_deadline_rule_the_workloads_mean_job_and_margin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Jobs twice as long as the config's default mean (165 s) and a 45-minute margin: the
    block carries both, so the window's deadline rule sizes the fleet for this workload."""
    argv = ["--messages", "2000", "--duration", "uniform:60:600", "--margin", "45"]
    block = _json(capsys, argv)["cdk_json"]
    assert isinstance(block, dict)
    config = load_config({"prod": block}, "prod")
    assert config.scaling.mean_job_seconds == 330
    (window,) = config.batch_windows
    assert window.deadline_margin_minutes == 45


def test_invalid_inputs_are_reported_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        plan.main(
            [
                "--messages",
                "0",
                "--duration",
                "uniform:300:30",
                "--window-start",
                "09:00",
                "--window-end",
                "04:00",
                "--timezone",
                "Mars/Base",
                "--process-cpu",
                "0",
                "--spot-discount",
                "1.2",
            ]
        )
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    # One line, as every bad argument of the CLI: the command, "error:", each problem.
    assert error.startswith("python -m scripts.capacity.plan: error: --messages 0: must be >= 1; ")
    assert error.count("\n") == 1 and error.endswith("(see --help)\n")
    for flag, value in [
        ("--messages", "0"),
        ("--duration", "uniform:300:30"),
        ("--window-end", "04:00"),
        ("--timezone", "Mars/Base"),
        ("--process-cpu", "0"),
        ("--spot-discount", "1.2"),
    ]:
        assert f"{flag} {value!r}" in error or f"{flag} {value}" in error


def test_human_output_answers_first_and_marks_the_chosen_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    best = _json(capsys, [*REFERENCE, "--capacity", "spot"])["best"]
    assert isinstance(best, dict)
    cpu, memory, processes = best["cpu"], best["memory_mib"], best["processes"]
    assert plan.main([*REFERENCE, "--capacity", "spot"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(
        f"chosen: arm64 spot, cpu {cpu}, {memory} MiB, {processes} processes per task: "
        f"whole month ${best['whole_month']['total']:.2f} (compute $"
    )
    assert lines[1].startswith(
        "why: arm64 spot: arm64 (Graviton) costs 20% less compute than x86_64"
    )
    assert "Spot, planned at 50% off" not in lines[1]  # no on-demand shape to compare with
    assert lines[2].startswith(
        "shape: whole month within 5% of the cheapest's compute of the cheapest whole month"
    )
    assert "no database cap given (--env or --max-total-processes)" in lines[2]
    block = json.loads(out[out.index("\n{") :])
    assert block["worker"]["processes"] == processes
    # The cap the sentence names is the one the block sets (Spot: its fallback counts too).
    cap = block["scaling"]["max_total_processes"]
    assert cap == 2 * block["scaling"]["max_tasks"] * block["worker"]["processes"]
    assert lines[2].endswith(
        f"the block sets max_total_processes to {block['scaling']['max_tasks']} tasks x "
        f"{processes} x 2 "
        f"(with the on-demand fallback) = {cap} processes; lower it to what your database allows"
    )
    assert lines[3].startswith("compute floor $")
    # The chosen shape's month, line by line: its total is the one the first line names.
    total = lines[0].split("whole month $")[1].split()[0]
    (summary,) = [line for line in lines if line.startswith("whole month: ")]
    assert summary.startswith(f"whole month: {total} USD (compute ")
    assert any(line.startswith("Container Insights: 12 task-count metrics") for line in lines)
    marked = [line for line in lines if line.startswith("*")]
    assert len(marked) == 1
    assert marked[0].split()[1:6] == ["arm64", "spot", str(cpu), str(memory), str(processes)]
    assert marked[0].split()[-1] == total
    assert len([line for line in lines if line.endswith("more shapes: --all)")]) == 1
    assert block["batch_window"]["min_tasks"] == 1


def test_all_lists_every_shape(capsys: pytest.CaptureFixture[str]) -> None:
    shapes = _json(capsys, REFERENCE)["shapes"]
    assert isinstance(shapes, list)
    assert plan.main([*REFERENCE, "--all"]) == 0
    out = capsys.readouterr().out
    (table,) = [b.splitlines() for b in out.split("\n\n") if b.lstrip().startswith("arch")]
    assert len(table) == 1 + len(shapes)  # the header and every shape
    assert "more shapes" not in out


def test_cap_from_the_environment_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cdk_json = tmp_path / "cdk.json"
    env = {"region": "ap-northeast-1", "scaling": {"max_tasks": 15, "max_total_processes": 60}}
    cdk_json.write_text(json.dumps({"context": {"environments": {"small": env}}}))
    argv = [*REFERENCE, "--env", "small", "--cdk-json", str(cdk_json), "--capacity", "spot"]
    result = _json(capsys, argv)
    assert result["max_total_processes"] == 60
    assert result["max_total_processes_from"] == "small's scaling.max_total_processes"
    block = result["cdk_json"]
    assert isinstance(block, dict)
    assert block["scaling"]["max_total_processes"] == 60  # never raised
    # Spot: the on-demand fallback may run beside the worker tasks, both count in the cap.
    assert block["worker"]["capacity"] == {"spot_weight": 1, "on_demand_weight": 0}
    assert 2 * block["scaling"]["max_tasks"] * block["worker"]["processes"] <= 60
    load_config({"small": block}, "small")


def test_nothing_fits_the_cap_says_what_would(capsys: pytest.CaptureFixture[str]) -> None:
    """20,000 messages need far more than 20 processes in the window: exit 1, and the cap
    that the cheapest shape would need."""
    argv = ["--messages", "20000", "--duration", "uniform:30:300", "--max-total-processes", "20"]
    assert plan.main(argv) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("no shape fits under the database cap 20 (--max-total-processes):")
    assert "raise the cap to at least " in first
    wanted = int(first.split("raise the cap to at least ")[1].split(",")[0])
    assert wanted > 20
    # And that cap is indeed enough.
    capsys.readouterr()
    assert plan.main([*argv[:-1], str(wanted)]) == 0


def test_unknown_environment_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main([*REFERENCE, "--env", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown environment 'nope' (environments in ")
    assert err.count("\n") == 1


def test_spot_is_priced_at_the_stated_discount(capsys: pytest.CaptureFixture[str]) -> None:
    """No interruptions: the same shape costs exactly (1 - discount) of on-demand."""
    argv = [*REFERENCE, "--architecture", "x86_64", "--spot-interruptions-per-hour", "0"]
    on_demand = _json(capsys, [*argv, "--capacity", "on-demand"])["best"]
    spots = _json(capsys, [*argv, "--capacity", "spot", "--spot-discount", "0.3"])["shapes"]
    assert isinstance(on_demand, dict) and isinstance(spots, list)
    (spot,) = [s for s in spots if (s["cpu"], s["memory_mib"]) == (2048, 7168)]
    assert (on_demand["cpu"], on_demand["memory_mib"]) == (2048, 7168)
    assert spot["price_per_hour"] == pytest.approx(on_demand["price_per_hour"] * 0.7, rel=1e-3)
    assert spot["compute_per_day"] == pytest.approx(on_demand["compute_per_day"] * 0.7, rel=1e-3)


def test_interruptions_cost_the_jobs_that_run_again(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*REFERENCE, "--architecture", "x86_64", "--capacity", "spot"]
    calm = _json(capsys, [*argv, "--spot-interruptions-per-hour", "0"])["best"]
    rough = _json(capsys, [*argv, "--spot-interruptions-per-hour", "1"])["best"]
    assert isinstance(calm, dict) and isinstance(rough, dict)
    assert rough["compute_per_day"] > calm["compute_per_day"]


def test_the_floor_is_the_cheapest_on_demand_price_per_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """By hand: the floor is messages x mean job seconds x min(on-demand task price / processes
    that fit), over every shape and architecture."""
    result = _json(capsys, REFERENCE)
    per_process = min(
        pricing.task_price_per_second(cpu, memory, "ap-northeast-1", architecture) / processes
        for cpu, memories in VALID_MEMORY_MIB.items()
        for memory in memories
        if (processes := plan.processes_that_fit(cpu, memory, 200, 0.05, "callable"))
        for architecture in pricing.ARCHITECTURES
    )
    floor = result["floor"]
    assert isinstance(floor, dict)
    assert floor["compute_per_day"] == pytest.approx(2000 * 165 * per_process, abs=1e-4)
    assert floor["architecture"] == "arm64"


def test_cheapest_on_demand_compute_is_within_1_3x_of_the_floor_and_spot_below_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's target for the reference workload, in compute (planner estimates; the
    simulated costs are in docs/benchmarks.md)."""
    on_demand = _json(capsys, [*REFERENCE, "--env", "prod", "--capacity", "on-demand"])
    spot = _json(capsys, [*REFERENCE, "--env", "prod", "--capacity", "spot"])
    assert isinstance(on_demand["compute_vs_floor"], float)
    assert isinstance(spot["compute_vs_floor"], float)
    assert on_demand["compute_vs_floor"] <= 1.3
    assert spot["compute_vs_floor"] < 1


def test_the_option_sentence_names_the_alternatives(capsys: pytest.CaptureFixture[str]) -> None:
    only = _json(capsys, [*REFERENCE, "--architecture", "x86_64", "--capacity", "on-demand"])
    assert only["option"] == "x86_64 on-demand: the cheapest option allowed"
    arm = _json(capsys, [*REFERENCE, "--capacity", "on-demand"])
    assert str(arm["option"]).startswith(
        "arm64 on-demand: arm64 (Graviton) costs 20% less compute than x86_64"
    )


def test_prices_and_the_block_use_the_environments_region(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cdk_json = tmp_path / "cdk.json"
    environments = {
        "east": {"region": "us-east-1", "scaling": {"max_total_processes": 100}},
        "sao": {"region": "sa-east-1"},
    }
    cdk_json.write_text(json.dumps({"context": {"environments": environments}}))
    east = _json(capsys, [*REFERENCE, "--env", "east", "--cdk-json", str(cdk_json)])
    tokyo = _json(capsys, [*REFERENCE, "--max-total-processes", "100"])
    assert east["cdk_json"]["region"] == "us-east-1"
    assert tokyo["cdk_json"]["region"] == "ap-northeast-1"  # the default
    assert east["best"]["price_per_hour"] < tokyo["best"]["price_per_hour"]  # Tokyo costs more
    given = _json(capsys, [*REFERENCE, "--env", "east", "--cdk-json", str(cdk_json), "--region",
                           "eu-west-1"])  # fmt: skip
    assert given["cdk_json"]["region"] == "eu-west-1"
    assert plan.main([*REFERENCE, "--env", "sao", "--cdk-json", str(cdk_json)]) == 1
    assert capsys.readouterr().err == (
        "error: no Fargate prices for sao's region sa-east-1 (known: "
        f"{', '.join(pricing.REGIONS)}): pass --region\n"
    )


def test_the_kits_share_follows_the_environments_handler_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A command-mode environment is planned with the kit's 33 MiB loop per process (as its
    config check counts it), not the callable mode's 7; --handler-mode still overrides."""
    cdk_json = tmp_path / "cdk.json"
    worker = {"handler_mode": "command", "handler": "php job.php"}
    environments = {"php": {"region": "ap-northeast-1", "worker": worker}}
    cdk_json.write_text(json.dumps({"context": {"environments": environments}}))
    args = [*REFERENCE, "--env", "php", "--cdk-json", str(cdk_json), "--all"]

    def processes(extra: list[str]) -> dict[tuple[int, int], int]:
        shapes = _json(capsys, [*args, *extra])["shapes"]
        assert isinstance(shapes, list)
        return {(s["cpu"], s["memory_mib"]): s["processes"] for s in shapes}

    command, callable_ = processes([]), processes(["--handler-mode", "callable"])
    for (cpu, memory), count in command.items():
        assert count == min(
            sizing.processes_that_fit(memory, 200, "command"), callable_[(cpu, memory)]
        )
    assert command[(2048, 4096)] == 17 < callable_[(2048, 4096)]  # (4096 - 42) // (200 + 33)


def _feasible(result: dict[str, object]) -> list[dict[str, Any]]:
    shapes = result["shapes"]
    assert isinstance(shapes, list)
    return [s for s in shapes if s["feasible"]]


def test_spot_cheaper_in_compute_but_dearer_in_the_whole_month_loses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """300 messages a day: Spot halves a compute of about 2 USD a month, and its on-demand
    fallback adds Container Insights and two alarms (about 5 USD): on-demand's month wins."""
    result = _json(capsys, ["--messages", "300", "--duration", "uniform:30:300", "--env", "prod"])
    best = result["best"]
    assert isinstance(best, dict)
    feasible = _feasible(result)
    least_compute = min(feasible, key=lambda s: s["compute_per_day"])
    assert least_compute["capacity"] == "spot" and best["capacity"] == "on-demand"
    assert best["compute_per_day"] > least_compute["compute_per_day"]
    assert best["whole_month"]["total"] < least_compute["whole_month"]["total"]
    spots = [s for s in feasible if s["capacity"] == "spot"]
    assert min(s["whole_month"]["total"] for s in spots) > best["whole_month"]["total"]
    # What Spot adds beyond compute is the fallback's, on the same shape.
    (same,) = [s for s in spots if plan_key(s) == plan_key(best)]
    assert same["whole_month"]["fixed"] > best["whole_month"]["fixed"]
    assert "its whole month is $" in str(result["option"])
    assert str(result["option"]).endswith("above on-demand's")


def plan_key(shape: dict[str, Any]) -> tuple[int, int, str]:
    return shape["cpu"], shape["memory_mib"], shape["architecture"]


def test_spot_wins_when_its_saving_outweighs_its_fallback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """20,000 messages a day: Spot saves about 50 USD of compute a month, more than its
    fallback's fixed part; the whole month picks it."""
    argv = ["--messages", "20000", "--duration", "uniform:30:300", "--max-total-processes", "1000"]
    result = _json(capsys, argv)
    best = result["best"]
    assert isinstance(best, dict) and best["capacity"] == "spot"
    on_demand = [s for s in _feasible(result) if s["capacity"] == "on-demand"]
    assert min(s["whole_month"]["total"] for s in on_demand) > best["whole_month"]["total"]
    saving = str(result["option"]).split(": its whole month is $")[1].split()
    assert saving[1:3] == ["below", "on-demand's"]


def test_the_chosen_shapes_month_is_broken_down(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON's best carries its month line by line: compute is the day's compute for 30.4
    days, the tasks' public IPv4 is paid per task-hour, each price has its source and date."""
    result = _json(capsys, [*REFERENCE, "--env", "prod"])
    best = result["best"]
    assert isinstance(best, dict)
    month = best["whole_month"]
    assert month["total"] == pytest.approx(
        month["compute"] + month["fixed"] + month["usage"], abs=0.02
    )
    assert month["compute"] == pytest.approx(best["compute_per_day"] * 730 / 24, abs=0.01)
    lines = {line["item"]: line for line in month["lines"]}
    ipv4 = lines["public IPv4 on tasks (task-hours)"]
    assert ipv4["quantity"] == pytest.approx(best["task_hours_per_day"] * 730 / 24, rel=1e-3)
    assert ipv4["usd"] == pytest.approx(ipv4["quantity"] * 0.005, abs=1e-4)
    assert lines["KMS keys"]["kind"] == "fixed" and lines["KMS keys"]["usd"] == 1.0
    # prod: level full, one window: 7 alarms (the memory alarm, a deadline alarm) reading 13
    assert lines["alarms: 7, reading 13 metrics"]["usd"] == pytest.approx(1.30)
    assert all(line["price"]["source"] and line["price"]["seen"] for line in month["lines"])
    assert "prod's settings in cdk.json" in str(result["priced_as"])


def test_the_environments_settings_price_every_shape(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A dashboard adds its 3 USD to every shape's month. Behind a NAT gateway (its hours do not
    depend on the shape) tasks pay no public IPv4 each: the planner then takes the finer shape
    that public egress made dearer."""
    cdk_json = tmp_path / "cdk.json"
    environments = {
        "public": {"region": "ap-northeast-1"},
        "dashboard": {"region": "ap-northeast-1", "monitoring": {"dashboard": True}},
        "nat": {"region": "ap-northeast-1", "network": {"egress": "nat"}},
    }
    cdk_json.write_text(json.dumps({"context": {"environments": environments}}))
    runs = {
        name: _json(capsys, [*REFERENCE, "--env", name, "--cdk-json", str(cdk_json)])
        for name in environments
    }
    public, dashboard = runs["public"]["shapes"], runs["dashboard"]["shapes"]
    assert isinstance(public, list) and isinstance(dashboard, list)
    assert len(public) == len(dashboard)
    for plain, with_dashboard in zip(public, dashboard, strict=True):
        added = with_dashboard["whole_month"]["fixed"] - plain["whole_month"]["fixed"]
        assert added == pytest.approx(3.00, abs=0.011)
    nat = runs["nat"]["best"]
    assert isinstance(nat, dict)
    items = [line["item"] for line in nat["whole_month"]["lines"]]
    assert "NAT gateways (and their public IPv4)" in items
    assert "public IPv4 on tasks (task-hours)" not in items
    public_best = runs["public"]["best"]
    assert isinstance(public_best, dict)
    assert nat["processes"] < public_best["processes"]


def test_the_deadline_runbooks_plan_step_works_as_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/operations.md's planner step, run as printed: --max-total-processes with --env is
    the cap the database would allow (prod's 100 fits no shape for 20,000 jobs: exit 1)."""
    text = (SHIPPED_CDK_JSON.parent / "docs" / "operations.md").read_text()
    (line,) = [row for row in text.splitlines() if re.search(r"(queue-worker|scripts) plan ", row)]
    argv = shlex.split(re.split(r"(?:queue-worker|scripts) plan ", line)[1])
    assert plan.main(argv) == 0
    out = capsys.readouterr().out
    assert "database cap 256 (--max-total-processes)" in out
    without_the_cap = [a for a in argv if a not in ("--max-total-processes", "256")]
    assert plan.main(without_the_cap) == 1
    out, err = capsys.readouterr()
    assert out.startswith("no shape fits under the database cap 100 (prod's")
    # Like every exit 1 of the CLI, it ends with one error line, after the table.
    assert (
        err.startswith("error: no shape fits under the database cap 100") and err.count("\n") == 1
    )
    assert "raise the cap to at least 512" in err


PLAN = ["--messages", "2000", "--duration", "uniform:30:300", "--env", "prod"]


def shipped_copy(tmp_path: Path) -> Path:
    """A copy of the shipped cdk.json in ``tmp_path``, for --cdk-json."""
    path = tmp_path / "cdk.json"
    path.write_text(SHIPPED_CDK_JSON.read_text())
    return path


def test_write_puts_the_plan_into_the_environment_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shipped_copy(tmp_path)
    before = json.loads(path.read_text())["context"]["environments"]
    assert plan.main([*PLAN, "--cdk-json", str(path), "--write", "--yes"]) == 0
    out = capsys.readouterr().out
    block = json.loads(out.split("cdk.json environment block:\n")[1].split("\n\n")[0])
    assert "--- cdk.json (now)" in out and "+++ cdk.json (planned)" in out
    after = json.loads(path.read_text())["context"]["environments"]
    assert {k: v for k, v in after.items() if k != "prod"} == {
        k: v for k, v in before.items() if k != "prod"
    }
    prod, was = after["prod"], before["prod"]
    for section in ("worker", "scaling", "batch_window"):
        assert prod[section] == {**was[section], **block[section]}
    assert prod["queue"] == was["queue"] and prod["retain_data"] == was["retain_data"]
    config = load_config(after, "prod")
    assert config.worker.processes == block["worker"]["processes"]
    # Written once: the same plan again has nothing to write.
    assert plan.main([*PLAN, "--cdk-json", str(path), "--write", "--yes"]) == 0
    assert "already holds this plan for prod: nothing to write" in capsys.readouterr().out


def test_write_asks_first_and_without_a_terminal_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shipped_copy(tmp_path)
    assert plan.main([*PLAN, "--cdk-json", str(path), "--write"]) == 1
    out, err = capsys.readouterr()
    assert "+++ cdk.json (planned)" in out  # the diff, shown before the question
    assert err.startswith("error: not written: no terminal to confirm on (pass --yes")
    assert path.read_text() == SHIPPED_CDK_JSON.read_text()


@pytest.mark.parametrize(
    "extra", [["--write"], ["--yes"], ["--env", "prod", "--write", "--json"]], ids=str
)
def test_write_needs_an_environment_and_plain_output(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        plan.main(["--messages", "2000", "--duration", "uniform:30:300", *extra])
    assert exit_info.value.code == 2
    assert "--write" in capsys.readouterr().err


def test_an_on_demand_plan_removes_the_spot_weights_and_several_windows_are_refused(
    tmp_path: Path,
) -> None:
    current = {"worker": {"processes": 8, "capacity": {"spot_weight": 1}}, "queue": {"x": 1}}
    merged = cdk_json.planned(current, {"worker": {"processes": 32}})
    assert merged == {"worker": {"processes": 32}, "queue": {"x": 1}}
    # A block without a worker section leaves the worker's Spot weights, and the input, alone.
    assert cdk_json.planned(current, {"queue": {"x": 2}})["worker"] == current["worker"]
    assert current["worker"] == {"processes": 8, "capacity": {"spot_weight": 1}}
    document = {"context": {"environments": {"prod": {"batch_windows": []}}}}
    with pytest.raises(OpsError, match="batch_windows"):
        cdk_json.planned_text(json.dumps(document), "prod", {}, tmp_path / "cdk.json")


def test_a_team_image_is_planned_on_the_environments_architecture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """arm64 needs an arm64 image: the kit builds its own for either, a team's image is
    what the environment runs (x86_64 unless worker.architecture says otherwise)."""
    shipped = json.loads(SHIPPED_CDK_JSON.read_text())
    path = tmp_path / "cdk.json"

    def planned(*extra: str) -> dict[str, Any]:
        path.write_text(json.dumps(shipped))
        assert plan.main([*PLAN, "--cdk-json", str(path), "--json", *extra]) == 0
        return dict(json.loads(capsys.readouterr().out))

    def architectures(answer: dict[str, Any]) -> set[str]:
        return {shape["architecture"] for shape in answer["shapes"]}

    assert architectures(planned()) == {"x86_64", "arm64"}  # the kit's own image
    shipped["context"]["environments"]["prod"]["worker"]["image"] = {"directory": "app"}
    team = planned()
    assert architectures(team) == {"x86_64"}
    assert (
        "prod's worker.image is the team's own image, for worker.architecture x86_64"
        in (team["option"])
    )
    assert architectures(planned("--architecture", "any")) == {"x86_64", "arm64"}
