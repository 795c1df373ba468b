"""A PHP team's own image with the kit brought in the documented way, run against moto.

The image (tests/integration/php_app/Dockerfile): Debian's php-cli on the local bookworm base,
python3 purged as in the official php:*-cli images, a tiny PHP job (job.php) and the Laravel and
Symfony test applications of tests/php (framework doubles: tests/php/fakes/README.md), then the
kit's stage from docs/frameworks.md (`COPY --from=queue-worker-kit` + install.sh, the runners
of worker_image/recipes), built with `--build-context queue-worker-kit=worker_image`. Built once
per session. Every run is at the production shape (WORKER_PROCESSES=8, command mode); only the
SQS timings (long poll 1 s, backoff base 0) are shortened so the test stays fast.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.containers import (
    BASE,
    as_ecs,
    remove_container,
    run,
    start_container,
)
from tests.integration.fleet import ROOT, WORKER_IMAGE, Fleet, queue_depth
from tests.sqs_helpers import drain

PHP_APP = Path(__file__).resolve().parent / "php_app"
PHP_TESTS = ROOT / "tests" / "php"  # the Laravel and Symfony test applications (doubles)
IMAGE = "localhost/php-runtime-app:test"
PROCESSES = "8"
REASON = "RuntimeException: payment API said no"

# One xdist worker runs every container test (`--dist loadgroup`): one setup, one build.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("container")]


@pytest.fixture(scope="session")
def php_image(engine: str) -> str:
    """The PHP application image with the kit's stage, built once."""
    base = [] if engine == "docker" else ["--build-arg", f"BASE_IMAGE={BASE}"]
    run(
        engine, "build", "--network", "host", *base,
        "--build-context", f"queue-worker-kit={WORKER_IMAGE}",
        "--build-context", f"php-tests={PHP_TESTS}",
        "--target", "worker", "--tag", IMAGE,
        "--file", str(PHP_APP / "Dockerfile"), str(PHP_APP),
    )  # fmt: skip
    return IMAGE


@pytest.fixture
def php_fleet(
    engine: str, php_image: str, moto_endpoint: str, tmp_path: Path
) -> Iterator[Callable[..., Fleet]]:
    """Factory: the PHP image running in command mode with 8 processes (+ env overrides)."""
    names: list[str] = []

    def start(*options: str, **env: str) -> Fleet:
        settings = {
            "WORKER_PROCESSES": PROCESSES,
            "WORKER_HANDLER_MODE": "command",
            "WORKER_HANDLER": "php job.php",  # relative: commands run in the image's WORKDIR
            "JOB_MAX_TRIES": "3",  # job.php: exit 65 (to the DLQ) from receive 3 on
            "RECEIVE_WAIT_SECONDS": "1",
            "RETRY_BACKOFF_BASE_SECONDS": "0",
            "SUPERVISOR_STOPWAITSECS": "20",
            "WORKER_STOP_GRACE_SECONDS": "10",
            **env,
        }
        workdir = tmp_path / f"container-{len(names)}"
        workdir.mkdir()
        # As the task definition runs a team's image: the kit's user, a read-only root, /tmp.
        run_options = (*as_ecs(engine), *options)
        fleet, name = start_container(
            engine, php_image, workdir, moto_endpoint, settings, run_options
        )
        names.append(name)
        return fleet

    yield start
    for name in names:
        remove_container(engine, name)


def send(sqs: Any, url: str, count: int = 1, **job: Any) -> list[str]:
    body = json.dumps(job)
    return [sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"] for _ in range(count)]


def test_the_kit_is_installed_into_the_teams_image_as_documented(
    engine: str, php_image: str
) -> None:
    user = run(engine, "image", "inspect", "--format", "{{.Config.User}}", php_image).strip()
    assert user == "www-data"
    volumes = run(engine, "image", "inspect", "--format", "{{json .Config.Volumes}}", php_image)
    assert "/tmp" in json.loads(volumes)  # ECS's /tmp volume copies its mode from it
    script = (
        "import importlib.metadata as m, json, sys;"
        "print(json.dumps([sys.prefix, sorted(d.metadata['Name'].lower()"
        " for d in m.distributions())]))"
    )
    prefix, installed = json.loads(
        run(
            engine,
            "run",
            "--rm",
            "--entrypoint",
            "/opt/queue-worker-kit/venv/bin/python",
            php_image,
            "-c",
            script,
        )
    )
    assert prefix == "/opt/queue-worker-kit/venv"
    assert "pip" not in installed and {"boto3", "supervisor"} <= set(installed)
    version = run(engine, "run", "--rm", "--entrypoint", "php", php_image, "-r", "echo PHP_OS;")
    assert version == "Linux"


def test_install_sh_runs_again_and_says_what_to_do_without_python_or_apt(
    engine: str, php_image: str
) -> None:
    as_root = [engine, "run", "--rm", "--network", "host", "--user", "root", "--entrypoint", "sh"]
    again = run(
        *as_root, php_image, "-c",
        "sh /tmp/queue-worker-kit/install.sh"
        " && /opt/queue-worker-kit/venv/bin/python -c 'import worker.app; print(\"imports\")'",
    )  # fmt: skip
    assert again.splitlines()[-1] == "imports"  # idempotent: a second run rebuilds the same
    # Neither python3 nor apt-get on PATH (as on a distribution the script does not know):
    bare = subprocess.run(
        [
            *as_root, php_image, "-c",
            "mkdir /tmp/bin && ln -s /usr/bin/id /usr/bin/dirname /tmp/bin/"
            " && PATH=/tmp/bin /bin/sh /tmp/queue-worker-kit/install.sh",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bare.returncode == 1
    assert "needs python3 >= 3.11 with its venv module" in bare.stderr
    assert "Alpine is not supported" in bare.stderr


def test_php_jobs_run_once_and_a_throwing_job_reaches_the_dlq_with_its_reason(
    php_fleet: Callable[..., Fleet], make_queue_pair: Callable[..., Any], sqs_client: Any
) -> None:
    pair = make_queue_pair(max_receive_count=5)
    good = send(sqs_client, pair.url, 32, action="ok", seconds=0.3)
    [bad] = send(sqs_client, pair.url, action="throw")
    fleet = php_fleet(QUEUE_URL=pair.url, DEAD_LETTER_QUEUE_URL=pair.dlq_url)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 32 and fleet.jobs("dead_letter"), 180)
    fleet.wait_for(lambda: queue_depth(sqs_client, pair.url) == 0, 30)
    assert fleet.stop(60) == 0
    assert sorted(j["message_id"] for j in fleet.jobs("done")) == sorted(good)  # once each
    failures = [
        (j["outcome"], j["receive_count"], j["error"])
        for j in fleet.jobs()
        if j["message_id"] == bad
    ]
    assert failures == [("retry", 1, REASON), ("retry", 2, REASON), ("dead_letter", 3, REASON)]
    [dead] = drain(sqs_client, pair.dlq_url)
    attributes = dead["MessageAttributes"]
    assert attributes["worker_failure_reason"]["StringValue"] == REASON
    assert attributes["worker_source_message_id"]["StringValue"] == bad
    # PHP's output is in the log, tagged with the process and the message it belongs to.
    output = fleet.events("job_output")  # one a burst: a burst may hold several lines
    lines = [(e["message_id"], e["stream"], line) for e in output for line in e["line"].split("\n")]
    assert {(stream, line) for message, stream, line in lines if message == bad} >= {
        ("stdout", f"started {bad}"),
        ("stderr", f"job failed: {REASON}"),
    }
    processed = {(message, line) for message, _, line in lines if line.startswith("processed ")}
    assert processed == {(i, f"processed {i}") for i in good}
    assert all(e["process"].startswith("worker_0") for e in output)
    assert len({j["process"] for j in fleet.jobs()}) >= 4  # the slots shared the work
    assert all(j["max_rss_mib"] > 0 for j in fleet.jobs("done") if j["duration_seconds"] > 1)


def test_a_leaking_php_job_is_stopped_by_memory_while_the_other_slots_go_on(
    php_fleet: Callable[..., Fleet], make_queue_pair: Callable[..., Any], sqs_client: Any
) -> None:
    pair = make_queue_pair(max_receive_count=5)
    [leak] = send(sqs_client, pair.url, action="leak_on_first", mib=16)
    others = send(sqs_client, pair.url, 21, action="ok", seconds=2)
    fleet = php_fleet(
        QUEUE_URL=pair.url, DEAD_LETTER_QUEUE_URL=pair.dlq_url, MAX_MEMORY_MIB_PER_PROCESS="128"
    )
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 22, 180)
    assert fleet.stop(60) == 0
    leaks = [j for j in fleet.jobs() if j["message_id"] == leak]
    assert [(j["outcome"], j["receive_count"]) for j in leaks] == [
        ("memory_exceeded", 1),
        ("done", 2),  # retried: the second run does not leak
    ]
    stopped = leaks[0]
    assert "above MAX_MEMORY_MIB_PER_PROCESS=128" in stopped["error"]
    assert stopped["max_rss_mib"] > 128
    assert sorted(j["message_id"] for j in fleet.jobs("done")) == sorted([leak, *others])
    # Only the leaking slot's loop was recycled; the other seven went on.
    recycled = {e["process"] for e in fleet.events("worker_stopped") if e["reason"] != "sigterm"}
    assert recycled <= {stopped["process"]}
    assert queue_depth(sqs_client, pair.url) == 0


def test_sigterm_mid_php_job_hands_the_message_back_at_once(
    php_fleet: Callable[..., Fleet], make_queue_pair: Callable[..., Any], sqs_client: Any
) -> None:
    pair = make_queue_pair(visibility_timeout=60)
    [long_job] = send(sqs_client, pair.url, action="sleep", seconds=120)
    fleet = php_fleet(
        QUEUE_URL=pair.url, VISIBILITY_TIMEOUT_SECONDS="60", WORKER_STOP_GRACE_SECONDS="1"
    )
    fleet.wait_for(lambda: any(e["event"] == "job_output" for e in fleet.events()), 120)
    stopped_at = time.monotonic()
    assert fleet.stop(60) == 0
    assert [j["outcome"] for j in fleet.jobs()] == ["handed_back"]
    got = sqs_client.receive_message(
        QueueUrl=pair.url, WaitTimeSeconds=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert time.monotonic() - stopped_at < 20  # not after the 60-s visibility
    assert [m["MessageId"] for m in got] == [long_job]
    assert got[0]["Attributes"]["ApproximateReceiveCount"] == "2"  # one by the worker, one here


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        ("/usr/bin/php7.4 /app/job.php", "not an executable file"),
        ("php bin/queue-worker/run-jobs.php", "which is not a file"),  # a typo of run-job.php
    ],
    ids=["php-binary", "runner-script"],
)
def test_a_missing_php_binary_or_script_makes_the_container_exit(
    handler: str,
    error: str,
    php_fleet: Callable[..., Fleet],
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
) -> None:
    pair = make_queue_pair()
    [waiting] = send(sqs_client, pair.url)
    started = time.monotonic()
    fleet = php_fleet(QUEUE_URL=pair.url, WORKER_HANDLER=handler)
    assert fleet.wait(120) == 1  # every process exits 78; supervisord FATAL -> exit 1
    assert time.monotonic() - started < 90
    log = fleet.log_path.read_text()
    assert f"WORKER_HANDLER={handler!r}" in log
    assert error in log
    assert fleet.events("process_fatal")
    got = sqs_client.receive_message(QueueUrl=pair.url, AttributeNames=["All"])["Messages"]
    assert [(m["MessageId"], m["Attributes"]["ApproximateReceiveCount"]) for m in got] == [
        (waiting, "1")  # this receive: the fleet spent none of the message's receives
    ]


def php_lines(engine: str, image: str, script: str) -> list[str]:
    """The lines a shell script prints when run with the image's php (payload makers)."""
    out = run(engine, "run", "--rm", "--entrypoint", "sh", image, "-c", script)
    return [line for line in out.splitlines() if line.strip()]


def handled(out: Path) -> list[dict[str, Any]]:
    """What the test applications' handlers recorded ($TEST_OUTPUT_DIR/record.jsonl)."""
    lines = (out / "record.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "handled"]


def shared_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # written by www-data in the container
    return out


def test_laravel_payloads_run_through_the_laravel_runner_once_each(
    engine: str,
    php_image: str,
    php_fleet: Callable[..., Fleet],
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    tmp_path: Path,
) -> None:
    notes = [f"note-{n}" for n in range(16)]
    payloads = php_lines(
        engine,
        php_image,
        "cd /srv/php-tests/laravel-app && for n in "
        + " ".join(notes)
        + " ; do php make-payload.php 'App\\Jobs\\RecordJob' $n; echo; done",
    )
    pair = make_queue_pair(max_receive_count=5)
    ids = [sqs_client.send_message(QueueUrl=pair.url, MessageBody=p)["MessageId"] for p in payloads]
    out = shared_dir(tmp_path)
    fleet = php_fleet(
        "--volume",
        f"{out}:/out",
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_HANDLER="php /app/bin/queue-worker/run-job.php",
        LARAVEL_BASE_PATH="/srv/php-tests/laravel-app",
        TEST_OUTPUT_DIR="/out",
    )
    fleet.wait_for(lambda: len(fleet.jobs()) == len(ids), 180)
    assert fleet.stop(60) == 0
    assert sorted(j["message_id"] for j in fleet.jobs("done")) == sorted(ids)
    jobs = handled(out)
    assert sorted(r["note"] for r in jobs) == sorted(notes)  # each handled exactly once
    assert {(r["job"], r["attempts"]) for r in jobs} == {("App\\Jobs\\RecordJob", 1)}
    assert queue_depth(sqs_client, pair.url) == 0


@pytest.mark.parametrize(
    ("serializer", "service"),
    [
        ("json", "app.json_serializer"),  # type and headers travel as message attributes
        ("php", ""),  # the default: Messenger's native PHP serializer, built by the runner
    ],
)
def test_symfony_messages_of_either_serializer_run_once_each(
    serializer: str,
    service: str,
    engine: str,
    php_image: str,
    php_fleet: Callable[..., Fleet],
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    tmp_path: Path,
) -> None:
    texts = [f"ping-{n}" for n in range(16)]
    made = php_lines(
        engine,
        php_image,
        "cd /srv/php-tests/symfony-app && for n in "
        + " ".join(texts)
        + f" ; do php make-message.php {serializer} 'App\\Message\\Ping' $n; echo; done",
    )
    pair = make_queue_pair(max_receive_count=5)
    ids = []
    for message in map(json.loads, made):
        if serializer == "json":
            assert "type" in message["attributes"]  # the JSON serializer's type is one
        else:
            assert "O:36:" in message["body"]  # a serialized Envelope, nothing in attributes
        sent = sqs_client.send_message(
            QueueUrl=pair.url, MessageBody=message["body"], MessageAttributes=message["attributes"]
        )
        ids.append(sent["MessageId"])
    out = shared_dir(tmp_path)
    fleet = php_fleet(
        "--volume",
        f"{out}:/out",
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_HANDLER="php /app/bin/queue-worker/run-message.php",
        SYMFONY_PROJECT_DIR="/srv/php-tests/symfony-app",
        SYMFONY_SERIALIZER_SERVICE=service,
        TEST_OUTPUT_DIR="/out",
    )
    fleet.wait_for(lambda: len(fleet.jobs()) == len(ids), 180)
    assert fleet.stop(60) == 0
    assert sorted(j["message_id"] for j in fleet.jobs("done")) == sorted(ids)
    assert sorted(r["text"] for r in handled(out)) == sorted(texts)
    assert queue_depth(sqs_client, pair.url) == 0
