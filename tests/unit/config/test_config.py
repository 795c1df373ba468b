"""Config validation: every bad input names the key, the value and what is allowed."""

from __future__ import annotations

import copy
import json
from datetime import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stacks.config import ConfigError, load_config
from stacks.sizing import task_memory_need_mib

ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"][
    "environments"
]


def prod_with(**changes: Any) -> dict[str, Any]:
    """The shipped prod block with ``section={key: value}`` changes merged in."""
    envs = copy.deepcopy(ENVIRONMENTS)
    for section, value in changes.items():
        if isinstance(value, dict) and isinstance(envs["prod"].get(section), dict):
            envs["prod"][section].update(value)
        else:
            envs["prod"][section] = value
    return envs


def problems(envs: dict[str, Any], env: str = "prod", **overrides: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(envs, env, {k.replace("__", "."): v for k, v in overrides.items()})
    return caught.value.problems


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_every_shipped_environment_is_valid(name: str) -> None:
    config = load_config(ENVIRONMENTS, name)
    assert config.name == name
    assert config.region == ENVIRONMENTS[name]["region"]


def test_prod_parses_into_typed_frozen_values() -> None:
    config = load_config(ENVIRONMENTS, "prod")
    assert config.worker.processes == ENVIRONMENTS["prod"]["worker"]["processes"]
    assert config.batch_windows[0].start == time(4, 0)
    assert config.batch_windows[0].timezone == "Asia/Tokyo"
    assert config.retain_data is True
    with pytest.raises(ValidationError, match="frozen"):
        config.worker.processes = 1  # type: ignore[misc]


def test_missing_env_lists_the_known_names() -> None:
    (message,) = problems(ENVIRONMENTS, env="")
    assert "-c env=NAME" in message and "['dev', 'prod', 'stg']" in message


def test_unknown_env_lists_the_known_names() -> None:
    (message,) = problems(ENVIRONMENTS, env="production")
    assert "'production'" in message and "['dev', 'prod', 'stg']" in message


def test_command_line_overrides_are_converted_to_the_key_type() -> None:
    config = load_config(
        ENVIRONMENTS,
        "prod",
        {
            "worker.processes": "6",
            "worker.cpu": "1024",
            "worker.memory_mib": "4096",
            "scaling.min_tasks": "1",
            "scaling.max_tasks": "10",
            "worker.capacity.spot_weight": "3",
            "scaling.max_total_processes": "120",
        },
    )
    assert (config.worker.processes, config.worker.cpu, config.worker.memory_mib) == (6, 1024, 4096)
    assert (config.scaling.min_tasks, config.scaling.max_tasks) == (1, 10)
    assert config.worker.capacity.spot_weight == 3 and config.worker.capacity.spot


def test_invalid_fargate_pair_lists_valid_memory_for_that_cpu() -> None:
    (message,) = problems(prod_with(worker={"cpu": 512, "memory_mib": 512}))
    assert "memory_mib: 512 is not valid with cpu 512" in message
    assert "[1024, 2048, 3072, 4096]" in message


def test_unknown_cpu_lists_valid_cpus() -> None:
    (message,) = problems(prod_with(worker={"cpu": 300}))
    assert "cpu: 300" in message and "256, 512, 1024" in message


def test_processes_below_one() -> None:
    assert any(
        "processes: 0 must be at least 1" in p
        for p in problems(ENVIRONMENTS, worker__processes="0")
    )


def test_min_tasks_above_max_tasks() -> None:
    found = problems(prod_with(scaling={"min_tasks": 5, "max_tasks": 3}))
    assert any("min_tasks: 5 must not exceed max_tasks 3" in p for p in found)


def test_unknown_timezone() -> None:
    window = {**ENVIRONMENTS["prod"]["batch_window"], "timezone": "Asia/Tokio"}
    (message,) = problems(prod_with(batch_window=window))
    assert "batch_window.timezone: 'Asia/Tokio'" in message and "IANA" in message


@pytest.mark.parametrize("end", ["04:00", "03:00"])
def test_window_that_ends_before_it_starts(end: str) -> None:
    window = {**ENVIRONMENTS["prod"]["batch_window"], "end": end}
    (message,) = problems(prod_with(batch_window=window))
    assert f"batch_window.end: '{end}' must be after start '04:00'" in message


def test_malformed_clock() -> None:
    window = {**ENVIRONMENTS["prod"]["batch_window"], "start": "4am"}
    assert any(
        "start: '4am' is not a time of day as HH:MM" in p
        for p in problems(prod_with(batch_window=window))
    )


def test_unknown_keys_are_rejected_at_every_level() -> None:
    envs = prod_with(worker={"procesess": 4}, scaling={"max_task": 3}, monitors={})
    found = problems(envs)
    assert any("worker.procesess: unknown key" in p and "'processes'" in p for p in found)
    assert any("scaling.max_task: unknown key" in p for p in found)
    assert any("prod.monitors: unknown key" in p for p in found)


def test_unknown_override_key_is_rejected() -> None:
    found = problems(ENVIRONMENTS, wrkr__processes="6")
    assert any("-c wrkr.processes: unknown key; did you mean worker.processes" in p for p in found)


def test_override_of_unknown_field_is_rejected() -> None:
    assert any("worker.procs: unknown key" in p for p in problems(ENVIRONMENTS, worker__procs="6"))


def test_total_processes_above_the_connection_cap() -> None:
    (message,) = problems(prod_with(scaling={"max_tasks": 20, "max_total_processes": 100}))
    assert "max_tasks: 20 tasks x 8 processes = 160 exceeds max_total_processes 100" in message
    assert "at most 12 tasks" in message


@pytest.mark.parametrize("timeout", [0, 43200])
def test_job_timeout_out_of_range(timeout: int) -> None:
    (message,) = problems(prod_with(worker={"job_timeout_seconds": timeout}))
    assert f"job_timeout_seconds: {timeout} must be between 1 and 43080" in message
    assert "12 h" in message


def test_wrong_types_name_the_expected_type() -> None:
    found = problems(prod_with(worker={"processes": "many", "spot": "yes"}))
    assert any("processes: 'many' is not a whole number" in p for p in found)
    assert any("spot: 'yes' is not true or false" in p for p in found)


def test_memory_must_hold_every_process_at_its_recycle_limit() -> None:
    (message,) = problems(prod_with(worker={"processes": 8, "cpu": 512, "memory_mib": 1024}))
    need = task_memory_need_mib(8, 200, "callable")
    assert "cannot hold 8 processes" in message and f"{need} MiB" in message


def test_spot_true_says_what_to_write_instead() -> None:
    (message,) = problems(prod_with(worker={"spot": True}))
    assert message.startswith("environments.prod.worker.spot: true is replaced by worker.capacity")
    assert '"spot_weight": 1, "on_demand_weight": 0' in message


def test_spot_false_still_parses() -> None:
    assert load_config(prod_with(worker={"spot": False}), "prod").worker.capacity.spot is False


def test_bad_secret_reference() -> None:
    (message,) = problems(prod_with(worker={"secrets": {"DB_PASSWORD": "vault:/db"}}))
    assert "secrets.DB_PASSWORD: 'vault:/db'" in message


def test_existing_vpc_needs_its_subnets_and_azs() -> None:
    (message,) = problems(prod_with(network={"vpc_id": "vpc-0abc1234"}))
    assert "vpc_id, subnet_ids and availability_zones together" in message


def test_region_is_required_for_lookup_free_synth() -> None:
    envs = copy.deepcopy(ENVIRONMENTS)
    del envs["prod"]["region"]
    (message,) = problems(envs)
    assert message == "environments.prod.region: required: an AWS region such as 'us-east-1'"


def test_every_problem_is_reported_at_once() -> None:
    envs = prod_with(
        worker={"processes": 0, "cpu": 512, "memory_mib": 512, "log_retention_days": 10},
        queue={"max_receive_count": 0},
        scaling={"min_tasks": 9, "max_tasks": 3},
        typo=1,
    )
    found = problems(envs)
    assert len(found) >= 6, found
    keys = [
        "processes",
        "memory_mib",
        "log_retention_days",
        "max_receive_count",
        "min_tasks",
        "typo",
    ]
    for key in keys:
        assert any(f".{key}:" in p for p in found), key


def test_batch_window_values_can_be_overridden() -> None:
    config = load_config(ENVIRONMENTS, "prod", {"batch_window.min_tasks": "10"})
    assert config.batch_windows[0].min_tasks == 10


def test_batch_window_override_needs_a_window() -> None:
    found = problems(ENVIRONMENTS, env="dev", batch_window__min_tasks="2")
    assert any(
        "-c batch_window.min_tasks: environments.dev has no batch_window" in p for p in found
    )


def test_alarm_defaults_derive_the_message_age_and_wait_ten_minutes_for_tasks() -> None:
    alarms = load_config(ENVIRONMENTS, "prod").alarms
    assert alarms.oldest_message_age_minutes is None
    assert alarms.tasks_missing_minutes == 10


def test_alarm_settings_can_be_overridden() -> None:
    config = load_config(
        ENVIRONMENTS,
        "prod",
        {"alarms.oldest_message_age_minutes": "45", "alarms.tasks_missing_minutes": "5"},
    )
    assert (config.alarms.oldest_message_age_minutes, config.alarms.tasks_missing_minutes) == (
        45,
        5,
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("oldest_message_age_minutes", 0, "oldest_message_age_minutes: 0 must be 1 to 20160"),
        ("tasks_missing_minutes", 61, "tasks_missing_minutes: 61 must be 1 to 60"),
        ("email", "on-call", "email: 'on-call' is not an email address"),
    ],
)
def test_bad_alarm_settings(key: str, value: Any, expected: str) -> None:
    (message,) = problems(prod_with(alarms={key: value}))
    assert f"alarms.{expected}" in message


def test_a_bad_memory_value_does_not_hide_the_connection_cap() -> None:
    found = problems(prod_with(worker={"memory_mib": 333}, scaling={"max_tasks": 20}))
    assert any("prod.worker.memory_mib: 333 is not valid with cpu 512" in p for p in found)
    assert any("prod.scaling.max_tasks: 20 tasks x 8 processes = 160" in p for p in found)


def test_a_wrong_type_does_not_hide_the_rules_of_other_values() -> None:
    found = problems(
        prod_with(
            worker={
                "memory_mib": "lots",
                "job_timeout_seconds": 0,
                "spot": True,
            }
        )
    )
    assert any("worker.memory_mib: 'lots' is not a whole number" in p for p in found)
    assert any("worker.job_timeout_seconds: 0 must be between 1 and" in p for p in found)
    assert any("worker.spot: true is replaced by worker.capacity" in p for p in found)


def test_a_single_window_is_reported_as_batch_window() -> None:
    window = {**ENVIRONMENTS["prod"]["batch_window"], "min_tasks": 20}
    (message,) = problems(prod_with(batch_window=window))
    assert message.startswith("environments.prod.batch_window.min_tasks: 20 exceeds")


def test_windows_of_a_list_are_reported_by_index() -> None:
    good = ENVIRONMENTS["prod"]["batch_window"]
    envs = prod_with(batch_windows=[good, {**good, "timezone": "Asia/Tokio"}])
    del envs["prod"]["batch_window"]
    (message,) = problems(envs)
    assert message.startswith("environments.prod.batch_windows[1].timezone: 'Asia/Tokio'")


def test_one_window_and_a_list_conflict() -> None:
    envs = prod_with(batch_windows=[ENVIRONMENTS["prod"]["batch_window"]])
    (message,) = problems(envs)
    assert "batch_window (one) or batch_windows (a list), not both" in message


def test_a_typo_gets_a_did_you_mean() -> None:
    (message,) = problems(prod_with(worker={"procesess": 4}))
    assert "worker.procesess: unknown key" in message and "did you mean 'processes'?" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"network": {"egress": "private"}},
            "egress: 'private' is not allowed; allowed: ['public', 'nat', 'endpoints']",
        ),
        ({"network": {"max_azs": 9}}, "network.max_azs: 9 must be 2 to 6"),
        (
            {"monitoring": {"level": "all"}},
            "prod.monitoring.level: 'all' is not allowed; allowed: ['essential', 'full']",
        ),
        ({"worker": {"log_retention_days": 10}}, "log_retention_days: 10 is not a CloudWatch"),
        ({"worker": {"environment": {"QUEUE_URL": "x"}}}, "environment.QUEUE_URL: 'QUEUE_URL'"),
        ({"queue": []}, "prod.queue: [] is not an object"),
        ({"account": "12"}, "prod.account: '12' is not a 12-digit account id"),
    ],
)
def test_messages_name_the_value_and_what_is_allowed(
    changes: dict[str, Any], expected: str
) -> None:
    found = problems(prod_with(**changes))
    assert any(expected in p for p in found), found
    assert not any("Input should" in p for p in found), found


@pytest.mark.parametrize(("cpu", "memory"), [(8192, 61440), (16384, 122880)])
def test_the_largest_fargate_tasks_are_accepted(cpu: int, memory: int) -> None:
    config = load_config(prod_with(worker={"cpu": cpu, "memory_mib": memory}), "prod")
    assert (config.worker.cpu, config.worker.memory_mib) == (cpu, memory)


def test_new_keys_default_to_the_kits_image_encrypted_logs_no_exec_no_ci() -> None:
    config = load_config(ENVIRONMENTS, "dev")
    assert config.worker.image is None and config.ci is None
    assert (config.worker.encrypt_logs, config.worker.ecs_exec) == (True, False)
    assert config.network.egress == "public"


def test_endpoints_egress_is_accepted() -> None:
    assert load_config(prod_with(network={"egress": "endpoints"}), "prod").network.egress == (
        "endpoints"
    )


# worker.image: tests/unit/config/test_image_config.py


def test_ci_section() -> None:
    config = load_config(
        prod_with(ci={"github_repository": "team/app"}, bootstrap={"qualifier": "qwprod"}), "prod"
    )
    assert config.ci is not None
    assert (config.ci.oidc_provider_arn, config.ci.subject) == (None, "repo")
    found = problems(prod_with(ci={"oidc_provider_arn": "arn:x"}))
    assert any("prod.ci.github_repository: required" in p for p in found)
    assert any("prod.ci.oidc_provider_arn: 'arn:x' is not the ARN" in p for p in found)


def test_monitoring_defaults_to_essential_without_dashboard_or_container_insights() -> None:
    config = load_config(ENVIRONMENTS, "dev")
    assert config.monitoring.level == "essential"
    assert (config.monitoring.dashboard, config.container_insights) == (False, False)


def test_container_insights_is_on_where_the_spot_fallback_reads_it() -> None:
    spot = {"capacity": {"spot_weight": 1, "on_demand_weight": 0}}
    assert load_config(prod_with(worker=spot, scaling={"max_tasks": 6}), "prod").container_insights
    no_fallback = {"capacity": {**spot["capacity"], "fallback_after_minutes": None}}
    assert not load_config(prod_with(worker=no_fallback), "prod").container_insights
    chosen = load_config(prod_with(monitoring={"container_insights": True}), "prod")
    assert chosen.container_insights
