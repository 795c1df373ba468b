"""-c KEY=VALUE: every key can be overridden, with its type; anything else fails clearly."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.config import ConfigError, load_config, overrides_from_context
from tests.unit.config.test_config import ENVIRONMENTS


def override_problems(overrides: dict[str, Any], env: str = "prod") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(ENVIRONMENTS, env, overrides)
    return caught.value.problems


def test_top_level_keys_can_be_overridden() -> None:
    config = load_config(
        ENVIRONMENTS,
        "prod",
        {"retain_data": "false", "region": "us-east-1", "account": "012345678901"},
    )
    assert (config.retain_data, config.region, config.account) == (
        False,
        "us-east-1",
        "012345678901",
    )


def test_text_keys_keep_values_that_look_like_numbers() -> None:
    """An account id, a numeric tag or a time zone stay strings; numbers still become numbers."""
    envs = copy.deepcopy(ENVIRONMENTS)
    envs["prod"]["worker"]["image"] = {"repository": "team/app", "tag": "v1"}
    config = load_config(
        envs,
        "prod",
        {"account": "123456789012", "worker.image.tag": "20261204", "worker.processes": "6"},
    )
    assert config.account == "123456789012"
    assert config.worker.image is not None and config.worker.image.tag == "20261204"
    assert config.worker.processes == 6


def test_keys_of_nested_sections_and_object_entries_can_be_overridden() -> None:
    envs = copy.deepcopy(ENVIRONMENTS)
    envs["prod"]["worker"]["image"] = {"repository": "team/app", "tag": "v1"}
    config = load_config(
        envs,
        "prod",
        {
            "worker.image.tag": "v2",
            "worker.environment.LOG_LEVEL": "debug",
            "alarms.email": "a@b.io",
        },
    )
    assert config.worker.image is not None and config.worker.image.tag == "v2"
    assert config.worker.environment == {"LOG_LEVEL": "debug"}
    assert config.alarms.email == "a@b.io"


def test_null_unsets_an_optional_value() -> None:
    envs = copy.deepcopy(ENVIRONMENTS)
    envs["prod"]["alarms"] = {"oldest_message_age_minutes": 45}
    config = load_config(envs, "prod", {"alarms.oldest_message_age_minutes": "null"})
    assert config.alarms.oldest_message_age_minutes is None


def test_a_bad_override_value_names_the_key_and_value() -> None:
    (message,) = override_problems({"worker.spot": "yes"})
    assert message == "environments.prod.worker.spot: 'yes' is not true or false"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("processes", "-c processes: unknown key; did you mean worker.processes?"),
        ("retain_dat", "-c retain_dat: unknown key; did you mean retain_data?"),
        ("worker", "-c worker: a section; override one of its keys, e.g. worker.processes"),
        ("batch_windows.0.min_tasks", "-c batch_windows.0.min_tasks: unknown key; did you mean"),
    ],
)
def test_keys_that_cannot_be_overridden(key: str, expected: str) -> None:
    (message,) = override_problems({key: "6"})
    assert message.startswith(expected), message


@pytest.mark.parametrize("key", ["worker.image.tag", "ci.branch"])
def test_keys_of_a_section_the_environment_lacks(key: str) -> None:
    (message,) = override_problems({key: "v2"})
    assert message.startswith(f"-c {key}: environments.prod has no ")


def test_overrides_are_told_apart_from_the_cdks_own_context() -> None:
    context = {
        "@aws-cdk/aws-ecs:removeDefaultDeploymentAlarm": True,
        "aws:cdk:enable-path-metadata": True,
        "availability-zones:account=123456789012:region=ap-northeast-1": ["a"],
        "acknowledged-issue-numbers": [1],
        "cli-telemetry": False,
        "env": "prod",
        "environments": ENVIRONMENTS,
        "retain_data": "false",
        "worker.processes": "6",
        "procesess": "6",
    }
    assert overrides_from_context(context) == {
        "retain_data": "false",
        "worker.processes": "6",
        "procesess": "6",
    }
