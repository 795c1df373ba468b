"""The README's configuration table documents every key the parser accepts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stacks.config import SECTIONS, TOP_LEVEL_KEYS, WINDOW_KEYS

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_every_config_key_is_in_the_readme_table() -> None:
    keys = {
        f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
    }
    keys |= {key for key in TOP_LEVEL_KEYS if key not in SECTIONS and key != "batch_window"}
    keys |= {f"batch_window.{key}" for key in WINDOW_KEYS - {"start", "end"}}
    missing = sorted(key for key in keys if f"| `{key}`" not in README)
    assert missing == []
    assert "| `batch_window.start` / `.end`" in README
