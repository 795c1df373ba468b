"""Writing a plan into cdk.json (`plan --write --env NAME`): the environment's block updated
with the planned keys, the diff shown first, written after confirmation (or with --yes)."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

from scripts._aws import first_problem, require_environment
from scripts._cli import OpsError
from stacks.config import ConfigError, load_config


def planned(current: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """``current`` (an environment's block) with the plan's keys set: each section the plan
    writes (worker, scaling, batch_window) is updated key by key, every other key is kept. An
    on-demand plan removes the section's Spot weights (``worker.capacity``)."""
    merged = dict(current)
    for key, value in block.items():
        if isinstance(value, dict) and isinstance(current.get(key), dict):
            merged[key] = {**current[key], **value}
        else:
            merged[key] = value
    if "worker" in block and "capacity" not in block["worker"]:
        merged["worker"].pop("capacity", None)  # a copy: merged above
    return merged


def planned_text(text: str, env: str, block: dict[str, Any], path: Path) -> str:
    """cdk.json's text with environment ``env`` planned; OpsError when it cannot be written
    safely (unknown environment, several batch windows, a result synth would refuse)."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise OpsError(f"cannot read {path}: {error}") from None
    environments = document.get("context", {}).get("environments", {})
    require_environment(environments, env, path)
    if "batch_windows" in environments[env]:
        raise OpsError(
            f"{env} has batch_windows (several windows): the plan is for one; "
            "merge its block by hand"
        )
    environments[env] = planned(environments[env], block)
    try:
        load_config(environments, env)
    except ConfigError as error:
        raise OpsError(f"the planned {env} would not synthesize: {first_problem(error)}") from None
    return json.dumps(document, indent=2) + "\n"


def write_plan(path: Path, env: str, block: dict[str, Any], yes: bool) -> None:
    """Show the diff of ``path`` with ``env`` planned, then write it once confirmed (``yes``:
    no question; without a terminal to ask on, refused)."""
    before = path.read_text()
    after = planned_text(before, env, block, path)
    if after == before:
        print(f"\n{path} already holds this plan for {env}: nothing to write")
        return
    print(f"\nthe plan written into {path} ({env}):")
    sys.stdout.writelines(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{path.name} (now)",
            tofile=f"{path.name} (planned)",
        )
    )
    if not yes:
        if not sys.stdin.isatty():
            raise OpsError(
                "not written: no terminal to confirm on (pass --yes to write without a question)"
            )
        sys.stdout.flush()
        try:
            answer = input(f"write this into {path}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            raise OpsError(f"not written: {path} is unchanged")
    path.write_text(after)
    print(f"written: {path} ({env}); `make diff ENV={env}` shows what a deploy would change")
