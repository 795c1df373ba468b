"""The code blocks of docs/frameworks.md, read as a team copies them: tests build and run what the
tutorial prints, never a copy of it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS_DOC = ROOT / "docs" / "frameworks.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def code_blocks(language: str, *, section: str, doc: Path = FRAMEWORKS_DOC) -> list[str]:
    """The ```language blocks of the doc's `## section...` part (up to the next `## `)."""
    text = doc.read_text()
    start = text.index(f"\n## {section}")
    end = text.find("\n## ", start + 1)
    part = text[start : end if end != -1 else len(text)]
    return [body for lang, body in _BLOCK.findall(part) if lang == language]


def image_stage() -> str:
    """Step 1's Dockerfile stage, exactly as printed."""
    [stage] = code_blocks("dockerfile", section="1. The image")
    return stage


def environment_block(runner: str) -> dict[str, Any]:
    """Step 2's cdk.json environment block whose handler runs `runner` (run-job.php, ...):
    printed as `"prod": {...}`, read as the JSON object it is inside cdk.json."""
    found = [block for block in code_blocks("json", section="2. The settings") if runner in block]
    assert len(found) == 1, f"docs/frameworks.md step 2 has {len(found)} blocks naming {runner}"
    [(_, environment)] = json.loads("{" + found[0] + "}").items()
    return dict(environment)


# Prints the columns of docs/frameworks.md's version table as installed where it runs.
INSTALLED_VERSIONS_SCRIPT = """. /etc/os-release && echo "$VERSION_CODENAME"
php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION, "\\n";'
for package in php-laravel-framework php-symfony-messenger php-async-aws-sqs; do
  dpkg-query -W -f='${Version}\\n' "$package" | cut -d. -f1,2
done"""


def documented_versions(where: str) -> list[str]:
    """The row of docs/frameworks.md's version table ("What was run for real") whose first cell
    is `where`: Debian, PHP, Laravel, Symfony, async-aws SQS."""
    text = FRAMEWORKS_DOC.read_text()
    [row] = [line for line in text.splitlines() if line.startswith(f"| {where} |")]
    return [cell.strip() for cell in row.strip("|").split("|")][1:]
