"""The checked-in JSON Schema is the models' schema, and editors apply it to cdk.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from stacks.config import json_schema

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_DIR = ROOT / "schema"
CDK_JSON: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())
REGENERATE = ".venv/bin/python -m stacks.config --schema > schema/environment.schema.json"


def test_checked_in_schema_is_generated_from_the_models() -> None:
    checked_in = (SCHEMA_DIR / "environment.schema.json").read_text()
    assert (
        checked_in == json.dumps(json_schema((ROOT / "README.md").read_text()), indent=2) + "\n"
    ), f"stale; run: {REGENERATE}"


def cdk_json_validator() -> Draft202012Validator:
    """The wrapper schema editors use for cdk.json, resolving its reference the way they do."""
    environment = json.loads((SCHEMA_DIR / "environment.schema.json").read_text())
    registry: Registry[Any] = Registry().with_resource(
        "environment.schema.json", Resource.from_contents(environment, DRAFT202012)
    )
    wrapper = json.loads((SCHEMA_DIR / "cdk.schema.json").read_text())
    return Draft202012Validator(wrapper, registry=registry)


def test_shipped_cdk_json_passes_the_editor_schema() -> None:
    assert [e.message for e in cdk_json_validator().iter_errors(CDK_JSON)] == []


@pytest.mark.parametrize(
    ("section", "change"),
    [
        ("worker", {"procesess": 4}),
        ("worker", {"processes": "4"}),
        ("worker", {"architecture": "arm"}),
        ("batch_window", {"start": "4am"}),
    ],
)
def test_editor_schema_flags_what_the_models_reject(section: str, change: dict[str, Any]) -> None:
    cdk_json = copy.deepcopy(CDK_JSON)
    cdk_json["context"]["environments"]["prod"][section].update(change)
    assert list(cdk_json_validator().iter_errors(cdk_json)) != []


def test_keys_carry_their_readme_meaning() -> None:
    defs = json.loads((SCHEMA_DIR / "environment.schema.json").read_text())["$defs"]
    spot = defs["CapacityConfig"]["properties"]["spot_weight"]["description"]
    assert spot.startswith("share of the tasks above the base on FARGATE_SPOT")


def test_vscode_applies_the_schema_to_cdk_json() -> None:
    settings = json.loads((ROOT / ".vscode" / "settings.json").read_text())
    (mapping,) = settings["json.schemas"]
    assert mapping["fileMatch"] == ["/cdk.json"]
    assert (ROOT / mapping["url"]).resolve() == SCHEMA_DIR / "cdk.schema.json"
