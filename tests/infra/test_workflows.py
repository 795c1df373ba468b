"""The team's GitHub Actions workflows: linted (actionlint + ShellCheck), running the README's
test command, covering every environment of cdk.json, least privilege, pinned actions."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import ENVIRONMENTS, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
DEPLOY_ONE = "./.github/workflows/deploy-environment.yml"


def workflow(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def triggers(w: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads the key ``on`` as True."""
    return dict(w.get("on") or w[True])


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "actionlint"),
            "-no-color",
            f"-shellcheck={BIN / 'shellcheck'}",
            "-pyflakes=",
            *map(str, paths),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def readme_test_command() -> str:
    """The command after `make run` in the README's two-commands block."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    (line,) = [line for line in block.splitlines() if "# lint, type-check" in line]
    return line.split("#", 1)[0].strip()


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {"test.yml", "pull-request.yml", "deploy.yml", "deploy-environment.yml"} <= {
        f.name for f in files
    }
    result = actionlint(*files)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        '      - run: echo "${{ github.event.head_commit.message }}" $UNQUOTED\n'
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout
    assert "SC2086" in result.stdout  # ShellCheck runs on run: scripts


def test_the_test_job_runs_exactly_the_readmes_test_command() -> None:
    command = readme_test_command()
    assert command == "make test"
    (job,) = workflow("test.yml")["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs == [command]
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_pull_requests_and_pushes_to_main_run_the_tests_first() -> None:
    for name, first_needed_by in (("pull-request.yml", "diff"), ("deploy.yml", "dev")):
        jobs = workflow(name)["jobs"]
        assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
        assert jobs[first_needed_by]["needs"] == "test"
    assert triggers(workflow("pull-request.yml")) == {"pull_request": {"branches": ["main"]}}
    assert triggers(workflow("deploy.yml")) == {"push": {"branches": ["main"]}}


def test_every_environment_is_deployed_in_cdk_json_order() -> None:
    jobs = workflow("deploy.yml")["jobs"]
    deploys = {name: job for name, job in jobs.items() if job.get("uses") == DEPLOY_ONE}
    assert [job["with"]["environment"] for job in deploys.values()] == list(ENVIRONMENTS)
    order = list(deploys)
    for before, after in itertools.pairwise(order):
        assert deploys[after]["needs"] == before


def test_every_environment_is_diffed_on_pull_requests() -> None:
    diff = workflow("pull-request.yml")["jobs"]["diff"]
    assert diff["strategy"]["matrix"]["environment"] == list(ENVIRONMENTS)
    assert diff["strategy"]["fail-fast"] is False


def test_workflows_read_only_the_repository_by_default() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        w = workflow(path.name)
        assert w["permissions"] == (
            {"contents": "read", "id-token": "write"}
            if path.name == "deploy-environment.yml"
            else {"contents": "read"}
        ), path.name


def test_only_aws_jobs_get_an_oidc_token_and_only_the_comment_job_writes() -> None:
    granted: dict[str, dict[str, str]] = {}
    for path in WORKFLOWS.glob("*.yml"):
        for name, job in workflow(path.name)["jobs"].items():
            if "permissions" in job:
                granted[f"{path.stem}.{name}"] = job["permissions"]
    oidc = {"contents": "read", "id-token": "write"}
    assert granted == {
        "pull-request.diff": oidc,
        "pull-request.comment": {"contents": "read", "pull-requests": "write"},
        "deploy.dev": oidc,
        "deploy.stg": oidc,
        "deploy.prod": oidc,
    }


def test_deploys_of_one_environment_never_overlap() -> None:
    (job,) = workflow("deploy-environment.yml")["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["concurrency"] == {
        "group": "deploy-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }
    assert workflow("deploy.yml")["concurrency"]["cancel-in-progress"] is False


def test_credentials_are_short_lived_and_come_from_the_environments_role() -> None:
    (job,) = workflow("deploy-environment.yml")["jobs"].values()
    (aws,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert aws["with"]["role-duration-seconds"] <= 3600
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws["with"])
    assert [s["run"] for s in job["steps"] if "make deploy" in s.get("run", "")] == [
        'make deploy ENV="$ENVIRONMENT" ARGS="--require-approval never"'
    ]


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_actions_are_pinned_to_a_full_commit_with_its_version(path: Path) -> None:
    uses = re.findall(r"uses: (\S+)(.*)", path.read_text())
    for action, comment in uses:
        if action.startswith("./"):
            continue
        assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), (action, comment)
