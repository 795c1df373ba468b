"""A PHP team's own image with the kit brought in the documented way, run against moto.

The image: tests/integration/php_app/Dockerfile (Debian trixie's php-cli 8.4 with the real
Laravel 10 and Symfony 6.4 from Debian's archive, a tiny job script, one test application of
tests/php at /app, warmed up as root at build time) followed by the kit's stage exactly as
docs/frameworks.md step 1 prints it, built with `--build-context queue-worker-kit=worker_image`.
Built once per application and session. Every run is at the production shape
(WORKER_PROCESSES=8, command mode); only the SQS timings (long poll 1 s, backoff base 0) are
shortened so the test stays fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from worker import contract

from scripts.capacity import measured
from tests.integration.containers import (
    TRIXIE,
    as_ecs,
    remove_container,
    run,
    start_container,
)
from tests.integration.fleet import ROOT, WORKER_IMAGE, Fleet, queue_depth
from tests.sqs_helpers import drain
from tests.tutorial import (
    INSTALLED_VERSIONS_SCRIPT,
    documented_versions,
    environment_block,
    image_stage,
)

if TYPE_CHECKING:
    from tests.infra.conftest import Synthesized

PHP_APP = Path(__file__).resolve().parent / "php_app"
PHP_TESTS = ROOT / "tests" / "php"  # the Laravel and Symfony test applications
PROCESSES = "8"
REASON = "RuntimeException: payment API said no"

# One xdist worker runs every container test (`--dist loadgroup`): one setup, one build.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("container")]


@pytest.fixture(scope="session")
def build_php_image(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """`build("laravel-app")`: the image of that test application with the tutorial's stage,
    built once per application."""
    dockerfile = tmp_path_factory.mktemp("php-image") / "Dockerfile"
    dockerfile.write_text(f"{(PHP_APP / 'Dockerfile').read_text()}\n{image_stage()}")

    @cache
    def build(app: str) -> str:
        tag = f"localhost/php-{app}:test"
        base = [] if engine == "docker" else ["--build-arg", f"BASE_IMAGE={TRIXIE}"]
        run(
            engine, "build", "--network", "host", *base, "--build-arg", f"APP={app}",
            "--build-context", f"queue-worker-kit={WORKER_IMAGE}",
            "--build-context", f"php-tests={PHP_TESTS}",
            "--target", "worker", "--tag", tag, "--file", str(dockerfile), str(PHP_APP),
        )  # fmt: skip
        return tag

    return build


@pytest.fixture(scope="session")
def php_image(build_php_image: Callable[[str], str]) -> str:
    """The Laravel application's image (the tiny job script is in every image)."""
    return build_php_image("laravel-app")


@pytest.fixture
def start_php_fleet(
    engine: str, moto_endpoint: str, tmp_path: Path
) -> Iterator[Callable[..., Fleet]]:
    """Factory: `start(image, *run_options, **env)`: the image run as the task definition runs a
    team's image (the kit's user, a read-only root, /tmp through the VOLUME), command mode with
    8 processes unless env says otherwise."""
    names: list[str] = []

    def start(image: str, *options: str, **env: str) -> Fleet:
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
        fleet, name = start_container(
            engine, image, workdir, moto_endpoint, settings, (*as_ecs(engine), *options)
        )
        names.append(name)
        return fleet

    yield start
    for name in names:
        remove_container(engine, name)


@pytest.fixture
def php_fleet(php_image: str, start_php_fleet: Callable[..., Fleet]) -> Callable[..., Fleet]:
    """Factory: the Laravel application's image running job.php (+ env overrides)."""
    return lambda *options, **env: start_php_fleet(php_image, *options, **env)


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


def test_the_docs_name_the_framework_versions_the_image_runs(engine: str, php_image: str) -> None:
    installed = run(
        engine, "run", "--rm", "--entrypoint", "sh", php_image, "-c", INSTALLED_VERSIONS_SCRIPT
    ).split()

    assert documented_versions("the PHP image test") == installed


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


def shared_dir(tmp_path: Path) -> Path:
    """A directory the container's user writes (the app's records and SQLite database)."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    return out


def records(out: Path, kind: str) -> list[dict[str, Any]]:
    """What the test applications recorded ($TEST_OUTPUT_DIR/record.jsonl) of one kind."""
    lines = (out / "record.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def tutorial_synthesis(runner: str, *, fifo: bool = False) -> Synthesized:
    """prod with docs/frameworks.md step 2's block that runs `runner`, synthesized by the kit
    (its image left out: these tests build it as step 1 says); `fifo`: its queue FIFO."""
    from tests.infra.conftest import synthesize  # synthesizes in-process (CDK), once

    block = environment_block(runner)
    worker = {k: v for k, v in block["worker"].items() if k != "image"}
    queue = {**block.get("queue", {}), **({"fifo": True} if fifo else {})}
    return synthesize("prod", worker=worker, queue=queue)


def tutorial_environment(runner: str, *, fifo: bool = False) -> dict[str, str]:
    """The task's environment for docs/frameworks.md step 2's block that runs `runner`, with a
    value for each of the block's secrets as ECS would inject it; `fifo`: on a FIFO queue."""
    block = environment_block(runner)
    resources = tutorial_synthesis(runner, fifo=fifo).worker_json["Resources"].values()
    [task] = [r for r in resources if r["Type"] == "AWS::ECS::TaskDefinition"]
    [container] = task["Properties"]["ContainerDefinitions"]
    settings = {e["Name"]: e["Value"] for e in container["Environment"]}
    secrets = {s["Name"]: f"secret-{s['Name'].lower()}" for s in container.get("Secrets", [])}
    assert set(secrets) == set(block["worker"].get("secrets", {}))
    plain = {name: value for name, value in settings.items() if isinstance(value, str)}
    return {**plain, **secrets}


def tutorial_fleet(
    start: Callable[..., Fleet],
    image: str,
    environment: dict[str, str],
    pair: Any,
    out: Path,
    **app: str,
) -> Fleet:
    """The tutorial's fleet of `image` on `pair` (`environment` sped up by FAST), recording
    into `out` (mounted at /out, with the Laravel app's SQLite database), with the app's `app`
    settings."""
    settings = {**environment, **FAST, "DB_DATABASE": "/out/app.sqlite", **app}
    return start(
        image,
        "--volume",
        f"{out}:/out",
        **settings,
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        TEST_OUTPUT_DIR="/out",
    )


def transport_dsn(url: str) -> str:
    """Messenger's Amazon SQS transport DSN of moto's queue at `url`."""
    host, path = url.removeprefix("http://").split("/", 1)
    return (
        f"sqs://{host}/{path}?sslmode=disable&auto_setup=false&region=ap-northeast-1"
        "&access_key=testing&secret_key=testing"
    )


# The tutorial's settings, sped up only where SQS timings would make the test slow.
FAST = {
    "RECEIVE_WAIT_SECONDS": "1",
    "RETRY_BACKOFF_BASE_SECONDS": "0",
    "SUPERVISOR_STOPWAITSECS": "20",
    "WORKER_STOP_GRACE_SECONDS": "10",
}


def in_image(engine: str, image: str, out: Path, command: str, **env: str) -> str:
    """One command of the application (a producer, a migration) in a container of `image`, as
    ECS runs it, on the host network with the fake AWS settings; returns its stdout."""
    settings = {
        "AWS_ENDPOINT_URL": env.pop("endpoint"),
        "AWS_REGION": "ap-northeast-1",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TEST_OUTPUT_DIR": "/out",
        **env,
    }
    options = [f"--env={key}={value}" for key, value in settings.items()]
    return run(
        engine, "run", "--rm", "--network", "host", *as_ecs(engine), *options,
        "--volume", f"{out}:/out", "--entrypoint", "sh", image, "-c", command,
    )  # fmt: skip


def test_the_laravel_tutorial_runs_real_laravel_jobs_at_8_processes(
    engine: str,
    build_php_image: Callable[[str], str],
    start_php_fleet: Callable[..., Fleet],
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    """docs/frameworks.md as a Laravel team follows it: the image of step 1 (its config cached
    at build time), the settings of step 2 (a secret among them), jobs dispatched by Laravel's
    own dispatch() through its SQS queue, the real Laravel 10 running them."""
    image = build_php_image("laravel-app")
    environment = tutorial_environment("run-job.php")
    assert environment["WORKER_PROCESSES"] == "8"
    pair = make_queue_pair(max_receive_count=5)
    out = shared_dir(tmp_path)
    # The producer and the migration are the team's other programs: they read the task's
    # settings, not the config the image cached (only the kit's runner ignores it by itself).
    app = {
        "endpoint": moto_endpoint,
        "SQS_QUEUE": pair.url,
        "DB_DATABASE": "/out/app.sqlite",
        "APP_CONFIG_CACHE": "/tmp/no-config-cache.php",
    }
    in_image(engine, image, out, "php artisan migrate --force", **app)
    in_image(engine, image, out, "php produce.php 24", **app)
    keys = ("database.connections.sqlite.password", "queue.connections.sqs.queue")
    in_image(
        engine, image, out, f"php produce.php 1 'App\\Jobs\\ConfigJob' {' '.join(keys)}", **app
    )
    in_image(engine, image, out, "php produce.php 1 'App\\Jobs\\UntriedThrowJob'", **app)
    fleet = tutorial_fleet(start_php_fleet, image, environment, pair, out, SQS_QUEUE=pair.url)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 25 and fleet.jobs("dead_letter"), 240)
    fleet.wait_for(lambda: queue_depth(sqs_client, pair.url) == 0, 30)
    assert fleet.stop(60) == 0
    handled = records(out, "handled")
    assert sorted(r["note"] for r in handled) == sorted(f"produced-{n}" for n in range(1, 25))
    assert len({j["process"] for j in fleet.jobs()}) >= 4  # the 8 slots shared the work
    # The task's settings and secret reach config(), though the image cached its config.
    [seen] = records(out, "config")
    assert seen["values"] == {keys[0]: "secret-db_password", keys[1]: pair.url}
    # Laravel's default tries are the queue's max_receive_count: its last failure is final.
    [dead] = fleet.jobs("dead_letter")
    assert (dead["receive_count"], dead["error"]) == (5, "RuntimeException: still broken")
    [copy] = drain(sqs_client, pair.dlq_url)
    assert copy["MessageAttributes"]["worker_failure_reason"]["StringValue"] == dead["error"]
    failed_rows = in_image(
        engine, image, out,
        "php -r '$db = new PDO(\"sqlite:/out/app.sqlite\");"
        " echo json_encode($db->query(\"select queue, exception from failed_jobs\")"
        "->fetchAll(PDO::FETCH_ASSOC));'",
        endpoint=moto_endpoint,
    )  # fmt: skip
    [row] = json.loads(failed_rows)
    assert row["queue"] == pair.url and row["exception"].startswith("RuntimeException: still")
    # Laravel reports each exception to stderr with its stack trace: one event a run, not a
    # line of the trace each.
    reports = [
        e["line"]
        for e in fleet.events("job_output")
        if e["message_id"] == dead["message_id"] and e["stream"] == "stderr"
    ]
    assert len(reports) == 5, reports  # one a receive
    assert all("still broken" in r and "#0 " in r and r.count("\n") > 5 for r in reports)


@pytest.mark.parametrize("serializer", ["php", "json"])
def test_the_symfony_tutorial_runs_messages_of_either_serializer_at_8_processes(
    serializer: str,
    engine: str,
    build_php_image: Callable[[str], str],
    start_php_fleet: Callable[..., Fleet],
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    """docs/frameworks.md as a Symfony team follows it: the image of step 1 (its container
    cache warmed as root at build time, under /tmp), the settings of step 2, messages
    dispatched on Messenger's bus through the Amazon SQS transport, the real Symfony 6.4
    handling them. `json`: Messenger's JSON serializer, type and headers as attributes."""
    image = build_php_image("symfony-app")
    environment = tutorial_environment("run-message.php")
    pair = make_queue_pair(max_receive_count=5)
    out = shared_dir(tmp_path)
    dsn = transport_dsn(pair.url)
    # Where the warm-up put the cache; a producer of another environment builds its own there.
    app = {
        "MESSENGER_TRANSPORT_DSN": dsn,
        "APP_CACHE_DIR": "/tmp/symfony-cache",
        "APP_LOG_DIR": "/tmp",
    }
    texts = [f"ping-{n}" for n in range(20)]
    messages = [{"message": "Ping", "argument": text, "trace": text} for text in texts]
    producer_env = "json" if serializer == "json" else "prod"
    sent = in_image(
        engine, image, out,
        f"echo '{json.dumps(messages)}' | php produce.php",
        endpoint=moto_endpoint, APP_ENV=producer_env, **app,
    )  # fmt: skip
    assert sent.split() == [str(len(texts))]
    serializer_setting = (
        {} if serializer == "php" else {"SYMFONY_SERIALIZER_SERVICE": "queue_worker_kit.serializer"}
    )
    fleet = tutorial_fleet(
        start_php_fleet, image, environment, pair, out, **app, **serializer_setting
    )
    fleet.wait_for(lambda: len(fleet.jobs()) == len(texts), 240)
    assert fleet.stop(60) == 0
    assert [j["outcome"] for j in fleet.jobs()] == ["done"] * len(texts)
    assert sorted(r["text"] for r in records(out, "handled")) == sorted(texts)
    assert queue_depth(sqs_client, pair.url) == 0


def test_laravel_jobs_dispatched_to_a_fifo_queue_run_in_their_groups_order_at_8_processes(
    engine: str,
    build_php_image: Callable[[str], str],
    start_php_fleet: Callable[..., Fleet],
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    """The Laravel tutorial's worker on a FIFO queue (its environment as the stack makes it for
    one), fed by Laravel 10's dispatch() through the kit's KitSqsFifoQueue (worker_image/
    recipes/laravel, registered by the test app as the recipe README says): every job runs
    once, in its group's order, and the job sees its group."""
    image = build_php_image("laravel-app")
    environment = tutorial_environment("run-job.php", fifo=True)
    assert (environment["WORKER_PROCESSES"], environment["PREFETCH_SECONDS"]) == ("8", "0")
    pair = make_queue_pair(max_receive_count=5, fifo=True)
    out = shared_dir(tmp_path)
    app = {"endpoint": moto_endpoint, "SQS_QUEUE": pair.url, "DB_DATABASE": "/out/app.sqlite"}
    app["APP_CONFIG_CACHE"] = "/tmp/no-config-cache.php"
    groups = ("tenant-1", "tenant-2", "tenant-3")
    produce = " && ".join(f"MESSAGE_GROUP={group} php produce.php 6" for group in groups)
    in_image(engine, image, out, f"php artisan migrate --force && {produce}", **app)
    fleet = tutorial_fleet(start_php_fleet, image, environment, pair, out, SQS_QUEUE=pair.url)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 18, 120)
    assert fleet.stop(60) == 0
    handled = records(out, "handled")
    for group in groups:
        in_group = [r["note"] for r in handled if r["group"] == group]
        assert in_group == [f"{group}-{n}" for n in range(1, 7)]  # once each, in order
    assert len(handled) == 18
    assert {j[contract.MESSAGE_GROUP_ID] for j in fleet.jobs()} == set(groups)
    assert queue_depth(sqs_client, pair.url) == 0


def test_symfony_messages_sent_to_a_fifo_queue_run_in_their_groups_order_at_8_processes(
    engine: str,
    build_php_image: Callable[[str], str],
    start_php_fleet: Callable[..., Fleet],
    make_queue_pair: Callable[..., Any],
    sqs_client: Any,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    """The Symfony tutorial's worker on a FIFO queue, fed by Messenger 6.4's Amazon SQS
    transport: messages stamped with a group (AmazonSqsFifoStamp) and messages without one
    (the transport's own group for all of them) run once each, in their group's order."""
    image = build_php_image("symfony-app")
    environment = tutorial_environment("run-message.php", fifo=True)
    assert environment["PREFETCH_SECONDS"] == "0"
    pair = make_queue_pair(max_receive_count=5, fifo=True)
    out = shared_dir(tmp_path)
    dsn = transport_dsn(pair.url)
    app = {
        "MESSENGER_TRANSPORT_DSN": dsn,
        "APP_CACHE_DIR": "/tmp/symfony-cache",
        "APP_LOG_DIR": "/tmp",
    }
    sent = [
        {"message": "Ping", "argument": f"{group}-{n}", **({"group": group} if group else {})}
        for n in range(1, 6)
        for group in ("a", "b", "")
    ]
    produced = in_image(
        engine, image, out, f"echo '{json.dumps(sent)}' | php produce.php",
        endpoint=moto_endpoint, APP_ENV="prod", **app,
    )  # fmt: skip
    assert produced.split() == [str(len(sent))]
    fleet = tutorial_fleet(start_php_fleet, image, environment, pair, out, **app)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == len(sent), 120)
    assert fleet.stop(60) == 0
    handled = [(r["group"], r["text"]) for r in records(out, "handled")]
    default_group = "Symfony\\Component\\Messenger\\Bridge\\AmazonSqs\\Transport\\Connection::send"
    for group, name in (("a", "a"), ("b", "b"), (default_group, "")):
        assert [text for g, text in handled if g == group] == [f"{name}-{n}" for n in range(1, 6)]
    assert len(handled) == len(sent)  # once each
    assert queue_depth(sqs_client, pair.url) == 0


@pytest.mark.parametrize("app", ["laravel-app", "symfony-app"])
def test_nothing_the_build_left_in_tmp_is_closed_to_the_tasks_user(
    app: str, engine: str, build_php_image: Callable[[str], str]
) -> None:
    """`VOLUME ["/tmp"]` copies the image's /tmp into the task's: what a warm-up wrote there as
    root must stay writable for the task's user (the kit's own sources need not be)."""
    image = build_php_image(app)
    unwritable, listing = run(
        engine, "run", "--rm", *as_ecs(engine), "--entrypoint", "sh", image, "-c",
        "find /tmp -mindepth 1 -path /tmp/queue-worker-kit -prune -o ! -writable -print;"
        " echo ---; ls /tmp",
    ).split("---\n")  # fmt: skip
    assert unwritable.split() == []
    if app == "symfony-app":  # its warm-up wrote the container cache there as root
        assert "symfony-cache" in listing.split()


def test_measure_finds_the_laravel_images_figures_and_plan_plans_with_them(
    engine: str, php_image: str, moto_endpoint: str, tmp_path: Path
) -> None:
    """docs/frameworks.md's planning steps: `queue-worker measure` runs the image as the task
    does (the tutorial's Laravel settings, 8 processes) on real Laravel jobs, and `plan
    --measured` plans with what it found."""
    synthesized = tutorial_synthesis("run-job.php")
    assembly = tmp_path / "cdk.out" / "prod"
    assembly.mkdir(parents=True)
    for stack, template in (("Queue", synthesized.queue_json), ("Worker", synthesized.worker_json)):
        (assembly / f"QueueWorker-prod-{stack}.template.json").write_text(json.dumps(template))
    out = shared_dir(tmp_path)
    payload = "php make-payload.php 'App\\Jobs\\SlowJob' measured"
    bodies = tmp_path / "bodies.jsonl"  # two Laravel jobs, of 0.5 s and 1 s
    make = f"{payload} 0.5 && echo && {payload} 1"
    bodies.write_text(in_image(engine, php_image, out, make, endpoint=moto_endpoint))
    measured_json = tmp_path / "measured.json"
    # Stand-ins: the tutorial's secret, an in-memory database; the job records into /tmp.
    measure = subprocess.run(
        [
            sys.executable, "-m", "scripts", "measure", "--image", php_image, "--env", "prod",
            "--bodies", str(bodies), "--engine", engine, "--cdk-out", str(tmp_path / "cdk.out"),
            "--seconds", "8", "--timeout", "120", "--out", str(measured_json),
            "--set", "DB_PASSWORD=stand-in", "--set", "DB_DATABASE=:memory:",
            "--set", "TEST_OUTPUT_DIR=/tmp",
        ],
        capture_output=True, text=True, timeout=240, check=False, cwd=ROOT,
    )  # fmt: skip
    assert measure.returncode == 0, measure.stderr
    figures = measured.read(measured_json)
    assert (figures.image, figures.processes, figures.handler_mode) == (php_image, 8, "command")
    assert figures.jobs_done >= 8 and figures.jobs_failed == 0
    # Above the PHP interpreter's floor (`php -r` with nothing loaded: 6.2 MiB of its own
    # memory in this image; booted Laravel 13.1), and the eight with the kit fit the task.
    assert figures.process_memory_mib > 6
    assert figures.container_peak_mib < synthesized.config.worker.memory_mib
    assert 0 < figures.process_cpu < 1
    assert figures.planner_options() in measure.stdout
    plan = subprocess.run(
        [
            sys.executable, "-m", "scripts", "plan", "--measured", str(measured_json),
            "--messages", "2000", "--duration", "uniform:30:300", "--env", "prod", "--json",
        ],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    per_process = json.loads(plan.stdout)["per_process"]
    assert per_process["memory_mib"] == figures.process_memory_mib
    assert per_process["cpu"] == figures.process_cpu
    assert php_image in per_process["from"]
