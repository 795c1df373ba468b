"""Every PHP file a team copies from worker_image/recipes/ parses (`php -l`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.tutorial import (
    INSTALLED_VERSIONS_SCRIPT,
    documented_versions,
    environment_block,
    image_stage,
)
from tests.unit.php.conftest import LARAVEL_RUNNER, RECIPES, SYMFONY_RUNNER

RECIPE_FILES = sorted(RECIPES.rglob("*.php"))


def test_the_recipes_hold_the_runners() -> None:
    assert {LARAVEL_RUNNER, SYMFONY_RUNNER, LARAVEL_RUNNER.parent / "KitJob.php"} <= set(
        RECIPE_FILES
    )


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda path: str(path.relative_to(RECIPES)))
def test_php_lint(php: str, path: Path) -> None:
    done = subprocess.run([php, "-l", str(path)], capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_docs_name_the_framework_versions_these_tests_run(php: str) -> None:
    """docs/frameworks.md's version table says which frameworks the runners' tests ran on."""
    installed = subprocess.run(
        ["sh", "-c", INSTALLED_VERSIONS_SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split()

    assert documented_versions("the runners' tests on the test host") == installed


@pytest.mark.parametrize("runner", [LARAVEL_RUNNER, SYMFONY_RUNNER], ids=lambda p: p.name)
def test_one_runner_path_across_the_tutorial_and_the_recipes(runner: Path) -> None:
    """The handler of docs/frameworks.md step 2 and of recipes/README.md is the same path, and
    the stage of step 1 copies the runner there."""
    documented = environment_block(runner.name)["worker"]["handler"]
    readme = (RECIPES / "README.md").read_text()
    handlers = set(re.findall(r'"handler": "([^"]*' + re.escape(runner.name) + ')"', readme))
    assert handlers == {documented}
    script = Path(documented.split()[-1])
    copies = re.findall(r"^COPY --from=queue-worker-kit (recipes/.*)$", image_stage(), re.M)
    [(sources, target)] = [(c.split()[:-1], c.split()[-1]) for c in copies]
    assert script.parent == Path(target)
    assert f"recipes/{runner.parent.name}/" in sources
