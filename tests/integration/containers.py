"""Container engine helpers of the image tests (the kit's image and a PHP application's).

The engine: Docker when a Docker engine answers (the Dockerfile's default base image), else
podman from the sandbox's setup script `../shared/container/setup.sh` beside the repository
(installs podman, builds localhost/kit-base:bookworm and, given `trixie`, :trixie too;
idempotent; KIT_CONTAINER_SETUP names another script). If no engine can be set up, the image
tests fail: they never skip.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from scripts.devtools.measure_image import ecs_run_options
from stacks.constructs.worker_service import IMAGE_USER
from tests.integration.fleet import ROOT, Fleet

SETUP = Path(
    os.environ.get("KIT_CONTAINER_SETUP", str(ROOT.parent / "shared" / "container" / "setup.sh"))
)
BASE = "localhost/kit-base:bookworm"
# Debian trixie (PHP 8.4, Laravel 10, Symfony 6.4 in its archive): the PHP application images.
TRIXIE = "localhost/kit-base:trixie"


def as_ecs(engine: str) -> tuple[str, ...]:
    """`run` options that start a container as the task definition does (the kit's user, a
    read-only root), as `queue-worker measure` runs a team's image."""
    return ecs_run_options(engine, IMAGE_USER)


def run(*args: str, timeout: float = 600) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_container(
    engine: str,
    image: str,
    workdir: Path,
    endpoint: str,
    env: dict[str, str],
    options: tuple[str, ...] = (),
) -> tuple[Fleet, str]:
    """Run `image` on the host network (to reach moto on loopback) with `env`, fake AWS
    credentials and further `engine run` options; its log lines are collected like a fleet's.
    Returns the fleet and the container's name."""
    name = f"kit-test-{uuid.uuid4().hex[:8]}"
    command = [engine, "run", "--rm", "--name", name, "--network", "host", *options]
    full = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": os.environ["AWS_REGION"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **env,
    }
    for key, value in full.items():
        command += ["--env", f"{key}={value}"]
    return Fleet(workdir, endpoint, {}, [*command, image]).start(), name


def remove_container(engine: str, name: str) -> None:
    subprocess.run([engine, "rm", "--force", name], capture_output=True, check=False)
