"""cfn-lint from the venv over synthesized templates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cfn_lint(*templates: Path) -> subprocess.CompletedProcess[str]:
    """Run cfn-lint on ``templates``; exit code 0 means no finding."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
    )
