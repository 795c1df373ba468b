"""mypy follows every aws-cdk-lib module the kit imports (pyproject.toml skips the others to keep
a cold type-check short): a module imported but not followed would be Any, its calls unchecked."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MYPY = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def imported_cdk_modules() -> set[str]:
    """The aws_cdk modules the type-checked files import (``from aws_cdk import aws_sqs`` names
    ``aws_cdk.aws_sqs``; ``from aws_cdk import Stack`` names ``aws_cdk``)."""
    files = [p for entry in MYPY["files"] for p in sorted((ROOT / entry).rglob("*.py"))]
    assert files
    modules: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {a.name for a in node.names if a.name.split(".")[0] == "aws_cdk"}
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] != "aws_cdk":
                    continue
                for alias in node.names:
                    module = f"{node.module}.{alias.name}"
                    modules.add(module if alias.name.startswith("aws_") else node.module)
    return modules


def test_every_aws_cdk_module_the_kit_imports_is_type_checked() -> None:
    overrides = MYPY["overrides"]
    skipped = [o for o in overrides if o.get("follow_imports") == "skip"]
    assert [o["module"] for o in skipped] == [["aws_cdk.*"]]
    followed = {m for o in overrides if o.get("follow_imports") == "normal" for m in o["module"]}
    imported = imported_cdk_modules()
    assert {"aws_cdk", "aws_cdk.aws_sqs", "aws_cdk.aws_ecs"} <= imported
    assert imported <= followed, f"add to pyproject.toml's followed modules: {imported - followed}"
