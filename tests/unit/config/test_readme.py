"""The README's configuration table documents every key of the models, with its default."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stacks.config import config_keys

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
# | `key` | type | default | meaning |, with escaped pipes (\|) inside cells
ROWS = {
    cells[1].strip().strip("`"): cells[3].strip()
    for line in README.splitlines()
    if line.startswith("| `") and len(cells := re.split(r"(?<!\\)\|", line)) == 6
}


def documented_default(default: Any) -> str:
    """How the table writes a model default: unset, or its JSON (strings without quotes)."""
    if default is None:
        return "unset"
    return f"`{default if isinstance(default, str) else json.dumps(default)}`"


def test_every_key_has_a_row_with_its_default() -> None:
    expected = {
        key: "required"
        if k.field.is_required()
        else documented_default(k.field.get_default(call_default_factory=True))
        for key, k in config_keys().items()
    }
    assert {key: ROWS.get(key) for key in expected} == expected


def test_no_row_names_a_key_that_does_not_exist() -> None:
    assert sorted(set(ROWS) - set(config_keys())) == []
