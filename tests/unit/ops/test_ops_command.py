"""`queue-worker VERB` from any directory: the installed entry point, and the project it reads
(--project, $QUEUE_WORKER_PROJECT, else found from the current directory upward, else the
checkout it is installed from)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import scripts.__main__
from scripts import _cli

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def run(command: list[str], cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`command` in `cwd`, without PYTHONPATH nor $QUEUE_WORKER_PROJECT unless given."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", _cli.PROJECT_VARIABLE)}
    return subprocess.run(
        command, cwd=cwd, env={**env, **variables}, capture_output=True, text=True, timeout=120
    )


def queue_worker(*args: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`python -m scripts ARGS`, the same command as the installed `queue-worker`, importing the
    scripts from this checkout (as the editable install does), not from `cwd`."""
    return run([sys.executable, "-m", "scripts", *args], cwd, PYTHONPATH=str(ROOT), **variables)


def cdk_json_read(done: subprocess.CompletedProcess[str]) -> Path:
    """The cdk.json a command read, from its one error line about the environment 'nope'."""
    assert done.returncode == 1, done.stderr
    found = re.fullmatch(
        r"error: unknown environment 'nope' \(environments in (.+): dev, prod, stg\)\n", done.stderr
    )
    assert found, done.stderr
    return Path(found[1])


def project_copy(directory: Path) -> Path:
    """A project elsewhere: this checkout's cdk.json in `directory`, with a subdirectory."""
    (directory / "sub" / "deeper").mkdir(parents=True)
    (directory / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    return directory


def test_the_entry_point_is_the_commands_main() -> None:
    (target,) = PYPROJECT["project"]["scripts"].values()
    assert PYPROJECT["project"]["scripts"] == {"queue-worker": target}
    entry = EntryPoint(name="queue-worker", value=target, group="console_scripts")
    assert entry.load() is scripts.__main__.main


def test_the_install_maps_every_package_the_command_imports() -> None:
    """The editable install maps exactly these packages; the command needs all of them."""
    packages = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("scripts", "stacks")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == packages


def test_help_from_outside_the_checkout(tmp_path: Path) -> None:
    done = queue_worker("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m scripts [-h] [--project DIR] VERB ...")
    assert "queue-worker status --env prod" in done.stdout


def test_outside_any_project_the_installed_checkout_is_read(tmp_path: Path) -> None:
    assert cdk_json_read(queue_worker("status", "--env", "nope", cwd=tmp_path)) == ROOT / "cdk.json"


def test_the_project_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    project = project_copy(tmp_path / "ours")
    done = queue_worker("status", "--env", "nope", cwd=project / "sub" / "deeper")
    assert cdk_json_read(done) == project / "cdk.json"


def test_a_cdk_json_without_environments_is_not_the_project(tmp_path: Path) -> None:
    """Another CDK app's cdk.json inside the project is passed over."""
    project = project_copy(tmp_path / "ours")
    (project / "sub" / "cdk.json").write_text(json.dumps({"app": "npx ts-node bin/app.ts"}))
    done = queue_worker("status", "--env", "nope", cwd=project / "sub" / "deeper")
    assert cdk_json_read(done) == project / "cdk.json"


@pytest.mark.parametrize(
    ("args", "variables"),
    [
        (["--project", "ours", "status"], {}),
        (["status", "--project", "ours"], {}),
        (["status"], {"QUEUE_WORKER_PROJECT": "ours"}),
    ],
    ids=["option before the verb", "option after it", "variable"],
)
def test_the_project_named(tmp_path: Path, args: list[str], variables: dict[str, str]) -> None:
    project = project_copy(tmp_path / "ours")
    done = queue_worker(*args, "--env", "nope", cwd=tmp_path, **variables)
    assert cdk_json_read(done) == project / "cdk.json"


def test_simulate_reads_the_projects_cdk_out(tmp_path: Path) -> None:
    project = project_copy(tmp_path / "ours")
    done = queue_worker("--project", "ours", "simulate", "--env", "prod", cwd=tmp_path)
    assert f"no synthesized templates in {project / 'cdk.out' / 'prod'}: " in done.stderr


@pytest.mark.parametrize(
    ("option", "variables", "source"),
    [
        (["--project", "empty"], {}, "--project"),
        ([], {"QUEUE_WORKER_PROJECT": "empty"}, "$QUEUE_WORKER_PROJECT"),
    ],
    ids=["option", "variable"],
)
def test_a_wrong_project_is_one_line_and_exit_2(
    tmp_path: Path, option: list[str], variables: dict[str, str], source: str
) -> None:
    (tmp_path / "empty").mkdir()
    done = queue_worker(*option, "status", "--env", "prod", cwd=tmp_path, **variables)
    assert done.returncode == 2
    assert done.stderr == (
        f"python -m scripts status: error: {source}: empty is not a queue-worker project "
        "(no cdk.json with context.environments there) (see --help)\n"
    )


def test_module_commands_take_the_project_too(tmp_path: Path) -> None:
    """`python -m scripts.MODULE` (the Makefile's and the benchmarks' form) reads it alike."""
    project = project_copy(tmp_path / "ours")
    plan = [
        sys.executable,
        "-m",
        "scripts.capacity.plan",
        "--messages",
        "10",
        "--duration",
        "fixed:5",
    ]
    done = run([*plan, "--env", "nope", "--project", str(project)], tmp_path, PYTHONPATH=str(ROOT))
    assert cdk_json_read(done) == project / "cdk.json"


def test_the_installed_command_runs_from_anywhere(tmp_path: Path) -> None:
    """`.venv/bin/queue-worker`, as `make setup` installs it, from outside the checkout."""
    installed = Path(sys.executable).parent / "queue-worker"
    assert installed.exists(), f"{installed} is not installed: run make setup"
    project = project_copy(tmp_path / "ours")
    done = run([str(installed), "status", "--env", "nope"], project / "sub")
    assert cdk_json_read(done) == project / "cdk.json"
    assert run([str(installed), "plan", "--help"], tmp_path).stdout.startswith(
        "usage: queue-worker plan "
    )


def test_find_project_prefers_the_option_then_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = project_copy(tmp_path / "first"), project_copy(tmp_path / "second")
    monkeypatch.chdir(second / "sub")
    monkeypatch.delenv(_cli.PROJECT_VARIABLE, raising=False)
    assert _cli.find_project() == second
    monkeypatch.setenv(_cli.PROJECT_VARIABLE, str(first))
    assert _cli.find_project() == first
    assert _cli.find_project(second) == second
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(_cli.PROJECT_VARIABLE)
    assert _cli.find_project() == _cli.INSTALLED_CHECKOUT == ROOT
