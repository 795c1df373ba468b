#!/usr/bin/env python3
"""CDK app: load the chosen environment's config, build its stacks, check them, synth.

cdk synth -c env=prod [-c worker.processes=6 ...]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App

from stacks.app_builder import build
from stacks.config import ConfigError, load_config

PROJECT_DIR = Path(__file__).resolve().parent  # where cdk.json is: worker.image.directory's base


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
    try:
        config = load_config(get("environments"), get("env"), overrides, project_dir=PROJECT_DIR)
    except ConfigError as error:
        print(f"Invalid configuration:\n{error}", file=sys.stderr)
        sys.exit(1)
    build(app, config)
    app.synth()


if __name__ == "__main__":
    main()
