"""The README's configuration table documents every key of the models, with its default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stacks.config import config_keys, readme_rows
from stacks.sizing import KIT_SLOT_OVERHEAD_MIB, KIT_TASK_OVERHEAD_MIB, PAUSE_READER_MIB

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
ROWS = {key: default for key, (default, _) in readme_rows(README).items()}


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


def test_the_memory_row_states_the_kits_own_share_as_sizing_counts_it() -> None:
    meaning = readme_rows(README)["worker.memory_mib"][1]
    *first, last = [f"{mib} (`{mode}`)" for mode, mib in KIT_SLOT_OVERHEAD_MIB.items()]
    per_slot = f"{', '.join(first)} or {last}"
    assert f"{KIT_TASK_OVERHEAD_MIB} MiB a task + {per_slot} MiB a process" in meaning
    assert f"in `consumer` mode {PAUSE_READER_MIB} MiB more a task" in meaning
