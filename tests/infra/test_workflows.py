"""The team's GitHub Actions workflows: linted (actionlint + ShellCheck), running the README's
test command, covering every environment of cdk.json, least privilege, pinned actions kept
current by Dependabot, concurrency per environment, cached dependencies, a diff beside the
tests, one comment only the kit's workflow edits, a manual redeploy."""

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
    for name in ("pull-request.yml", "deploy.yml"):
        assert workflow(name)["jobs"]["test"]["uses"] == "./.github/workflows/test.yml"
    assert workflow("deploy.yml")["jobs"]["dev"]["needs"] == "test"
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
        "redeploy.deploy": oidc,
    }


def test_deploys_of_one_environment_never_overlap() -> None:
    (job,) = workflow("deploy-environment.yml")["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["concurrency"] == {
        "group": "deploy-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }
    # No workflow-wide group: a prod deploy waiting for its reviewers holds only prod's group,
    # and the next push's dev and stg deploy meanwhile.
    for path in WORKFLOWS.glob("*.yml"):
        if path.name != "pull-request.yml":
            assert "concurrency" not in workflow(path.name), path.name


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


def setup_steps() -> list[tuple[str, list[dict[str, Any]]]]:
    """(workflow.job, steps) of every job that sets up the kit (make tools or make test)."""
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in workflow(path.name)["jobs"].items():
            steps = job.get("steps", [])
            if any(step.get("run", "").startswith(("make tools", "make test")) for step in steps):
                found.append((f"{path.stem}.{name}", steps))
    return found


def test_every_job_that_sets_up_the_kit_caches_pip_and_npm() -> None:
    jobs = setup_steps()
    assert {name for name, _ in jobs} == {
        "test.test",
        "pull-request.diff",
        "deploy-environment.deploy",
    }
    for name, steps in jobs:
        (python,) = [s for s in steps if "actions/setup-python@" in s.get("uses", "")]
        assert python["with"]["cache"] == "pip", name
        # The test job also builds checkov's venv (make setup): its pins key the cache too.
        expected = ["pyproject.toml"] + (
            ["requirements-checkov.txt"] if name == "test.test" else []
        )
        assert python["with"]["cache-dependency-path"].split() == expected, name
        (npm,) = [s for s in steps if "actions/cache@" in s.get("uses", "")]
        assert npm["with"]["path"] == "~/.npm", name
        assert "hashFiles('package-lock.json')" in npm["with"]["key"], name
        setup = next(i for i, s in enumerate(steps) if s.get("run", "").startswith("make"))
        assert steps.index(npm) < setup, name


def test_the_diff_does_not_wait_for_the_whole_suite() -> None:
    jobs = workflow("pull-request.yml")["jobs"]
    assert "needs" not in jobs["diff"]
    assert jobs["comment"]["needs"] == "diff"


def test_only_the_kits_own_comment_is_edited() -> None:
    (step,) = [
        s
        for s in workflow("pull-request.yml")["jobs"]["comment"]["steps"]
        if "run" in s and "comment.md" in s["run"]
    ]
    marker = step["env"]["MARKER"]
    assert re.fullmatch(r"<!-- queue-worker-kit:[\w-]+ -->", marker)
    script = step["run"]
    assert script.splitlines()[1].strip() == 'echo "$MARKER"'  # the body starts with it
    assert '.user.login == "github-actions[bot]"' in script
    assert "startswith($ENV.MARKER)" in script
    assert "--edit-last" not in script  # would edit the bot's last comment, whoever wrote it


def test_an_environment_can_be_redeployed_by_hand() -> None:
    w = workflow("redeploy.yml")
    (dispatch,) = triggers(w).values()
    assert list(triggers(w)) == ["workflow_dispatch"]
    choice = dispatch["inputs"]["environment"]
    assert (choice["type"], choice["required"], choice["options"]) == (
        "choice",
        True,
        list(ENVIRONMENTS),
    )
    (job,) = w["jobs"].values()
    assert job["uses"] == DEPLOY_ONE
    assert job["with"] == {"environment": "${{ inputs.environment }}"}


def test_dependabot_keeps_the_pinned_actions_current() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert {"github-actions", "pip", "npm"} <= set(ecosystems)
    assert ecosystems["github-actions"]["directory"] == "/"
    assert ecosystems["github-actions"]["schedule"]["interval"] in ("daily", "weekly")
