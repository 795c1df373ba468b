#!/usr/bin/env python3
"""CDK app: load the chosen environment's config, build its stacks, check them, synth.

cdk synth -c env=prod [-c worker.processes=6 -c retain_data=false ...]

Without ``-c env`` the app holds every environment's stacks, so ``cdk ls`` lists them all;
name stacks (``cdk diff 'QueueWorker-dev-*'``) or pass ``-c env=NAME`` to act on one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App

from stacks.app_builder import build_all
from stacks.config import ConfigError, duplicated_keys, load_config, overrides_from_context

PROJECT_DIR = Path(__file__).resolve().parent  # where cdk.json is: worker.image.directory's base


def cli_context() -> dict[str, Any]:
    """Every context value the CDK CLI passed (cdk.json, cdk.context.json and -c), by key."""
    context: dict[str, Any] = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    overflow = os.environ.get("CONTEXT_OVERFLOW_LOCATION_ENV")
    if overflow and Path(overflow).is_file():
        context |= json.loads(Path(overflow).read_text())
    return context


def main() -> None:
    app = App()
    get = app.node.try_get_context
    environments = get("environments")
    names = list(environments) if environments and not get("env") else [get("env")]
    overrides = overrides_from_context(cli_context())
    try:
        if duplicates := duplicated_keys((PROJECT_DIR / "cdk.json").read_text()):
            raise ConfigError(duplicates)
        configs = [
            load_config(environments, name, overrides, project_dir=PROJECT_DIR) for name in names
        ]
        build_all(app, configs)
    except ConfigError as error:
        print(f"Invalid configuration:\n{error}", file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
