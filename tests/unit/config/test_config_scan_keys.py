"""The keys the compliance work added: worker.encrypt_logs and network.egress endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stacks.config import ConfigError, load_config

ENVIRONMENTS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[3] / "cdk.json").read_text()
)["context"]["environments"]


def test_logs_are_encrypted_unless_turned_off() -> None:
    assert load_config(ENVIRONMENTS, "prod").worker.encrypt_logs is True
    off = load_config(ENVIRONMENTS, "prod", {"worker.encrypt_logs": "false"})
    assert off.worker.encrypt_logs is False


def test_encrypt_logs_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(ENVIRONMENTS, "prod", {"worker.encrypt_logs": "sometimes"})
    (problem,) = caught.value.problems
    assert "environments.prod.worker.encrypt_logs" in problem and "sometimes" in problem


def test_endpoints_is_an_egress_choice() -> None:
    config = load_config(ENVIRONMENTS, "prod", {"network.egress": "endpoints"})
    assert config.network.egress == "endpoints"
    with pytest.raises(ConfigError) as caught:
        load_config(ENVIRONMENTS, "prod", {"network.egress": "private"})
    (problem,) = caught.value.problems
    assert "environments.prod.network.egress" in problem and "private" in problem
    assert "endpoints" in problem
