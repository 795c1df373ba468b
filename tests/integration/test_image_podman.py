"""The real worker image: linted, built with a container engine, run against moto.

The engine (fixture `engine`, tests/integration/conftest.py): Docker when a Docker engine
answers, else podman from the sandbox's setup script (tests/integration/containers.py). If no
engine can be set up, these tests fail: they never skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stacks.constructs.worker_service import HEALTH_CHECK
from tests.integration.containers import BASE, as_ecs, run
from tests.integration.fleet import ROOT, WORKER_IMAGE, Fleet, queue_depth
from tests.integration.test_faults_injection import dead_letters

IMAGE = "localhost/queue-worker:test"
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"

# One xdist worker runs every container test (`--dist loadgroup`): one setup, one build.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("container")]


@pytest.fixture(scope="session")
def image(engine: str) -> str:
    """The image built from worker_image/ (podman: on the local bookworm base)."""
    base = [] if engine == "docker" else ["--build-arg", f"BASE_IMAGE={BASE}"]
    run(engine, "build", "--network", "host", *base, "--tag", IMAGE, str(WORKER_IMAGE))
    return IMAGE


def test_the_dockerfile_is_hadolint_clean() -> None:
    run(str(HADOLINT), "--failure-threshold", "info", str(WORKER_IMAGE / "Dockerfile"))


def test_the_image_runs_as_a_fixed_non_root_user_and_ships_only_the_runtime(
    engine: str, image: str
) -> None:
    assert run(engine, "image", "inspect", "--format", "{{.Config.User}}", image).strip() == (
        "10001:10001"
    )
    script = (
        "import importlib.metadata as m, os, json;"
        "names = sorted(d.metadata['Name'].lower() for d in m.distributions());"
        "print(json.dumps([os.getuid(), names, sorted(os.listdir('/app'))]))"
    )
    uid, installed, app = json.loads(
        run(engine, "run", "--rm", "--entrypoint", "/opt/venv/bin/python", image, "-c", script)
    )
    assert uid == 10001
    required = [
        line.split("==")[0].lower()
        for line in (WORKER_IMAGE / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert installed == sorted(required)  # no pip, no setuptools, no test tools
    assert app == ["supervisord.conf", "worker"]


def test_the_image_consumes_real_messages(
    engine: str,
    image: str,
    moto_endpoint: str,
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    tmp_path: Path,
) -> None:
    pair = make_queue_pair(max_receive_count=2)
    send = sqs_client.send_message
    good = [
        send(QueueUrl=pair.url, MessageBody='{"duration_seconds": 0.3}')["MessageId"]
        for _ in range(12)
    ]
    poison = [
        send(QueueUrl=pair.url, MessageBody='{"duration_seconds": 0.1, "fail": true}')["MessageId"]
        for _ in range(2)
    ]
    malformed = send(QueueUrl=pair.url, MessageBody="<xml/>")["MessageId"]
    name = f"worker-test-{uuid.uuid4().hex[:8]}"
    env = {
        "QUEUE_URL": pair.url,
        "DEAD_LETTER_QUEUE_URL": pair.dlq_url,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": os.environ["AWS_REGION"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "WORKER_PROCESSES": "3",
        "RECEIVE_WAIT_SECONDS": "1",
        "RETRY_BACKOFF_BASE_SECONDS": "0",
        "SUPERVISOR_STOPWAITSECS": "20",
        "WORKER_STOP_GRACE_SECONDS": "10",
    }
    command = [engine, "run", "--rm", "--name", name, "--network", "host", *as_ecs(engine)]
    for key, value in env.items():
        command += ["--env", f"{key}={value}"]
    fleet = Fleet(tmp_path, moto_endpoint, {}, [*command, image]).start()
    try:
        fleet.wait_for(lambda: len(fleet.jobs("done")) == 12, timeout=120)
        fleet.wait_for(lambda: queue_depth(sqs_client, pair.url) == 0, timeout=60)
        # The task definition's health check command, in the running container.
        assert run(engine, "exec", name, "sh", "-c", HEALTH_CHECK).strip() == "healthy"
        run(engine, "stop", "--time", "30", name)
        assert fleet.wait(timeout=60) == 0
    finally:
        subprocess.run([engine, "rm", "--force", name], capture_output=True, check=False)
        fleet.kill()
    done = [j["message_id"] for j in fleet.jobs("done")]
    assert sorted(done) == sorted(good)  # every good message exactly once
    assert dead_letters(sqs_client, pair.dlq_url) == {*poison, malformed}  # zero lost
    assert {j["process"] for j in fleet.jobs()} <= {"worker_00", "worker_01", "worker_02"}
    assert {e["reason"] for e in fleet.events("worker_stopped")} == {"sigterm"}
