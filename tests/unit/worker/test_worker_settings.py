"""Settings: defaults, validation (every fault named at once), backoff arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
from worker.settings import Settings, SettingsError

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/work"


def test_only_queue_url_is_required_and_defaults_follow_the_contract() -> None:
    settings = Settings.from_env({"QUEUE_URL": QUEUE})
    assert settings.handler_mode == "callable"
    assert settings.handler == "worker.examples:sleep_job"
    assert settings.visibility_timeout_seconds == 120
    assert settings.heartbeat_interval_seconds == 30
    assert settings.receive_wait_seconds == 20
    assert settings.process_name == "worker_local"
    assert settings.dead_letter_queue_url is None
    assert settings.region == "eu-west-1"  # from the queue URL when AWS_REGION is unset
    assert not settings.task_protection_active  # no ECS_AGENT_URI


def test_missing_queue_url_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="QUEUE_URL"):
        Settings.from_env({})


def test_every_bad_value_is_reported_at_once() -> None:
    env = {
        "QUEUE_URL": QUEUE,
        "WORKER_PROCESSES": "4",
        "JOB_TIMEOUT_SECONDS": "soon",
        "VISIBILITY_TIMEOUT_SECONDS": "0",
        "WORKER_HANDLER_MODE": "thread",
        "TASK_PROTECTION": "maybe",
        "RECEIVE_WAIT_SECONDS": "21",
        "MAX_JOBS_PER_PROCESS": "-1",
    }
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    for name in (
        "JOB_TIMEOUT_SECONDS='soon'",
        "VISIBILITY_TIMEOUT_SECONDS='0'",
        "WORKER_HANDLER_MODE='thread'",
        "TASK_PROTECTION='maybe'",
        "RECEIVE_WAIT_SECONDS='21'",
        "MAX_JOBS_PER_PROCESS='-1'",
    ):
        assert name in message


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"HEARTBEAT_INTERVAL_SECONDS": "120"}, "HEARTBEAT_INTERVAL_SECONDS"),
        ({"VISIBILITY_TIMEOUT_SECONDS": "50000"}, "VISIBILITY_TIMEOUT_SECONDS"),
        ({"JOB_TIMEOUT_SECONDS": "43200"}, "JOB_TIMEOUT_SECONDS"),
        (
            {"RETRY_BACKOFF_BASE_SECONDS": "60", "RETRY_BACKOFF_MAX_SECONDS": "10"},
            "RETRY_BACKOFF_MAX",
        ),
        ({"WORKER_HANDLER": "not a callable"}, "WORKER_HANDLER"),
        ({"WORKER_HANDLER_MODE": "command"}, "WORKER_HANDLER"),
        ({"TASK_PROTECTION_EXPIRES_MINUTES": "3000"}, "TASK_PROTECTION_EXPIRES_MINUTES"),
    ],
)
def test_inconsistent_values_fail_naming_the_variable(extra: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({"QUEUE_URL": QUEUE, **extra})


def test_backoff_doubles_per_receive_and_is_capped() -> None:
    settings = Settings.from_env(
        {"QUEUE_URL": QUEUE, "RETRY_BACKOFF_BASE_SECONDS": "10", "RETRY_BACKOFF_MAX_SECONDS": "600"}
    )
    assert [settings.backoff_seconds(n) for n in (1, 2, 3, 4, 7, 8, 100)] == [
        10,
        20,
        40,
        80,
        600,
        600,
        600,
    ]


def test_protection_needs_the_agent_and_the_switch() -> None:
    on = {"QUEUE_URL": QUEUE, "ECS_AGENT_URI": "http://169.254.170.2/api/x/"}
    assert Settings.from_env(on).task_protection_active
    assert Settings.from_env(on).ecs_agent_uri == "http://169.254.170.2/api/x"
    assert not Settings.from_env({**on, "TASK_PROTECTION": "off"}).task_protection_active


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({"QUEUE_URL": QUEUE})
    with pytest.raises(AttributeError):
        settings.queue_url = "other"  # type: ignore[misc]


def test_workdir_is_where_commands_run_and_must_exist(tmp_path: Path) -> None:
    settings = Settings.from_env({"QUEUE_URL": QUEUE, "WORKER_WORKDIR": str(tmp_path)})
    assert settings.workdir == str(tmp_path)
    assert Settings.from_env({"QUEUE_URL": QUEUE}).workdir is None
    with pytest.raises(SettingsError, match="WORKER_WORKDIR='/no/such/app'"):
        Settings.from_env({"QUEUE_URL": QUEUE, "WORKER_WORKDIR": "/no/such/app"})


def test_a_jobs_output_is_bounded_by_default_and_the_bounds_are_validated() -> None:
    default = Settings.from_env({"QUEUE_URL": QUEUE})
    assert (default.output_max_bytes_per_job, default.output_max_events_per_job) == (
        1_048_576,
        1000,
    )
    unlimited = Settings.from_env(
        {"QUEUE_URL": QUEUE, "OUTPUT_MAX_BYTES_PER_JOB": "0", "OUTPUT_MAX_EVENTS_PER_JOB": "0"}
    )
    assert (unlimited.output_max_bytes_per_job, unlimited.output_max_events_per_job) == (0, 0)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {"QUEUE_URL": QUEUE, "OUTPUT_MAX_BYTES_PER_JOB": "-1", "OUTPUT_MAX_EVENTS_PER_JOB": "x"}
        )
    assert "OUTPUT_MAX_BYTES_PER_JOB='-1'" in str(raised.value)
    assert "OUTPUT_MAX_EVENTS_PER_JOB='x'" in str(raised.value)
