"""The pinned CDK CLI synthesizes with -c overrides, bad settings read as one message, and the
Makefile acts on ENV only, skips what has not changed and lists its targets."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App

from stacks.app_builder import add_environment
from stacks.config import load_config
from tests.infra.conftest import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
# Never reinstall the venv or node_modules from a test: their stamps count as up to date.
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed", "-o", "node_modules/.installed"]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAKE, *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )


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


def test_cdk_ls_without_env_lists_every_environments_stacks(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(CDK), "ls", "-o", str(tmp_path / "cdk.out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        f"QueueWorker-{name}-{kind}" for name in ENVIRONMENTS for kind in ("Queue", "Worker")
    ]


def test_an_unknown_env_lists_the_environments(tmp_path: Path) -> None:
    result = cdk_synth(tmp_path, "env=qa")
    assert result.returncode != 0
    assert "unknown environment 'qa'; known: ['dev', 'prod', 'stg']" in result.stderr
    assert "Traceback" not in result.stderr


def test_make_help_lists_every_target_with_its_description() -> None:
    result = make("help")
    assert result.returncode == 0, result.stderr
    listed = dict(re.findall(r"^  ([a-z-]+) +(\S.*)$", result.stdout, re.MULTILINE))
    phony = re.search(r"^\.PHONY: ((?:.*\\\n)*.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert phony is not None
    targets = set(phony[1].replace("\\\n", " ").split()) - {"require-env"}
    assert set(listed) == targets
    assert listed["synth"].startswith("synthesize ENV")
    assert " ".join(ENVIRONMENTS) in result.stdout


def test_make_synth_with_env_synthesizes_only_that_env(tmp_path: Path) -> None:
    result = make("-n", "synth", "ENV=prod", f"OUT={tmp_path}")
    assert result.returncode == 0, result.stderr
    synths = [line for line in result.stdout.splitlines() if "cdk synth" in line]
    assert len(synths) == 1
    assert f"-c env=prod -o {tmp_path}/prod" in synths[0]


def test_make_synth_without_env_synthesizes_every_environment(tmp_path: Path) -> None:
    result = make("-n", "synth", f"OUT={tmp_path}")
    assert re.findall(r"cdk synth -c env=(\w+)", result.stdout) == list(ENVIRONMENTS)


def test_a_second_make_synth_skips_and_a_changed_source_redoes_it(tmp_path: Path) -> None:
    first = make("synth", "ENV=dev", f"OUT={tmp_path}")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == "synthesizing dev"
    assert (tmp_path / "dev" / "QueueWorker-dev-Worker.template.json").is_file()
    second = make("synth", "ENV=dev", f"OUT={tmp_path}")
    assert second.returncode == 0, second.stderr
    assert "synthesizing" not in second.stdout
    assert second.stdout.startswith(f"dev: {tmp_path}/dev/QueueWorker-dev-Queue.template.json")
    changed = make(
        "-n", "-W", "stacks/constructs/worker_service.py", "synth", "ENV=dev", f"OUT={tmp_path}"
    )
    assert "cdk synth -c env=dev" in changed.stdout


def test_make_synth_of_an_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    result = make("synth", "ENV=qa", f"OUT={tmp_path}")
    assert result.returncode == 2
    assert not (tmp_path / "qa").exists()  # stopped before synthesizing
    assert result.stderr.startswith(
        f"make synth: choose one environment: ENV=NAME, NAME one of: {' '.join(ENVIRONMENTS)}\n"
    )


@pytest.mark.parametrize(
    ("cdk_json", "problem"),
    [
        (
            '{"context": {"environments": {\n  "dev": {"region": "ap-northeast-1"},\n}}}\n',
            "cdk.json is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 3 column 1 (char 70)",
        ),
        ('{"context": {"environments": {}}}', "cdk.json names no environment"),
        (None, "cannot read cdk.json: No such file or directory"),
    ],
    ids=["trailing-comma", "no-environment", "missing"],
)
def test_a_cdk_json_make_cannot_read_is_one_line_naming_the_file_and_where(
    tmp_path: Path, cdk_json: str | None, problem: str
) -> None:
    """A trailing comma: one line with the JSON error's position, not a Python traceback and
    "choose one environment" with an empty list."""
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text())
    if cdk_json is not None:
        (tmp_path / "cdk.json").write_text(cdk_json)
    for goal in ("help", "synth ENV=dev"):
        result = subprocess.run(
            ["make", "--no-print-directory", *goal.split()],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2, goal
        assert result.stdout == "", goal
        assert re.fullmatch(
            rf"Makefile:\d+: \*\*\* {re.escape(problem)}.*\.  Stop\.\n", result.stderr
        )


def test_cdk_commands_do_not_wait_for_the_checkov_venv() -> None:
    """Only `make test` needs checkov's venv (minutes to install): the CDK commands do not."""
    for target in ("tools", "ls", "diff ENV=dev", "deploy ENV=dev", "synth ENV=dev ARGS=-v"):
        result = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "-n",
                "-W",
                "requirements-checkov.txt",
                *target.split(),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert ".venv-checkov" not in result.stdout, target


def test_make_deploy_needs_a_known_environment() -> None:
    for env in ("", "qa"):
        result = make("deploy", f"ENV={env}")
        assert result.returncode == 2
        assert "choose one environment: ENV=NAME, NAME one of: dev stg prod" in result.stderr
        assert "cdk deploy" not in result.stdout


def test_make_deploy_deploys_the_environments_queue_and_worker_stacks() -> None:
    result = make("-n", "deploy", "ENV=prod")
    (deploy,) = [line for line in result.stdout.splitlines() if line.startswith("node_modules")]
    app = App()
    stacks = add_environment(app, load_config(ENVIRONMENTS, "prod"))
    assert deploy.split("-o cdk.out/prod ")[1].split() == [s.stack_name for s in stacks]


def test_make_simulate_takes_synth_overrides_and_simulator_options_apart(tmp_path: Path) -> None:
    result = make(
        "-n",
        "simulate",
        "ENV=prod",
        f"OUT={tmp_path}",
        "ARGS=-c scaling.max_tasks=32",
        "SIM_ARGS=--batch 1000@07:30 --fail-on-miss",
    )
    assert result.returncode == 0, result.stderr
    (synth,) = [line for line in result.stdout.splitlines() if " synth " in line]
    assert f"synth -c env=prod -c scaling.max_tasks=32 -o {tmp_path}/prod" in synth
    (simulate,) = [line for line in result.stdout.splitlines() if "scripts simulate" in line]
    assert simulate.endswith(f"--cdk-out {tmp_path}/prod --batch 1000@07:30 --fail-on-miss")
    assert "--batch" not in synth


def test_make_plan_takes_its_options_in_plan_args_and_args_stay_cdks() -> None:
    """ARGS means cdk's options in every target; the planner's go in PLAN_ARGS."""
    options = "--messages 2000 --duration uniform:30:300"
    result = make("plan", "ENV=prod", f"PLAN_ARGS={options} --json")
    assert result.returncode == 0, result.stderr
    assert (
        json.loads(result.stdout)["max_total_processes_from"]
        == "prod's scaling.max_total_processes"
    )
    wrong = make("plan", f"ARGS={options}")
    assert wrong.returncode == 2
    assert "ARGS are cdk's -c overrides; give the planner's options in PLAN_ARGS" in wrong.stderr


def test_make_simulate_without_overrides_uses_the_cached_assembly(tmp_path: Path) -> None:
    result = make("-n", "simulate", "ENV=prod", f"OUT={tmp_path}", "SIM_ARGS=--json")
    lines = result.stdout.splitlines()
    assert [line for line in lines if "cdk synth -c env=prod -o" in line]  # the plain synth
    assert lines[-1].endswith(f"--cdk-out {tmp_path}/prod --json")


def test_make_bootstrap_runs_cdk_bootstrap_with_the_environments_own_arguments() -> None:
    """The qualifier, toolkit stack and execution policies come from the environment
    (stacks/execution_policy.py bootstrap_args, tested in tests/infra/test_ci_cd.py)."""
    result = make("-n", "bootstrap", "ENV=prod", "ACCOUNT=123456789012")
    assert result.returncode == 0, result.stderr
    assert (
        "-m stacks.execution_policy --bootstrap-args cdk.out/prod prod 123456789012"
        in result.stdout
    )
    (bootstrap,) = [line for line in result.stdout.splitlines() if "cdk bootstrap -c" in line]
    assert bootstrap.strip() == "node_modules/.bin/cdk bootstrap -c env=prod -o cdk.out/prod $args"


def test_make_bootstrap_passes_args_to_cdk_bootstrap() -> None:
    """``ARGS=--force``: once, over a bootstrap stack of CDK's own template, which the CLI
    otherwise leaves as it is (docs/ci-cd.md)."""
    result = make("-n", "bootstrap", "ENV=prod", "ACCOUNT=123456789012", "ARGS=--force")
    assert result.returncode == 0, result.stderr
    (bootstrap,) = [line for line in result.stdout.splitlines() if "cdk bootstrap -c" in line]
    assert bootstrap.strip().endswith("-o cdk.out/prod $args --force")


def printed_make_simulate_lines() -> list[tuple[str, str]]:
    """(where, command) of the `make simulate` example `make help` prints (the README's and
    the docs' run in tests/integration/test_docs_run.py)."""
    (help_line,) = re.findall(r"^## simulate: .*$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    return [("make help", help_line[help_line.index("make simulate") :])]


@pytest.mark.parametrize(
    ("where", "command"), printed_make_simulate_lines(), ids=lambda value: str(value)[:40]
)
def test_the_printed_make_simulate_commands_work_as_printed(
    tmp_path: Path, where: str, command: str
) -> None:
    """Run as printed (synth overrides, validation, the simulated day and its verdict); only
    the assembly and the chart are written under tmp_path."""
    words = shlex.split(command, comments=True)
    assert words[:2] == ["make", "simulate"], where
    words = [
        re.sub(r"--chart (\S+)", lambda m: f"--chart {tmp_path / m[1]}", word) for word in words[2:]
    ]
    result = make("simulate", *words, f"OUT={tmp_path}")
    assert result.returncode == 0, f"{where}: {command}\n{result.stdout}{result.stderr}"
    assert re.search(r"^  deadline .*: met$", result.stdout, re.MULTILINE), result.stdout
