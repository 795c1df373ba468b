"""The Symfony Messenger runner (worker_image/recipes/symfony/run-message.php) run as the kit
runs commands, against the real Symfony from Debian's archive (5.4 on bookworm).

The messages are made by Messenger itself: tests/php/symfony-app/produce.php dispatches them
on the app's default bus, which routes them to its Amazon SQS transport (async-aws) at moto's
server, encoded by the native PHP serializer (APP_ENV=prod) or the JSON one (APP_ENV=json).
They are received once per module with boto3 as the kit receives them (all message
attributes, shaped by the kit's own `sqs_attributes`) and handed to the runner: body on stdin,
attributes in WORKER_MESSAGE_ATTRIBUTES_FILE (and WORKER_MESSAGE_ATTRIBUTES while they fit), as
the kit's `attributes_environment` writes them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from worker import contract
from worker.handlers import queue_environment, sqs_attributes
from worker.settings import WorkQueue

from tests.unit.php.conftest import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_RETRY,
    SYMFONY_APP,
    SYMFONY_RUNNER,
    Run,
    RunRunner,
    kit_env,
)

CONSOLE = SYMFONY_APP / "bin" / "console"
PRODUCE = SYMFONY_APP / "produce.php"
JSON_SERIALIZER_ALIAS = "queue_worker_kit.serializer"  # the app's public alias, as the recipe says
ROUTABLE_BUS_ALIAS = "queue_worker_kit.bus"  # the same for messenger.routable_message_bus
EXCEPTIONS = "Symfony\\Component\\Messenger\\Exception\\"
GONE = "App\\Gone\\Msg"
# PhpSerializer's body of a message whose class no longer exists: addslashes(serialize(...)).
GONE_BODY = f'O:{len(GONE)}:"{GONE}":0:{{}}'.replace("\\", "\\\\").replace('"', '\\"')

# What each serializer's producer dispatches, by name (the argument is unique in its queue).
MESSAGES: dict[str, dict[str, Any]] = {
    "hello": {"message": "Ping", "argument": "hello"},
    "traced": {"message": "Ping", "argument": "traced", "delay_ms": 0, "trace": "t-42"},
    "retried": {"message": "Ping", "argument": "retried", "retry_count": 1},
    "event": {"message": "Ping", "argument": "event", "bus": "events"},  # from the other bus
    "unrecoverable": {"message": "Explode", "argument": "unrecoverable"},
    "recoverable": {"message": "Explode", "argument": "recoverable"},
    "rate-limited": {"message": "Explode", "argument": "rate-limited"},
    "other": {"message": "Explode", "argument": "other"},
}
SERIALIZERS = {"php": "prod", "json": "json"}  # serializer -> the producer's APP_ENV

Made = dict[tuple[str, str], dict[str, Any]]


def php_env(**settings: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], **settings}


def app_dirs(cache: Path) -> dict[str, str]:
    """The kernel's cache and log dirs (MicroKernelTrait's variables), out of the source tree."""
    return {"APP_CACHE_DIR": str(cache), "APP_LOG_DIR": str(cache / "log")}


@pytest.fixture(scope="module")
def cache_dir(php: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's APP_CACHE_DIR for this module, its prod container warmed once."""
    cache = tmp_path_factory.mktemp("symfony-cache")
    done = subprocess.run(
        [php, str(CONSOLE), "cache:warmup"],
        env=php_env(**app_dirs(cache), APP_ENV="prod"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return cache


def received_by_name(body: str, names: list[str]) -> str:
    """The catalogue name whose argument the body carries (JSON or addslashes(serialize()))."""
    [name] = [
        n
        for n in names
        if f'"{MESSAGES[n]["argument"]}"' in body or f'\\"{MESSAGES[n]["argument"]}\\"' in body
    ]
    return name


@pytest.fixture(scope="module")
def made(php: str, moto_endpoint: str, cache_dir: Path) -> Made:
    """Every message of MESSAGES sent by Messenger's producer with each serializer, as the kit
    receives it from SQS: {(serializer, name): {"body", "attributes"}}."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    made: Made = {}
    for serializer, app_env in SERIALIZERS.items():
        queue = f"symfony-{serializer}-{os.getpid()}"
        url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        dsn = (
            f"sqs://{moto_endpoint.removeprefix('http://')}/{queue}?sslmode=disable"
            "&auto_setup=false&region=ap-northeast-1&access_key=testing&secret_key=testing"
        )
        done = subprocess.run(
            [php, str(PRODUCE)],
            input=json.dumps(list(MESSAGES.values())),
            env=php_env(
                APP_ENV=app_env,
                APP_DEBUG="0",
                **app_dirs(cache_dir),
                MESSENGER_TRANSPORT_DSN=dsn,
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(len(MESSAGES))
        messages: list[dict[str, Any]] = []
        for _ in range(20):
            messages += sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if len(messages) >= len(MESSAGES):
                break
        names = [received_by_name(message["Body"], list(MESSAGES)) for message in messages]
        assert sorted(names) == sorted(MESSAGES)  # each one sent, and sent once
        for name, message in zip(names, messages, strict=True):
            made[(serializer, name)] = {
                "body": message["Body"],
                "attributes": sqs_attributes(message.get("MessageAttributes", {})),
            }
    return made


@pytest.fixture
def run_message(run_runner: RunRunner, made: Made, cache_dir: Path) -> Callable[..., Run]:
    """Run a produced message through the runner: `run_message("php", "hello")`."""

    def run(serializer: str, name: str, **kwargs: Any) -> Run:
        message = made[(serializer, name)]
        settings = app_dirs(cache_dir)
        if serializer == "json":
            settings["SYMFONY_SERIALIZER_SERVICE"] = JSON_SERIALIZER_ALIAS
        kwargs["settings"] = {**settings, **kwargs.get("settings", {})}
        kwargs.setdefault("cwd", SYMFONY_APP)
        kwargs.setdefault("attributes", message["attributes"])
        return run_runner(SYMFONY_RUNNER, message["body"], **kwargs)

    return run


@pytest.fixture
def run_body(run_runner: RunRunner, cache_dir: Path) -> Callable[..., Run]:
    """Run a hand-made body (not from the producer) through the runner."""

    def run(body: str, **kwargs: Any) -> Run:
        kwargs["settings"] = {**app_dirs(cache_dir), **kwargs.get("settings", {})}
        return run_runner(SYMFONY_RUNNER, body, cwd=SYMFONY_APP, **kwargs)

    return run


def dispatched(run: Run) -> dict[str, Any]:
    [envelope] = run.of_kind("dispatched")
    return envelope


@pytest.mark.parametrize("serializer", ["php", "json"])
def test_a_message_of_messengers_producer_is_handled_once_as_a_received_message(
    run_message: Callable[..., Run], serializer: str
) -> None:
    run = run_message(serializer, "hello")

    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.result is None
    assert run.of_kind("handled") == [{"kind": "handled", "text": "hello"}]
    envelope = dispatched(run)
    assert envelope["message"] == "App\\Message\\Ping"
    assert envelope["on_bus"] == "messenger.bus.default"
    assert envelope["stamps"] == {
        "BusNameStamp": 1,  # sent by the producer's bus
        "ConsumedByWorkerStamp": 1,
        "ReceivedStamp": 1,
        "TransportMessageIdStamp": 1,
    }
    assert envelope["transport"] == "async"
    assert envelope["bus"] == "messenger.bus.default"
    assert envelope["message_id"].startswith("msg-")  # WORKER_MESSAGE_ID


@pytest.mark.parametrize("serializer", ["php", "json"])
def test_the_stamps_the_producer_sent_arrive_with_the_message(
    run_message: Callable[..., Run], serializer: str
) -> None:
    run = run_message(serializer, "traced")

    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.of_kind("handled") == [{"kind": "handled", "text": "traced"}]
    envelope = dispatched(run)
    assert envelope["trace"] == "t-42"  # the app's own stamp
    assert envelope["delay_ms"] == 0  # DelayStamp(0): sent at once, and no re-send on receipt
    assert envelope["stamps"]["TraceStamp"] == 1
    assert envelope["stamps"]["DelayStamp"] == 1


def test_a_json_message_takes_its_type_and_stamps_from_the_message_attributes(
    made: Made,
) -> None:
    php, json_message = made[("php", "traced")], made[("json", "traced")]

    # The PHP serializer puts everything in the body; the JSON one sends the type as an
    # attribute and the stamp headers (no valid attribute names) in X-Symfony-Messenger.
    assert php["attributes"] == {}
    assert set(json_message["attributes"]) == {"type", "Content-Type", "X-Symfony-Messenger"}
    assert json_message["attributes"]["type"]["StringValue"] == "App\\Message\\Ping"
    headers = json.loads(json_message["attributes"]["X-Symfony-Messenger"]["StringValue"])
    assert "X-Message-Stamp-App\\Stamp\\TraceStamp" in headers
    assert json.loads(json_message["body"]) == {"text": "traced"}


def test_a_json_message_without_x_symfony_messenger_is_handled_without_stamps(
    run_message: Callable[..., Run], made: Made
) -> None:
    # What a producer that is not Messenger sends: a JSON body and its type. Binary attributes
    # are not headers (as in the transport): one more must change nothing.
    attributes = dict(made[("json", "traced")]["attributes"])
    del attributes["X-Symfony-Messenger"]
    attributes["trace"] = {"DataType": "Binary", "BinaryValue": "AAE="}
    run = run_message("json", "traced", attributes=attributes)

    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.of_kind("handled") == [{"kind": "handled", "text": "traced"}]
    envelope = dispatched(run)
    assert (envelope["trace"], envelope["delay_ms"]) == (None, None)
    # The bus itself stamps its name on what it is given (AddBusNameStampMiddleware).
    assert envelope["stamps"] == {
        "BusNameStamp": 1,
        "ConsumedByWorkerStamp": 1,
        "ReceivedStamp": 1,
        "TransportMessageIdStamp": 1,
    }


def test_a_message_with_attributes_above_the_environments_limit_is_decoded_from_the_file(
    run_message: Callable[..., Run], made: Made
) -> None:
    """A JSON message whose attributes (its type, its stamps, and a 200-KiB header a producer
    added) are above what one environment variable may hold: the kit names them in
    WORKER_MESSAGE_ATTRIBUTES_FILE only, and the runner decodes the message from it (reading
    WORKER_MESSAGE_ATTRIBUTES alone, it found no type and dead-lettered the message)."""
    attributes = dict(made[("json", "traced")]["attributes"])
    attributes["padding"] = {"DataType": "String", "StringValue": "p" * (200 * 1024)}
    run = run_message("json", "traced", attributes=attributes)

    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.of_kind("handled") == [{"kind": "handled", "text": "traced"}]
    assert dispatched(run)["trace"] == "t-42"  # the stamp header came through the file


def test_a_kit_without_the_attributes_file_still_gives_them_in_the_variable(
    run_message: Callable[..., Run],
) -> None:
    """An image whose kit predates WORKER_MESSAGE_ATTRIBUTES_FILE: the runner reads the
    variable."""
    run = run_message("json", "traced", settings={"WORKER_MESSAGE_ATTRIBUTES_FILE": ""})

    assert run.exit_code == EXIT_DONE, run.stderr
    assert dispatched(run)["trace"] == "t-42"


def test_an_attributes_file_that_cannot_be_read_is_retried_with_a_reason_naming_it(
    run_message: Callable[..., Run], tmp_path: Path
) -> None:
    missing = tmp_path / "gone.json"
    run = run_message("json", "traced", settings={"WORKER_MESSAGE_ATTRIBUTES_FILE": str(missing)})

    assert run.exit_code == EXIT_RETRY
    assert run.result == {
        "reason": f"LogicException: WORKER_MESSAGE_ATTRIBUTES_FILE={missing}: cannot be read"
    }


def test_the_kernel_boots_in_prod_without_debug_by_default_with_the_dotenv_file(
    run_message: Callable[..., Run],
) -> None:
    default = run_message("php", "hello")
    staging = run_message("php", "hello", settings={"APP_ENV": "staging", "APP_DEBUG": "1"})
    overridden = run_message("php", "hello", settings={"APP_GREETING": "from the task"})

    # APP_GREETING is only in the app's .env: symfony/dotenv loaded it, real variables win.
    booted = {"kind": "booted", "env": "prod", "debug": False, "greeting": "from .env"}
    assert default.of_kind("booted") == [booted]
    assert staging.of_kind("booted") == [{**booted, "env": "staging", "debug": True}]
    assert staging.exit_code == EXIT_DONE, staging.stderr
    assert overridden.of_kind("booted") == [{**booted, "greeting": "from the task"}]


def test_the_project_is_found_by_symfony_project_dir(
    run_message: Callable[..., Run], tmp_path: Path
) -> None:
    run = run_message(
        "php", "hello", cwd=tmp_path, settings={"SYMFONY_PROJECT_DIR": str(SYMFONY_APP)}
    )
    lost = run_message("php", "hello", cwd=tmp_path)

    assert run.exit_code == EXIT_DONE, run.stderr
    assert lost.exit_code == EXIT_RETRY
    assert lost.result is not None
    assert "SYMFONY_PROJECT_DIR" in lost.result["reason"]


@pytest.mark.parametrize("serializer", ["php", "json"])
def test_a_redelivery_carries_a_redelivery_stamp_counting_the_retries(
    run_message: Callable[..., Run], serializer: str
) -> None:
    redelivered = run_message(serializer, "hello", receive_count=3)
    retried_before = run_message(serializer, "retried", receive_count=2)
    first = run_message(serializer, "retried")

    assert dispatched(redelivered)["retry_count"] == 2
    assert dispatched(redelivered)["stamps"]["RedeliveryStamp"] == 1
    # Sent with RedeliveryStamp(1) by Messenger's own retry, then redelivered once by SQS.
    assert dispatched(retried_before)["retry_count"] == 2
    assert dispatched(first)["retry_count"] == 1


@pytest.mark.parametrize("serializer", ["php", "json"])
def test_the_routable_bus_hands_a_message_to_the_bus_that_sent_it(
    run_message: Callable[..., Run], serializer: str
) -> None:
    routed = run_message(serializer, "event", settings={"SYMFONY_BUS": ROUTABLE_BUS_ALIAS})
    default_bus = run_message(serializer, "event")
    routed_default = run_message(serializer, "hello", settings={"SYMFONY_BUS": ROUTABLE_BUS_ALIAS})

    assert routed.exit_code == EXIT_DONE, routed.stderr
    assert dispatched(routed)["bus"] == "messenger.bus.events"  # its BusNameStamp
    assert dispatched(routed)["on_bus"] == "messenger.bus.events"
    assert routed.of_kind("handled") == [{"kind": "handled", "text": "event"}]
    assert dispatched(default_bus)["on_bus"] == "messenger.bus.default"  # SYMFONY_BUS's default
    assert dispatched(routed_default)["on_bus"] == "messenger.bus.default"


def test_symfony_transport_names_the_received_stamps_transport(
    run_message: Callable[..., Run],
) -> None:
    run = run_message("php", "hello", settings={"SYMFONY_TRANSPORT": "invoices"})

    assert dispatched(run)["transport"] == "invoices"


def test_on_a_worker_of_several_queues_the_transport_is_the_messages_queue(
    run_message: Callable[..., Run],
) -> None:
    mails = WorkQueue(name="mails", url="https://sqs.example/1/mails")
    # The task's list of queues, and the variables the worker gives a command of a message
    # of `mails` (worker.handlers.queue_environment).
    queues = {
        contract.QUEUES_VARIABLE: json.dumps([{"name": mails.name, "url": mails.url}]),
        **queue_environment(mails),
    }
    several = run_message("php", "hello", settings=queues)
    work = WorkQueue(name="work", url="https://sqs.example/1/work")
    one = run_message("php", "hello", settings=queue_environment(work))
    configured = run_message("php", "hello", settings={**queues, "SYMFONY_TRANSPORT": "all"})

    assert dispatched(several)["transport"] == "mails"
    assert dispatched(one)["transport"] == "async"  # one queue: as before
    assert dispatched(configured)["transport"] == "all"


@pytest.mark.parametrize("serializer", ["php", "json"])
def test_an_unrecoverable_exception_is_dead_lettered_at_once(
    run_message: Callable[..., Run], serializer: str
) -> None:
    run = run_message(serializer, "unrecoverable")

    assert run.exit_code == EXIT_FAILED
    assert run.result == {
        "reason": f"{EXCEPTIONS}UnrecoverableMessageHandlingException: invoice 42 has no customer"
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("recoverable", f"{EXCEPTIONS}RecoverableMessageHandlingException: the API said 503"),
        ("other", "RuntimeException: database went away"),
    ],
)
def test_other_exceptions_are_retried_with_their_reason(
    run_message: Callable[..., Run], name: str, reason: str
) -> None:
    run = run_message("php", name)

    assert run.exit_code == EXIT_RETRY
    assert run.result == {"reason": reason}


def retry_delay_supported(php: str) -> bool:
    """Messenger 7.2+ gave RecoverableMessageHandlingException a retry delay."""
    done = subprocess.run(
        [
            php,
            "-r",
            f"require '{SYMFONY_APP}/vendor/autoload.php'; echo (int) method_exists("
            "Symfony\\Component\\Messenger\\Exception\\RecoverableMessageHandlingException::class,"
            " 'getRetryDelay');",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout == "1"


def test_a_recoverable_exception_gives_its_retry_delay_where_messenger_has_one(
    run_message: Callable[..., Run], php: str
) -> None:
    run = run_message("php", "rate-limited")  # 12,500 ms where Messenger takes a delay

    assert run.exit_code == EXIT_RETRY
    reason = f"{EXCEPTIONS}RecoverableMessageHandlingException: the API said 429"
    if retry_delay_supported(php):
        assert run.result == {"reason": reason, "retry_after_seconds": 13}
    else:  # Messenger < 7.2 (bookworm's 5.4, trixie's 6.4): the kit's backoff
        assert run.result == {"reason": reason}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not a serialized envelope", "Could not decode"),
        (GONE_BODY, f'Message class "{GONE}" not found during decoding.'),
        ("a:0:{}", "Envelope"),  # unserializes, but to no Envelope
    ],
)
def test_an_undecodable_php_body_is_dead_lettered(
    run_body: Callable[..., Run], body: str, reason: str
) -> None:
    run = run_body(body)

    assert run.exit_code == EXIT_FAILED, run.stderr
    assert run.result is not None
    assert reason in run.result["reason"]
    assert run.of_kind("dispatched") == []


def test_a_json_body_without_its_type_attribute_is_dead_lettered(
    run_body: Callable[..., Run], made: Made
) -> None:
    run = run_body(
        made[("json", "hello")]["body"],
        settings={"SYMFONY_SERIALIZER_SERVICE": JSON_SERIALIZER_ALIAS},
    )

    assert run.exit_code == EXIT_FAILED
    assert run.result is not None
    assert "MessageDecodingFailedException" in run.result["reason"]
    assert run.of_kind("dispatched") == []


def test_a_json_message_of_a_class_that_is_gone_is_dead_lettered(
    run_message: Callable[..., Run], made: Made
) -> None:
    attributes = dict(made[("json", "hello")]["attributes"])
    attributes["type"] = {"DataType": "String", "StringValue": GONE}
    run = run_message("json", "hello", attributes=attributes)

    assert run.exit_code == EXIT_FAILED
    assert run.result is not None
    assert "MessageDecodingFailedException" in run.result["reason"]
    assert run.of_kind("dispatched") == []


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        # Messenger's own JSON serializer service is private in the compiled container.
        (
            {"SYMFONY_SERIALIZER_SERVICE": "messenger.transport.symfony_serializer"},
            "SYMFONY_SERIALIZER_SERVICE",
        ),
        ({"SYMFONY_BUS": "messenger.bus.default"}, "messenger.bus.default"),  # private too
    ],
)
def test_a_service_that_is_not_public_is_retried_with_a_reason_naming_it(
    run_message: Callable[..., Run], setting: dict[str, str], named: str
) -> None:
    run = run_message("json", "hello", settings=setting)

    assert run.exit_code == EXIT_RETRY
    assert run.result is not None
    assert named in run.result["reason"]
    assert run.of_kind("handled") == []


# --- Warmed at build time, read-only at run time (ECS: read-only root FS, /tmp writable) ---

ECS_UID = 10001


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory every uid can reach (pytest's own tmp dirs are 0700 to their owner)."""
    path = Path(tempfile.mkdtemp(prefix="symfony-readonly-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            if sub.is_dir() and not sub.is_symlink():
                sub.chmod(sub.stat().st_mode | stat.S_IWUSR)
        path.chmod(0o755)
        shutil.rmtree(path)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


def set_writable(root: Path, writable: bool) -> None:
    """Read-only (or writable again) for everyone: root ignores it, the task's uid does not."""
    bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


def run_as_task(
    php: str, app: Path, writable: Path, message: dict[str, Any], serializer: str
) -> subprocess.CompletedProcess[str]:
    """The copied runner run as on ECS: uid 10001 (when the tests are root), only `writable`."""
    as_task = ["setpriv", f"--reuid={ECS_UID}", f"--regid={ECS_UID}", "--clear-groups"]
    settings = {"SYMFONY_SERIALIZER_SERVICE": JSON_SERIALIZER_ALIAS} if serializer == "json" else {}
    return subprocess.run(
        [
            *(as_task if os.geteuid() == 0 else []),
            "/bin/sh",
            "-c",
            f"{php} bin/queue-worker/run-message.php",
        ],
        input=message["body"],
        env=php_env(
            TMPDIR=str(writable),
            TEST_OUTPUT_DIR=str(writable),
            **kit_env(
                message_id=f"msg-{serializer}",
                receive_count=1,
                attributes=message["attributes"],
                result_file=writable / "result.json",
                # The kit's private directory, not the command's temp dir (readable by the uid).
                attributes_file=writable.parent / f"attributes-{serializer}.json",
            ),
            **settings,
        ),
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_cache_warmed_at_build_time_runs_read_only_with_only_tmp_writable(
    php: str, made: Made, world_readable_dir: Path
) -> None:
    """As the documented image does it: the runner copied to bin/queue-worker/, `bin/console
    cache:warmup` at build time (as root: the cache in the app's var/cache/prod, nothing in the
    temp dir), then the app read-only and the runner run as the task's uid with only a temp dir
    writable. Without the warm-up the same run cannot build its container."""
    app = world_readable_dir / "app"
    shutil.copytree(SYMFONY_APP, app, ignore=shutil.ignore_patterns("var"))
    (app / "bin" / "queue-worker").mkdir()
    shutil.copy(SYMFONY_RUNNER, app / "bin" / "queue-worker" / "run-message.php")
    writable = world_readable_dir / "tmp"
    writable.mkdir()
    writable.chmod(0o1777)

    set_writable(app, False)
    cold = run_as_task(php, app, writable, made[("php", "hello")], "php")
    assert cold.returncode == EXIT_RETRY
    assert 'Unable to create the "cache" directory' in cold.stderr
    (writable / "result.json").unlink()

    set_writable(app, True)
    build_tmp = world_readable_dir / "build-tmp"
    build_tmp.mkdir()
    warm = subprocess.run(
        [php, "bin/console", "cache:warmup"],
        env=php_env(APP_ENV="prod", TMPDIR=str(build_tmp)),
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert warm.returncode == 0, warm.stdout + warm.stderr
    assert (app / "var" / "cache" / "prod" / "App_KernelProdContainer.php").is_file()
    assert list(build_tmp.iterdir()) == []  # no root-owned files for the task's /tmp
    set_writable(app, False)
    before = tree(app)

    for serializer in ("php", "json"):
        done = run_as_task(php, app, writable, made[(serializer, "hello")], serializer)
        assert done.returncode == EXIT_DONE, done.stderr
        assert not (writable / "result.json").exists()

    records = [json.loads(line) for line in (writable / "record.jsonl").read_text().splitlines()]
    handled = [record for record in records if record["kind"] == "handled"]
    assert handled == [{"kind": "handled", "text": "hello"}] * 2
    assert tree(app) == before  # nothing written to the app, its cache included
    assert sorted(p.name for p in writable.iterdir()) == ["record.jsonl"]  # nor to the temp dir


# The transport's own sender, at a FIFO queue: Connection::send() sends every message with a
# MessageGroupId and a MessageDeduplicationId (an AmazonSqsFifoStamp's, else its defaults).
TRANSPORT_DEFAULT_GROUP = (
    "Symfony\\Component\\Messenger\\Bridge\\AmazonSqs\\Transport\\Connection::send"
)


def test_messengers_sender_gives_a_fifo_queue_its_stamps_ids_or_its_own_defaults(
    php: str, moto_endpoint: str, cache_dir: Path, run_runner: RunRunner
) -> None:
    """The ids the kit's FIFO worker then keeps: a stamp's group and deduplication id (a second
    message of one id within 5 minutes is dropped by SQS); without a stamp, one group for every
    message (the transport's method name: such messages run one at a time) and the hash of
    body and headers (an identical message is dropped); no per-message delay (the transport
    leaves DelayStamp out on FIFO). The runner runs each as any other, in its group."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue = f"symfony-fifo-{os.getpid()}.fifo"
    url = sqs.create_queue(QueueName=queue, Attributes={"FifoQueue": "true"})["QueueUrl"]
    dsn = (
        f"sqs://{moto_endpoint.removeprefix('http://')}/{queue}?sslmode=disable"
        "&auto_setup=false&region=ap-northeast-1&access_key=testing&secret_key=testing"
    )
    sent = [
        {"message": "Ping", "argument": "a-1", "group": "a"},
        {"message": "Ping", "argument": "a-2", "group": "a"},
        {"message": "Ping", "argument": "b-1", "group": "b", "deduplication_id": "b-once"},
        {"message": "Ping", "argument": "b-2", "group": "b", "deduplication_id": "b-once"},
        {"message": "Ping", "argument": "plain"},
        {"message": "Ping", "argument": "plain"},
        {"message": "Ping", "argument": "late", "group": "c", "delay_ms": 600_000},
    ]
    done = subprocess.run(
        [php, str(PRODUCE)],
        input=json.dumps(sent),
        env=php_env(APP_ENV="prod", **app_dirs(cache_dir), MESSENGER_TRANSPORT_DSN=dsn),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr

    messages: list[dict[str, Any]] = []
    for _ in range(10):
        messages += sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
    ids = {
        received_text(m["Body"]): (
            m["Attributes"]["MessageGroupId"],
            m["Attributes"]["MessageDeduplicationId"],
        )
        for m in messages
    }
    assert list(ids) == ["a-1", "a-2", "b-1", "plain", "late"]  # b-2 and the second plain dropped
    assert ids["a-1"][0] == ids["a-2"][0] == "a"
    assert ids["b-1"] == ("b", "b-once")
    assert ids["plain"][0] == TRANSPORT_DEFAULT_GROUP and len(ids["plain"][1]) == 40  # sha1
    assert ids["late"][0] == "c"  # received at once: its delay was left out
    runs = [
        run_runner(
            SYMFONY_RUNNER,
            m["Body"],
            cwd=SYMFONY_APP,
            attributes=sqs_attributes(m.get("MessageAttributes", {})),
            settings={
                **app_dirs(cache_dir),
                contract.MESSAGE_GROUP_ID_VARIABLE: m["Attributes"]["MessageGroupId"],
            },
        )
        for m in messages
    ]
    assert [run.exit_code for run in runs] == [EXIT_DONE] * 5, [run.stderr for run in runs]
    assert [(r["text"], r["group"]) for run in runs for r in run.of_kind("handled")] == [
        (text, group) for text, (group, _) in ids.items()
    ]


def received_text(body: str) -> str:
    """The Ping text in a PhpSerializer body (addslashes(serialize(...)))."""
    return body.split('text\\";s:', 1)[1].split('\\"')[1]
