"""A measurement of a team's image (scripts/capacity/measured.py): its arithmetic, the cgroup
figures `measure` reads, and the document `measure --out` writes and `plan --measured` reads."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest

from scripts._cli import OpsError, UsageError
from scripts.capacity import measured, plan
from scripts.devtools.measure_image import cgroup_figures, read_bodies
from stacks import sizing

REFERENCE = ["--messages", "2000", "--duration", "uniform:30:300"]
FIGURES = measured.Measured(
    image="our-app:1.4.2",
    measured_at="2026-12-06T21:50:00+00:00",
    environment="prod",
    handler_mode="command",
    processes=8,
    busy_seconds=60.0,
    jobs_done=240,
    jobs_failed=0,
    container_peak_mib=419.5,
    kit_mib=306,
    process_memory_mib=15,
    process_cpu=0.06,
)


def test_per_process_is_the_peak_less_the_kits_share_over_the_processes_rounded_up() -> None:
    kit = sizing.kit_memory_mib(8, "command")
    assert kit == sizing.KIT_TASK_OVERHEAD_MIB + 8 * sizing.KIT_SLOT_OVERHEAD_MIB["command"]
    peak = (kit + 8 * 100 + 1) * measured.MIB  # 1 MiB over 100 each: 100.125 -> 101
    assert measured.per_process(peak, 24.0, 60.0, 8, "command") == (101, 0.05, kit)
    # CPU rounds up to 0.001 vCPU: 1 s over 60 s and 8 processes = 0.00208 -> 0.003.
    assert measured.per_process(peak, 1.0, 60.0, 8, "command")[1] == 0.003
    # A peak below the kit's share (jobs lighter than the kit's figures) still plans 1 MiB.
    assert measured.per_process(kit * measured.MIB, 0.0, 60.0, 8, "command")[:2] == (1, 0.001)


@pytest.mark.parametrize(
    "text",
    [
        "/sys/fs/cgroup/memory.current:104857600\n/sys/fs/cgroup/memory.peak:209715200\n"
        "/sys/fs/cgroup/cpu.stat:usage_usec 2500000\n/sys/fs/cgroup/cpu.stat:user_usec 2000000\n",
        "/sys/fs/cgroup/memory/memory.usage_in_bytes:104857600\n"
        "/sys/fs/cgroup/memory/memory.max_usage_in_bytes:209715200\n"
        "/sys/fs/cgroup/cpuacct/cpuacct.usage:2500000000\n",
    ],
    ids=["cgroup-v2", "cgroup-v1"],
)
def test_the_cgroup_figures_of_either_version(text: str) -> None:
    assert cgroup_figures(text) == (104857600, 209715200, 2.5)


def test_a_cgroup_without_figures_is_an_error() -> None:
    with pytest.raises(OpsError, match="no memory or CPU figures"):
        cgroup_figures("")


def test_bodies_are_one_json_document_a_line(tmp_path: Path) -> None:
    bodies = tmp_path / "bodies.jsonl"
    bodies.write_text('{"job": 1}\n\n{"job": 2}\n')
    assert read_bodies(bodies) == ['{"job": 1}', '{"job": 2}']
    bodies.write_text('{"job": 1}\nnot json\n')
    with pytest.raises(UsageError, match="line 2 is not one JSON body"):
        read_bodies(bodies)


def test_what_measure_writes_plan_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "measured.json"
    measured.write(path, FIGURES)
    assert measured.read(path) == FIGURES
    assert plan.main([*REFERENCE, "--measured", str(path), "--json"]) == 0
    per_process = json.loads(capsys.readouterr().out)["per_process"]
    assert (per_process["memory_mib"], per_process["cpu"], per_process["handler_mode"]) == (
        15,
        0.06,
        "command",
    )
    # The same plan as with the figures given by hand.
    assert plan.main([*REFERENCE, "--measured", str(path)]) == 0
    text = capsys.readouterr().out
    by_hand = [*REFERENCE, *FIGURES.planner_options().split(), "--handler-mode", "command"]
    assert plan.main(by_hand) == 0
    assert capsys.readouterr().out.split("per process:")[0] == text.split("per process:")[0]
    assert (
        "per process: 15 MiB and 0.06 vCPU busy, plus the kit's own share in command mode "
        f"(stacks/sizing.py): measured from our-app:1.4.2 on 2026-12-06, {path}"
    ) in text


@pytest.mark.parametrize(
    "given", [["--process-memory", "300"], ["--process-cpu", "0.1"], ["--handler-mode", "callable"]]
)
def test_measured_figures_conflict_with_figures_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given: list[str]
) -> None:
    path = tmp_path / "measured.json"
    measured.write(path, FIGURES)
    with pytest.raises(SystemExit) as exit_info:
        plan.main([*REFERENCE, "--measured", str(path), *given])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and given[0] in error and "--measured" in error


def test_a_document_that_is_not_a_measurement_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "measured.json"
    document = asdict(FIGURES)
    del document["process_cpu"]
    path.write_text(json.dumps(document))
    assert plan.main([*REFERENCE, "--measured", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"error: --measured {path}: not a `queue-worker measure --out` document "
        "(missing process_cpu)\n"
    )
    measured.write(path, replace(FIGURES, process_cpu=0))
    with pytest.raises(OpsError, match="out of range"):
        measured.read(path)


def test_the_document_holds_the_fields_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "measured.json"
    measured.write(path, FIGURES)
    assert list(json.loads(path.read_text())) == [f.name for f in fields(measured.Measured)]
