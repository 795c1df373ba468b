"""The QueueProcessingFargateService anchor, tuned as a careful user would, read by the
simulator: what docs/benchmarks.md compares the kit with."""

from __future__ import annotations

from pathlib import Path

from scripts.capacity import qpfs_reference
from scripts.capacity.sim.template import read_model


def test_tuned_qpfs_has_no_cpu_scaling_scales_to_zero_and_outlasts_a_job(tmp_path: Path) -> None:
    default = read_model([qpfs_reference.synth(tmp_path / "default")])
    tuned = read_model([qpfs_reference.synth(tmp_path / "tuned", tuned=True)])
    kinds = {p.kind for p in default.policies.values()}
    assert "TargetTrackingScaling" in kinds  # the default's CPU policy
    assert {p.kind for p in tuned.policies.values()} == {"StepScaling"}
    assert (tuned.min_capacity, tuned.max_capacity) == (0, qpfs_reference.TUNED_MAX_TASKS)
    assert tuned.queue.visibility_seconds == qpfs_reference.TUNED_VISIBILITY_SECONDS
    assert tuned.task.stop_timeout_seconds == 120
    steps = sorted(s.adjustment for p in tuned.policies.values() for s in p.steps)
    assert steps == sorted(i.change for i in qpfs_reference.TUNED_STEPS)
