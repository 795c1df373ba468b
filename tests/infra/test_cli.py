"""The pinned CDK CLI synthesizes with -c overrides, and bad settings read as one message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def cdk_synth(tmp_path: Path, *context: str) -> subprocess.CompletedProcess[str]:
    args = [str(CDK), "synth", "--quiet", "-o", str(tmp_path / "cdk.out")]
    for item in context:
        args += ["-c", item]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_cli_is_the_pinned_version() -> None:
    package = json.loads((ROOT / "node_modules" / "aws-cdk" / "package.json").read_text())
    assert package["version"].startswith("2.1148.")


def test_synth_prod_with_a_process_override(tmp_path: Path) -> None:
    result = cdk_synth(tmp_path, "env=prod", "worker.processes=6")
    assert result.returncode == 0, result.stderr
    template = json.loads(
        (tmp_path / "cdk.out" / "QueueWorker-prod-Worker.template.json").read_text()
    )
    (task,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    env = {
        e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]
    }
    assert env["WORKER_PROCESSES"] == "6"


def test_bad_settings_give_one_clear_message_not_a_traceback(tmp_path: Path) -> None:
    result = cdk_synth(
        tmp_path, "env=prod", "worker.processes=0", "worker.memory_mib=333", "scaling.max_task=3"
    )
    assert result.returncode != 0
    assert "Invalid configuration" in result.stderr
    assert "worker.processes: 0 must be at least 1" in result.stderr
    assert "memory_mib: 333 is not valid with cpu 512" in result.stderr
    assert "scaling.max_task: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_env_lists_the_environments(tmp_path: Path) -> None:
    result = cdk_synth(tmp_path)
    assert result.returncode != 0
    assert "pass -c env=NAME with NAME one of ['dev', 'prod', 'stg']" in result.stderr
    assert "Traceback" not in result.stderr
