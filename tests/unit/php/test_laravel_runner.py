"""The Laravel runner (worker_image/recipes/laravel/run-job.php) run as the kit runs commands.

Against the real Laravel from Debian's archive (8.83 on bookworm): tests/php/laravel-app is a
small Laravel application (config/, a migration, jobs in app/Jobs) whose vendor/autoload.php
loads Debian's autoloaders. Bodies are made by Laravel's own producer code (make-payload.php:
Queue::push() with pushRaw printing; produce.php: dispatch() through SqsQueue to moto's SQS).
What the application records (queue events, handled jobs, reported exceptions) is read from
$TEST_OUTPUT_DIR/record.jsonl; failed jobs from the failed_jobs table of its SQLite database.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from worker import contract
from worker.handlers import queue_environment
from worker.settings import WorkQueue

from tests.conftest import REGION, QueuePair
from tests.sqs_helpers import queue_counts
from tests.unit.php.conftest import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_RETRY,
    LARAVEL_APP,
    LARAVEL_RUNNER,
    QUEUE_URL,
    Run,
    RunRunner,
)

MAKE_PAYLOAD = LARAVEL_APP / "make-payload.php"
PRODUCE = LARAVEL_APP / "produce.php"
ARTISAN = LARAVEL_APP / "artisan"

LaravelPhp = Callable[..., str]


@pytest.fixture(scope="session")
def migrated_database(php: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database with the app's tables (`php artisan migrate`), copied by each test."""
    workdir = tmp_path_factory.mktemp("laravel-database")
    database = workdir / "database.sqlite"
    database.touch()
    env = {**os.environ, **app_caches(workdir), "DB_DATABASE": str(database)}
    done = subprocess.run(
        [php, str(ARTISAN), "migrate", "--force"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return database


def app_caches(directory: Path) -> dict[str, str]:
    """Where Laravel writes its provider and package manifests: not into the source tree."""
    return {
        "APP_SERVICES_CACHE": str(directory / "services.php"),
        "APP_PACKAGES_CACHE": str(directory / "packages.php"),
    }


@pytest.fixture
def laravel_env(migrated_database: Path, tmp_path: Path) -> dict[str, str]:
    """The test's settings of the application: its own database and manifests."""
    database = tmp_path / "database.sqlite"
    shutil.copyfile(migrated_database, database)
    return {**app_caches(tmp_path), "DB_DATABASE": str(database)}


@pytest.fixture
def laravel_php(php: str, laravel_env: dict[str, str]) -> LaravelPhp:
    """Run a PHP script of the test app with the test's settings; return its stdout."""

    def output(script: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
        done = subprocess.run(
            [php, str(script), *args],
            env={**os.environ, **laravel_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    return output


@pytest.fixture
def run_body(run_runner: RunRunner, laravel_env: dict[str, str]) -> Callable[..., Run]:
    """Run the runner on one body with the test's settings (plus `settings`)."""

    def run(body: str, **kwargs: Any) -> Run:
        kwargs.setdefault("cwd", LARAVEL_APP)
        kwargs["settings"] = {**laravel_env, **kwargs.get("settings", {})}
        return run_runner(LARAVEL_RUNNER, body, **kwargs)

    return run


@pytest.fixture
def payload(laravel_php: LaravelPhp) -> Callable[..., str]:
    """The SQS body Laravel sends for a job of the test app: `payload("RecordJob", "note")`."""
    return lambda job, *arguments: laravel_php(MAKE_PAYLOAD, f"App\\Jobs\\{job}", *arguments)


@pytest.fixture
def run_job(run_body: Callable[..., Run], payload: Callable[..., str]) -> Callable[..., Run]:
    """Run one job of the test app: `run_job("RecordJob", "note", receive_count=2, ...)`."""
    return lambda job, *arguments, **kwargs: run_body(payload(job, *arguments), **kwargs)


@pytest.fixture
def failed_jobs(laravel_env: dict[str, str]) -> Callable[[], list[dict[str, Any]]]:
    """The rows of the app's failed_jobs table."""

    def rows() -> list[dict[str, Any]]:
        with sqlite3.connect(laravel_env["DB_DATABASE"]) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM failed_jobs ORDER BY id")]

    return rows


def laravel_version(run: Run) -> tuple[int, ...]:
    [booted] = run.of_kind("booted")
    return tuple(int(part) for part in booted["laravel"].split(".")[:2])


def exception_events(run: Run) -> list[str]:
    """The events of a job that threw and was released, on the run's Laravel version."""
    released = ["JobReleasedAfterException"] if laravel_version(run) >= (9, 21) else []
    return ["JobProcessing", "JobExceptionOccurred", *released]


def error_lines(run: Run) -> list[str]:
    """What the application logged at ERROR (config/logging.php: stderr)."""
    return [line for line in run.stderr.splitlines() if ".ERROR: " in line]


def test_a_job_that_succeeds_exits_0_with_the_events_of_queue_work(
    run_job: Callable[..., Run],
) -> None:
    run = run_job("RecordJob", "invoice 7")

    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.result is None
    assert run.of_kind("handled") == [
        {"kind": "handled", "job": "App\\Jobs\\RecordJob", "note": "invoice 7", "attempts": 1}
    ]
    assert run.events == ["JobProcessing", "JobProcessed"]
    assert run.records[-1] == {"kind": "terminated"}  # the application's terminating callbacks
    assert error_lines(run) == []
    assert run.of_kind("reported") == []


def test_a_job_runs_on_its_messages_queue_as_under_queue_work_of_several(
    run_job: Callable[..., Run],
) -> None:
    """On a worker of several queues (`queue:work sqs --queue=high,default`), Laravel's job
    and its events name the queue its message came from: the variables the worker gives a
    command of that message (worker.handlers.queue_environment)."""
    high = WorkQueue(name="high", url=f"{QUEUE_URL.rsplit('/', 1)[0]}/high")
    run = run_job("RecordJob", "urgent", settings=queue_environment(high))

    assert run.exit_code == EXIT_DONE, run.stderr
    queues = [record["queue"] for record in run.of_kind("event")]
    assert queues == [high.url, high.url]  # JobProcessing, JobProcessed
    assert high.url != QUEUE_URL


def test_the_application_is_found_by_laravel_base_path(
    run_job: Callable[..., Run], tmp_path: Path
) -> None:
    run = run_job("RecordJob", "x", cwd=tmp_path, settings={"LARAVEL_BASE_PATH": str(LARAVEL_APP)})

    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.of_kind("booted")[0]["base_path"] == str(LARAVEL_APP)
    assert len(run.of_kind("handled")) == 1


def test_no_application_at_the_base_path_is_retried_with_a_reason(
    run_job: Callable[..., Run], tmp_path: Path
) -> None:
    run = run_job("RecordJob", "x", cwd=tmp_path)

    assert run.exit_code == EXIT_RETRY
    assert run.result is not None
    assert f"LARAVEL_BASE_PATH={tmp_path}" in run.result["reason"]


def test_the_receive_count_is_the_jobs_attempts(run_job: Callable[..., Run]) -> None:
    run = run_job("RecordJob", "x", receive_count=4)

    assert run.exit_code == EXIT_DONE, run.stderr
    assert run.of_kind("handled")[0]["attempts"] == 4


def test_a_job_that_throws_is_retried_after_the_kits_backoff_with_its_reason(
    run_job: Callable[..., Run], failed_jobs: Callable[[], list[dict[str, Any]]]
) -> None:
    run = run_job("ThrowJob", receive_count=1)

    assert run.exit_code == EXIT_RETRY
    assert run.result == {"reason": "RuntimeException: upstream API timed out"}
    assert run.of_kind("reported") == [
        {"kind": "reported", "exception": "RuntimeException", "message": "upstream API timed out"}
    ]
    assert run.events == exception_events(run)
    assert run.of_kind("failed_called") == []
    assert failed_jobs() == []


def test_a_job_that_throws_on_its_last_try_fails_into_failed_jobs(
    run_body: Callable[..., Run],
    payload: Callable[..., str],
    failed_jobs: Callable[[], list[dict[str, Any]]],
) -> None:
    body = payload("ThrowJob")
    run = run_body(body, receive_count=3)  # ThrowJob::$tries = 3

    assert run.exit_code == EXIT_FAILED
    assert run.result == {"reason": "RuntimeException: upstream API timed out"}
    assert run.of_kind("failed_called") == [
        {"kind": "failed_called", "exception": "RuntimeException"}
    ]
    assert "JobFailed" in run.events
    [row] = failed_jobs()
    assert (row["connection"], row["queue"], row["payload"]) == ("sqs", QUEUE_URL, body)
    assert row["exception"].startswith("RuntimeException: upstream API timed out")


def test_a_redriven_job_that_fails_again_records_its_new_failure(
    run_body: Callable[..., Run],
    payload: Callable[..., str],
    failed_jobs: Callable[[], list[dict[str, Any]]],
) -> None:
    """The DLQ's message redriven to the queue is the same payload (the same uuid, UNIQUE in
    failed_jobs): its new failure replaces the old row, as queue:retry forgets it first."""
    body = payload("ThrowJob")  # $tries = 3
    first = run_body(body, receive_count=3)
    [first_row] = failed_jobs()
    again = run_body(body, receive_count=5)

    assert (first.exit_code, again.exit_code) == (EXIT_FAILED, EXIT_FAILED), again.stderr
    assert first_row["exception"].startswith("RuntimeException: upstream API timed out")
    [row] = failed_jobs()
    assert row["uuid"] == first_row["uuid"]
    assert row["exception"].startswith("Illuminate\\Queue\\MaxAttemptsExceededException: ")
    assert again.of_kind("failed_called") == [
        {"kind": "failed_called", "exception": "Illuminate\\Queue\\MaxAttemptsExceededException"}
    ]
    # Only the job's own exception is reported and logged: recording the failure raised none.
    reported = [record["exception"] for record in again.of_kind("reported")]
    assert reported == ["Illuminate\\Queue\\MaxAttemptsExceededException"]
    assert all("MaxAttemptsExceededException" in line for line in error_lines(again))


def test_a_job_received_more_often_than_its_tries_fails_without_running(
    run_job: Callable[..., Run], failed_jobs: Callable[[], list[dict[str, Any]]]
) -> None:
    run = run_job("ThrowJob", receive_count=4)

    assert run.exit_code == EXIT_FAILED
    assert run.result is not None
    # Laravel 8 goes on "... or run too long. The job may have previously timed out."
    assert run.result["reason"].startswith(
        "Illuminate\\Queue\\MaxAttemptsExceededException: "
        "App\\Jobs\\ThrowJob has been attempted too many times"
    )
    assert run.of_kind("handled") == []
    assert len(failed_jobs()) == 1


def test_the_jobs_backoff_is_the_retry_delay(run_job: Callable[..., Run]) -> None:
    first = run_job("BackoffThrowJob", receive_count=1)  # $backoff = [10, 45]
    second = run_job("BackoffThrowJob", receive_count=2)

    assert (first.exit_code, second.exit_code) == (EXIT_RETRY, EXIT_RETRY)
    assert first.result == {"reason": "RuntimeException: rate limited", "retry_after_seconds": 10}
    assert second.result == {"reason": "RuntimeException: rate limited", "retry_after_seconds": 45}


def test_laravel_backoff_is_the_retry_delay_of_jobs_without_one(
    run_job: Callable[..., Run],
) -> None:
    run = run_job("ThrowJob", settings={"LARAVEL_BACKOFF": "20"})

    assert run.exit_code == EXIT_RETRY
    assert run.result is not None
    assert run.result["retry_after_seconds"] == 20


def test_laravel_tries_limits_jobs_without_tries(
    run_job: Callable[..., Run], failed_jobs: Callable[[], list[dict[str, Any]]]
) -> None:
    unlimited = run_job("UntriedThrowJob", receive_count=9)
    limited = run_job("UntriedThrowJob", receive_count=2, settings={"LARAVEL_TRIES": "2"})

    assert unlimited.exit_code == EXIT_RETRY
    assert limited.exit_code == EXIT_FAILED
    assert limited.result == {"reason": "RuntimeException: still broken"}
    assert len(failed_jobs()) == 1


def test_release_30_is_retried_after_30_seconds(run_job: Callable[..., Run]) -> None:
    run = run_job("ReleaseJob")

    assert run.exit_code == EXIT_RETRY
    assert run.result == {
        "reason": "Released by the job (App\\Jobs\\ReleaseJob)",
        "retry_after_seconds": 30,
    }
    assert run.events == ["JobProcessing", "JobProcessed"]  # Laravel 8-10 have no JobReleased


def test_fail_is_dead_lettered_at_once_with_its_reason(
    run_job: Callable[..., Run], failed_jobs: Callable[[], list[dict[str, Any]]]
) -> None:
    run = run_job("FailJob", settings={"LARAVEL_QUEUE_CONNECTION": "sqs-invoices"})

    assert run.exit_code == EXIT_FAILED
    assert run.result == {
        "reason": "Illuminate\\Queue\\ManuallyFailedException: invoice 42 has no customer"
    }
    # fail('...') gives failed() an exception on every version (Laravel < 9.48 passed a string).
    assert run.of_kind("failed_called") == [
        {"kind": "failed_called", "exception": "Illuminate\\Queue\\ManuallyFailedException"}
    ]
    [row] = failed_jobs()
    assert row["connection"] == "sqs-invoices"
    assert row["exception"].startswith("Illuminate\\Queue\\ManuallyFailedException: invoice 42")


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("not json", 'not JSON with a "job" key'),
        ('{"@pointer": "laravel:queue:payload:1"}', "overflow storage"),
    ],
)
def test_a_body_that_is_no_laravel_payload_is_dead_lettered_without_booting(
    run_body: Callable[..., Run], body: str, what: str
) -> None:
    run = run_body(body)

    assert run.exit_code == EXIT_FAILED
    assert run.result is not None
    assert what in run.result["reason"]
    assert run.records == []


def test_the_kits_max_receive_count_is_the_default_tries(run_job: Callable[..., Run]) -> None:
    """The task's WORKER_MAX_RECEIVE_COUNT: the last receive's failure is final (failed(), a
    failed_jobs row, the DLQ with its reason), not SQS's silent redrive."""
    settings = {contract.MAX_RECEIVE_COUNT_VARIABLE: "3"}  # the name the task definition sets
    before_last = run_job("UntriedThrowJob", receive_count=2, settings=settings)
    last = run_job("UntriedThrowJob", receive_count=3, settings=settings)
    no_limit = run_job(
        "UntriedThrowJob", receive_count=3, settings={**settings, "LARAVEL_TRIES": "0"}
    )

    assert before_last.exit_code == EXIT_RETRY
    assert last.exit_code == EXIT_FAILED
    assert last.result == {"reason": "RuntimeException: still broken"}
    assert "JobFailed" in last.events
    assert no_limit.exit_code == EXIT_RETRY


# Laravel's own producer and SQS driver, over moto's SQS: the app's Aws\Sqs\SqsClient is
# App\Support\AsyncAwsSqsClient (async-aws), built by Laravel's SqsConnector.


@pytest.fixture
def sqs_settings(moto_endpoint: str) -> Callable[[QueuePair], dict[str, str]]:
    return lambda pair: {
        "SQS_QUEUE": pair.url,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": REGION,
    }


def receive_all(
    sqs_client: Any,
    url: str,
    count: int,
    attributes: tuple[str, ...] = ("ApproximateReceiveCount",),
) -> Iterator[dict[str, Any]]:
    """`count` messages of the queue, as the kit receives them (with their receive count, or
    the system `attributes` named)."""
    received = 0
    while received < count:
        messages = sqs_client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=list(attributes),
        ).get("Messages", [])
        assert messages, f"{received} of {count} messages received"
        received += len(messages)
        yield from messages


def test_jobs_dispatched_through_laravels_sqs_queue_run_through_the_runner(
    laravel_php: LaravelPhp,
    run_body: Callable[..., Run],
    make_queue_pair: Callable[..., QueuePair],
    sqs_client: Any,
    sqs_settings: Callable[[QueuePair], dict[str, str]],
) -> None:
    pair = make_queue_pair()
    laravel_php(PRODUCE, "3", env=sqs_settings(pair))

    runs = [
        run_body(
            message["Body"],
            receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
        )
        for message in receive_all(sqs_client, pair.url, 3)
    ]

    assert [run.exit_code for run in runs] == [EXIT_DONE] * 3, [run.stderr for run in runs]
    handled = [record for run in runs for record in run.of_kind("handled")]
    assert sorted(record["note"] for record in handled) == [
        "produced-1",
        "produced-2",
        "produced-3",
    ]
    assert {record["attempts"] for record in handled} == {1}


def test_the_adapter_serves_laravels_own_sqs_worker_and_commands(
    laravel_php: LaravelPhp,
    make_queue_pair: Callable[..., QueuePair],
    sqs_client: Any,
    sqs_settings: Callable[[QueuePair], dict[str, str]],
    tmp_path: Path,
) -> None:
    """`queue:work sqs --once` (receive, delete after success, the job's release(30) as
    changeMessageVisibility) and `queue:clear sqs` (the queue's size, purge) over the adapter."""
    pair = make_queue_pair()
    settings = {**sqs_settings(pair), "TEST_OUTPUT_DIR": str(tmp_path)}
    laravel_php(PRODUCE, "1", env=settings)
    laravel_php(PRODUCE, "1", "App\\Jobs\\ReleaseJob", env=settings)

    for _ in range(2):
        laravel_php(ARTISAN, "queue:work", "sqs", "--once", env=settings)

    handled = [
        line for line in (tmp_path / "record.jsonl").read_text().splitlines() if "handled" in line
    ]
    assert len(handled) == 1 and '"note":"produced-1"' in handled[0]
    assert queue_counts(sqs_client, pair.url) == (0, 1)  # RecordJob deleted, ReleaseJob delayed

    laravel_php(PRODUCE, "2", env=settings)
    cleared = laravel_php(ARTISAN, "queue:clear", "sqs", "--force", env=settings)

    assert "Cleared 2 jobs" in cleared
    assert queue_counts(sqs_client, pair.url) == (0, 0)


def test_a_config_cached_at_build_time_does_not_hide_the_tasks_settings(
    php: str,
    payload: Callable[..., str],
    run_body: Callable[..., Run],
    laravel_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """`php artisan config:cache` in the image's build bakes the build's environment into
    bootstrap/cache/config.php, and Laravel then ignores the environment: the task's secrets
    (DB_PASSWORD) and settings must still reach config(). APP_CONFIG_CACHE set by the team
    keeps the cache in use."""
    app = tmp_path / "app"
    shutil.copytree(LARAVEL_APP, app)
    build = {"DB_PASSWORD": "", "SQS_QUEUE": "build-queue"}
    env = {key: value for key, value in os.environ.items() if key != "APP_CONFIG_CACHE"}
    done = subprocess.run(
        [php, str(app / "artisan"), "config:cache"],
        env={**env, **laravel_env, **build},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cached = app / "bootstrap" / "cache" / "config.php"
    assert cached.exists()

    body = payload(
        "ConfigJob", "database.connections.sqlite.password", "queue.connections.sqs.queue"
    )
    task = {"LARAVEL_BASE_PATH": str(app), "DB_PASSWORD": "s3cret", "SQS_QUEUE": "task-queue"}
    run = run_body(body, settings=task)
    kept = run_body(body, settings={**task, "APP_CONFIG_CACHE": str(cached)})

    assert (run.exit_code, kept.exit_code) == (EXIT_DONE, EXIT_DONE), run.stderr + kept.stderr
    assert run.of_kind("config")[0]["values"] == {
        "database.connections.sqlite.password": "s3cret",
        "queue.connections.sqs.queue": "task-queue",
    }
    assert kept.of_kind("config")[0]["values"] == {
        "database.connections.sqlite.password": "",
        "queue.connections.sqs.queue": "build-queue",
    }


@pytest.mark.parametrize(
    "store",
    [
        {},  # the app's default: the database store on its SQLite database
        {"CACHE_DRIVER": "file"},  # CACHE_FILE_PATH: one task's processes only
    ],
)
def test_max_exceptions_are_counted_across_the_runners_processes(
    run_body: Callable[..., Run],
    payload: Callable[..., str],
    failed_jobs: Callable[[], list[dict[str, Any]]],
    store: dict[str, str],
    tmp_path: Path,
) -> None:
    """$maxExceptions = 2 (and $tries = 10): one process per receive, so Laravel's count of the
    job's exceptions must be in a cache store the processes share."""
    settings = {**store, "CACHE_FILE_PATH": str(tmp_path / "cache")}
    body = payload("MaxExceptionsJob")
    first = run_body(body, receive_count=1, settings=settings)
    second = run_body(body, receive_count=2, settings=settings)

    assert first.exit_code == EXIT_RETRY, first.stderr
    assert second.exit_code == EXIT_FAILED, second.stderr
    assert second.result == {"reason": "RuntimeException: attempt 2 failed"}
    assert second.of_kind("failed_called") == [
        {"kind": "failed_called", "exception": "RuntimeException"}
    ]
    [row] = failed_jobs()
    assert row["exception"].startswith("RuntimeException: attempt 2 failed")


def test_max_exceptions_with_a_cache_of_one_process_are_said_to_be_not_counted(
    run_body: Callable[..., Run], payload: Callable[..., str]
) -> None:
    body = payload("MaxExceptionsJob")
    runs = [
        run_body(body, receive_count=count, settings={"CACHE_DRIVER": "array"}) for count in (1, 2)
    ]

    assert [run.exit_code for run in runs] == [EXIT_RETRY, EXIT_RETRY]  # never failed
    assert "$maxExceptions of App\\Jobs\\MaxExceptionsJob is not counted" in runs[1].stderr


# FIFO queues: Laravel before 12 sends no message group, so the app dispatches through the kit's
# KitSqsFifoQueue (worker_image/recipes/laravel), registered as its `sqs` driver.


def test_jobs_dispatched_to_a_fifo_queue_carry_the_ids_laravel_12_would_send(
    laravel_php: LaravelPhp,
    run_body: Callable[..., Run],
    make_queue_pair: Callable[..., QueuePair],
    sqs_client: Any,
    sqs_settings: Callable[[QueuePair], dict[str, str]],
) -> None:
    """The group from the job's messageGroup, the deduplication id from its deduplicationId()
    (two dispatches of one id within 5 minutes queue one message) or else the payload's uuid,
    no per-message delay (SQS refuses one on FIFO); the runner runs each in its group."""
    pair = make_queue_pair(fifo=True)
    settings = sqs_settings(pair)
    laravel_php(PRODUCE, "3", env={**settings, "MESSAGE_GROUP": "tenant-7"})
    unique = ("2", "App\\Jobs\\UniqueJob", "only-once")
    laravel_php(PRODUCE, *unique, env={**settings, "MESSAGE_GROUP": "tenant-8"})
    laravel_php(PRODUCE, "1", env={**settings, "MESSAGE_GROUP": "late", "DELAY_SECONDS": "600"})

    messages = list(receive_all(sqs_client, pair.url, 5, ("All",)))

    assert queue_counts(sqs_client, pair.url) == (0, 5)  # the unique job's second is dropped
    groups = [message["Attributes"]["MessageGroupId"] for message in messages]
    assert sorted(groups) == ["late", "tenant-7", "tenant-7", "tenant-7", "tenant-8"]
    runs = [
        run_body(
            message["Body"],
            settings={contract.MESSAGE_GROUP_ID_VARIABLE: message["Attributes"]["MessageGroupId"]},
        )
        for message in messages
    ]
    assert [run.exit_code for run in runs] == [EXIT_DONE] * 5, [run.stderr for run in runs]
    handled = [(r["group"], r["note"]) for run in runs for r in run.of_kind("handled")]
    assert [note for group, note in handled if group == "tenant-7"] == [
        "tenant-7-1",
        "tenant-7-2",
        "tenant-7-3",
    ]  # in the order dispatched
    assert sorted(handled)[0] == ("late", "late-1") and sorted(handled)[-1] == (
        "tenant-8",
        "only-once",
    )
    for message in messages:
        deduplication_id = message["Attributes"]["MessageDeduplicationId"]
        if message["Attributes"]["MessageGroupId"] == "tenant-8":
            assert deduplication_id == "only-once"
        else:
            assert deduplication_id == json.loads(message["Body"])["uuid"]


def test_a_job_without_a_group_is_refused_by_name_for_a_fifo_queue(
    php: str,
    laravel_env: dict[str, str],
    make_queue_pair: Callable[..., QueuePair],
    sqs_client: Any,
    sqs_settings: Callable[[QueuePair], dict[str, str]],
) -> None:
    pair = make_queue_pair(fifo=True)
    done = subprocess.run(
        [php, str(PRODUCE), "1"],
        env={**os.environ, **laravel_env, **sqs_settings(pair)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "App\\Jobs\\RecordJob has no message group" in done.stdout + done.stderr
    assert pair.url.rsplit("/", 1)[1] in done.stdout + done.stderr
    assert queue_counts(sqs_client, pair.url) == (0, 0)
