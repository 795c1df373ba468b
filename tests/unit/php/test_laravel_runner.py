"""The Laravel runner (worker_image/recipes/laravel/run-job.php) run as the kit runs commands.

Bodies are Laravel's SQS payloads for the test application's jobs (tests/php/laravel-app/
make-payload.php, Queue::createPayload's format); Worker::process() and Job are copies of
Laravel's code (tests/php/fakes/).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from worker import contract

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


@pytest.fixture
def run_job(run_runner: RunRunner, php_output: Callable[..., str]) -> Callable[..., Run]:
    """Run one job of the test app: `run_job("RecordJob", "note", receive_count=2, ...)`."""

    def run(job: str, *arguments: str, **kwargs: object) -> Run:
        body = php_output(MAKE_PAYLOAD, f"App\\Jobs\\{job}", *arguments)
        kwargs.setdefault("cwd", LARAVEL_APP)
        return run_runner(LARAVEL_RUNNER, body, **kwargs)

    return run


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


def test_the_application_is_found_by_laravel_base_path(
    run_job: Callable[..., Run], tmp_path: Path
) -> None:
    run = run_job("RecordJob", "x", cwd=tmp_path, settings={"LARAVEL_BASE_PATH": str(LARAVEL_APP)})

    assert run.exit_code == EXIT_DONE, run.stderr
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
    run_job: Callable[..., Run],
) -> None:
    run = run_job("ThrowJob", receive_count=1)

    assert run.exit_code == EXIT_RETRY
    assert run.result == {"reason": "RuntimeException: upstream API timed out"}
    assert run.of_kind("reported")[0]["message"] == "upstream API timed out"
    assert "JobReleasedAfterException" in run.events
    assert run.of_kind("failed_jobs") == []


def test_a_job_that_throws_on_its_last_try_fails_into_failed_jobs(
    run_job: Callable[..., Run],
) -> None:
    run = run_job("ThrowJob", receive_count=3)  # ThrowJob::$tries = 3

    assert run.exit_code == EXIT_FAILED
    assert run.result == {"reason": "RuntimeException: upstream API timed out"}
    assert run.of_kind("failed_called") == [
        {"kind": "failed_called", "exception": "RuntimeException"}
    ]
    [row] = run.of_kind("failed_jobs")
    assert (row["connection"], row["queue"]) == ("sqs", QUEUE_URL)


def test_a_job_received_more_often_than_its_tries_fails_without_running(
    run_job: Callable[..., Run],
) -> None:
    run = run_job("ThrowJob", receive_count=4)

    assert run.exit_code == EXIT_FAILED
    assert run.result is not None
    assert run.result["reason"] == (
        "Illuminate\\Queue\\MaxAttemptsExceededException: "
        "App\\Jobs\\ThrowJob has been attempted too many times."
    )
    assert run.of_kind("handled") == []


def test_the_jobs_backoff_is_the_retry_delay(run_job: Callable[..., Run]) -> None:
    run = run_job("BackoffThrowJob", receive_count=2)  # $backoff = [10, 45]

    assert run.exit_code == EXIT_RETRY
    assert run.result == {"reason": "RuntimeException: rate limited", "retry_after_seconds": 45}


def test_laravel_backoff_is_the_retry_delay_of_jobs_without_one(
    run_job: Callable[..., Run],
) -> None:
    run = run_job("ThrowJob", settings={"LARAVEL_BACKOFF": "20"})

    assert run.exit_code == EXIT_RETRY
    assert run.result is not None
    assert run.result["retry_after_seconds"] == 20


def test_laravel_tries_limits_jobs_without_tries(run_job: Callable[..., Run]) -> None:
    unlimited = run_job("UntriedThrowJob", receive_count=9)
    limited = run_job("UntriedThrowJob", receive_count=2, settings={"LARAVEL_TRIES": "2"})

    assert unlimited.exit_code == EXIT_RETRY
    assert limited.exit_code == EXIT_FAILED
    assert limited.result == {"reason": "RuntimeException: still broken"}


def test_release_30_is_retried_after_30_seconds(run_job: Callable[..., Run]) -> None:
    run = run_job("ReleaseJob")

    assert run.exit_code == EXIT_RETRY
    assert run.result == {
        "reason": "Released by the job (App\\Jobs\\ReleaseJob)",
        "retry_after_seconds": 30,
    }
    assert "JobReleased" in run.events


def test_fail_is_dead_lettered_at_once_with_its_reason(run_job: Callable[..., Run]) -> None:
    run = run_job("FailJob", settings={"LARAVEL_QUEUE_CONNECTION": "sqs-invoices"})

    assert run.exit_code == EXIT_FAILED
    assert run.result == {
        "reason": "Illuminate\\Queue\\ManuallyFailedException: invoice 42 has no customer"
    }
    assert len(run.of_kind("failed_called")) == 1
    [row] = run.of_kind("failed_jobs")
    assert row["connection"] == "sqs-invoices"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("not json", 'not JSON with a "job" key'),
        ('{"@pointer": "laravel:queue:payload:1"}', "overflow storage"),
    ],
)
def test_a_body_that_is_no_laravel_payload_is_dead_lettered_without_booting(
    run_runner: RunRunner, body: str, what: str
) -> None:
    run = run_runner(LARAVEL_RUNNER, body, cwd=LARAVEL_APP)

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
