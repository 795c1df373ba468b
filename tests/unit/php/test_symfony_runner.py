"""The Symfony Messenger runner (worker_image/recipes/symfony/run-message.php) run as the kit
runs commands.

Messages are what the Amazon SQS transport sends for a message dispatched on the default bus
(tests/php/symfony-app/make-message.php: Messenger's PhpSerializer or Serializer encode(), then
Connection::send()'s headers-to-attributes rule); both serializers are copies of Messenger's
code (tests/php/fakes/).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.php.conftest import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_RETRY,
    SYMFONY_APP,
    SYMFONY_RUNNER,
    Run,
    RunRunner,
)

MAKE_MESSAGE = SYMFONY_APP / "make-message.php"
JSON = {"SYMFONY_SERIALIZER_SERVICE": "app.json_serializer"}
EXCEPTIONS = "Symfony\\Component\\Messenger\\Exception\\"
GONE = "App\\Gone\\Msg"
# PhpSerializer's body of a message whose class no longer exists: addslashes(serialize(...)).
GONE_BODY = f'O:{len(GONE)}:"{GONE}":0:{{}}'.replace("\\", "\\\\").replace('"', '\\"')


@pytest.fixture
def make_message(php_output: Callable[..., str]) -> Callable[..., dict[str, Any]]:
    """`make_message("json", "Ping", "hello", "--no-stamps")` -> {"body", "attributes"}."""

    def make(serializer: str, message: str, argument: str, *options: str) -> dict[str, Any]:
        made: dict[str, Any] = json.loads(
            php_output(MAKE_MESSAGE, *options, serializer, f"App\\Message\\{message}", argument)
        )
        return made

    return make


@pytest.fixture
def run_message(
    run_runner: RunRunner, make_message: Callable[..., dict[str, Any]]
) -> Callable[..., Run]:
    """Encode a message with a serializer and run it: `run_message("php", "Ping", "hi")`."""

    def run(serializer: str, message: str, argument: str, *options: str, **kwargs: Any) -> Run:
        made = make_message(serializer, message, argument, *options)
        kwargs.setdefault("cwd", SYMFONY_APP)
        if serializer == "json":
            kwargs["settings"] = {**JSON, **kwargs.get("settings", {})}
        return run_runner(SYMFONY_RUNNER, made["body"], attributes=made["attributes"], **kwargs)

    return run


def dispatched(run: Run) -> dict[str, Any]:
    [envelope] = run.of_kind("dispatched")
    return envelope


def test_a_php_serialized_message_is_handled_as_a_received_message(
    run_message: Callable[..., Run],
) -> None:
    run = run_message("php", "Ping", "hello")

    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.result is None
    assert run.of_kind("handled") == [{"kind": "handled", "text": "hello"}]
    envelope = dispatched(run)
    assert envelope["stamps"] == {
        "BusNameStamp": 1,
        "ReceivedStamp": 1,
        "ConsumedByWorkerStamp": 1,
        "TransportMessageIdStamp": 1,
    }
    assert envelope["transport"] == "async"
    assert envelope["message_id"].startswith("msg-")


def test_the_kernel_boots_in_prod_without_debug_by_default(
    run_message: Callable[..., Run],
) -> None:
    default = run_message("php", "Ping", "x")
    staging = run_message("php", "Ping", "x", settings={"APP_ENV": "staging", "APP_DEBUG": "1"})

    assert default.of_kind("booted") == [{"kind": "booted", "env": "prod", "debug": False}]
    assert staging.of_kind("booted") == [{"kind": "booted", "env": "staging", "debug": True}]


def test_the_project_is_found_by_symfony_project_dir(
    run_message: Callable[..., Run], tmp_path: Path
) -> None:
    run = run_message(
        "php", "Ping", "x", cwd=tmp_path, settings={"SYMFONY_PROJECT_DIR": str(SYMFONY_APP)}
    )

    assert run.exit_code == EXIT_DONE, run.stderr


def test_a_json_message_takes_its_headers_from_the_message_attributes(
    run_message: Callable[..., Run], make_message: Callable[..., dict[str, Any]]
) -> None:
    attributes = make_message("json", "Ping", "hello")["attributes"]
    run = run_message("json", "Ping", "hello")

    # The stamp headers' names are no valid attribute names: they travel in X-Symfony-Messenger.
    assert set(attributes) == {"type", "Content-Type", "X-Symfony-Messenger"}
    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.of_kind("handled") == [{"kind": "handled", "text": "hello"}]
    assert dispatched(run)["bus"] == "messenger.bus.default"  # from X-Symfony-Messenger


def test_a_json_message_without_stamps_needs_no_x_symfony_messenger(
    run_runner: RunRunner, make_message: Callable[..., dict[str, Any]]
) -> None:
    made = make_message("json", "Ping", "bare", "--no-stamps")
    # Binary attributes are not headers (as in the transport): one more must change nothing.
    attributes = {**made["attributes"], "trace": {"DataType": "Binary", "BinaryValue": "AAE="}}
    run = run_runner(
        SYMFONY_RUNNER, made["body"], cwd=SYMFONY_APP, attributes=attributes, settings=JSON
    )

    assert set(made["attributes"]) == {"type", "Content-Type"}
    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.of_kind("handled") == [{"kind": "handled", "text": "bare"}]


def test_a_redelivery_carries_a_redelivery_stamp_counting_the_retries(
    run_message: Callable[..., Run],
) -> None:
    redelivered = run_message("php", "Ping", "x", receive_count=3)
    retried_before = run_message("json", "Ping", "x", "--retry-count", "1", receive_count=2)

    assert dispatched(redelivered)["retry_count"] == 2
    assert dispatched(redelivered)["stamps"]["RedeliveryStamp"] == 1
    assert dispatched(retried_before)["retry_count"] == 2


def test_symfony_transport_names_the_received_stamps_transport(
    run_message: Callable[..., Run],
) -> None:
    run = run_message("php", "Ping", "x", settings={"SYMFONY_TRANSPORT": "invoices"})

    assert dispatched(run)["transport"] == "invoices"


@pytest.mark.parametrize("serializer", ["php", "json"])
def test_an_unrecoverable_exception_is_dead_lettered_at_once(
    run_message: Callable[..., Run], serializer: str
) -> None:
    run = run_message(serializer, "Explode", "unrecoverable")

    assert run.exit_code == EXIT_FAILED
    assert run.result == {
        "reason": f"{EXCEPTIONS}UnrecoverableMessageHandlingException: invoice 42 has no customer"
    }


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (
            "recoverable",
            f"{EXCEPTIONS}RecoverableMessageHandlingException: the API said 503",
        ),
        ("other", "RuntimeException: database went away"),
    ],
)
def test_other_exceptions_are_retried_with_their_reason(
    run_message: Callable[..., Run], kind: str, reason: str
) -> None:
    run = run_message("php", "Explode", kind)

    assert run.exit_code == EXIT_RETRY
    assert run.result == {"reason": reason}


def test_the_retry_delay_of_a_recoverable_exception_is_the_retry_delay(
    run_message: Callable[..., Run],
) -> None:
    run = run_message("php", "Explode", "rate-limited")  # getRetryDelay(): 12500 ms

    assert run.exit_code == EXIT_RETRY
    assert run.result == {"reason": "App\\RateLimited: the API said 429", "retry_after_seconds": 13}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not a serialized envelope", "Could not decode"),
        (GONE_BODY, f'Message class "{GONE}" not found during decoding.'),
    ],
)
def test_an_undecodable_php_body_is_dead_lettered(
    run_runner: RunRunner, body: str, reason: str
) -> None:
    run = run_runner(SYMFONY_RUNNER, body, cwd=SYMFONY_APP)

    assert run.exit_code == EXIT_FAILED
    assert run.result is not None
    assert "MessageDecodingFailedException" in run.result["reason"]
    assert reason in run.result["reason"]
    assert run.of_kind("dispatched") == []


def test_a_json_body_without_its_type_attribute_is_dead_lettered(
    run_runner: RunRunner, make_message: Callable[..., dict[str, Any]]
) -> None:
    made = make_message("json", "Ping", "x")
    run = run_runner(SYMFONY_RUNNER, made["body"], cwd=SYMFONY_APP, settings=JSON)

    assert run.exit_code == EXIT_FAILED
    assert run.result is not None
    assert "MessageDecodingFailedException" in run.result["reason"]


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        (
            {"SYMFONY_SERIALIZER_SERVICE": "messenger.transport.symfony_serializer"},
            "SYMFONY_SERIALIZER_SERVICE",
        ),
        ({"SYMFONY_BUS": "messenger.bus.commands"}, "messenger.bus.commands"),
    ],
)
def test_a_service_that_is_not_public_is_retried_with_a_reason_naming_it(
    run_message: Callable[..., Run], setting: dict[str, str], named: str
) -> None:
    run = run_message("php", "Ping", "x", settings=setting)

    assert run.exit_code == EXIT_RETRY
    assert run.result is not None
    assert named in run.result["reason"]
    assert run.of_kind("handled") == []
