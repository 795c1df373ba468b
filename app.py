#!/usr/bin/env python3
"""CDK app: load the chosen environment's config, build its stacks, check them, synth.

cdk synth -c env=prod [-c worker.processes=6 ...]

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
from stacks.config import ConfigError, load_config


def context_keys() -> set[str]:
    """Every context key the CDK CLI passed (cdk.json, cdk.context.json and -c), by name."""
    keys = set(json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}"))
    overflow = os.environ.get("CONTEXT_OVERFLOW_LOCATION_ENV")
    if overflow and Path(overflow).is_file():
        keys |= set(json.loads(Path(overflow).read_text()))
    return keys


def main() -> None:
    app = App()
    get = app.node.try_get_context
    overrides: dict[str, Any] = {
        key: get(key) for key in sorted(context_keys()) if "." in key and not key.startswith("@")
    }
    environments = get("environments")
    names = list(environments) if environments and not get("env") else [get("env")]
    try:
        configs = [load_config(environments, name, overrides) for name in names]
    except ConfigError as error:
        print(f"Invalid configuration:\n{error}", file=sys.stderr)
        sys.exit(1)
    build_all(app, configs)
    app.synth()


if __name__ == "__main__":
    main()
