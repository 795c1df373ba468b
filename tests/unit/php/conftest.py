"""Run the kit's PHP runners as the kit's command mode does, against the real frameworks.

The runners (worker_image/recipes/) are run by php-cli through `/bin/sh -c`, with the SQS body
on stdin and the kit's WORKER_* variables, inside the test applications of tests/php/: small
real Laravel and Symfony applications written here, on the frameworks Debian's archive installs
on the test host (bookworm: Laravel 8.83, Symfony 5.4; PHP_PACKAGES below). What the
applications record (events, handled messages, failed_jobs rows) is read back from
$TEST_OUTPUT_DIR/record.jsonl.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from worker.handlers import attributes_environment

from tests.host_setup import host_setup_lock

ROOT = Path(__file__).resolve().parents[3]
RECIPES = ROOT / "worker_image" / "recipes"
PHP_TESTS = ROOT / "tests" / "php"
LARAVEL_APP = PHP_TESTS / "laravel-app"
SYMFONY_APP = PHP_TESTS / "symfony-app"
LARAVEL_RUNNER = RECIPES / "laravel" / "run-job.php"
SYMFONY_RUNNER = RECIPES / "symfony" / "run-message.php"

EXIT_DONE, EXIT_FAILED, EXIT_RETRY = 0, 65, 75
QUEUE_URL = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/jobs"


# The real frameworks from Debian's archive (bookworm on the test host: PHP 8.2, Laravel 8.83,
# Symfony 5.4): the runners are tested against them, never against copies of their code.
# Composer's registry is unreachable: the test applications load Debian's autoloaders.
PHP_PACKAGES = (
    "php-cli",
    "php-sqlite3",
    "php-laravel-framework",
    "php-symfony-messenger",
    "php-symfony-amazon-sqs-messenger",
    "php-async-aws-sqs",
    "php-symfony-serializer",
    "php-symfony-property-access",
    "php-symfony-framework-bundle",
    "php-symfony-dotenv",
    "composer",
)
# A file every package above installs: present when the last install finished.
_INSTALLED_MARKERS = (
    "/usr/share/php/Illuminate/Queue/Worker.php",
    "/usr/share/php/Symfony/Component/Messenger/Bridge/AmazonSqs/autoload.php",
    "/usr/share/php/AsyncAws/Sqs/SqsClient.php",
    "/usr/share/php/Symfony/Bundle/FrameworkBundle/autoload.php",
    "/usr/share/php/Composer/InstalledVersions.php",
)


def _frameworks_installed() -> bool:
    return shutil.which("php") is not None and all(map(os.path.exists, _INSTALLED_MARKERS))


def _install_php() -> None:
    """apt-get install PHP_PACKAGES, after an apt-get update if the first try fails."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", *PHP_PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode == 0:
        return
    subprocess.run([*sudo, "apt-get", "update"], env=env, capture_output=True)
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"`apt-get install {' '.join(PHP_PACKAGES)}` failed:\n{done.stderr}")


@pytest.fixture(scope="session")
def php() -> str:
    """The php-cli binary with the real frameworks; installed with apt-get when missing (fails
    loudly when it cannot)."""
    with host_setup_lock():
        if not _frameworks_installed():
            _install_php()
        if not _frameworks_installed():
            pytest.fail(f"apt-get installed {PHP_PACKAGES}; one of {_INSTALLED_MARKERS} is missing")
    binary = shutil.which("php")
    if binary is None:
        pytest.fail("apt-get installed php-cli but no php is on PATH")
    return binary


@dataclass(frozen=True)
class Run:
    """How a runner ended: exit code, what it wrote to WORKER_RESULT_FILE, what the app did."""

    exit_code: int
    result: dict[str, Any] | None
    records: list[dict[str, Any]]
    stderr: str
    events: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [record for record in self.records if record["kind"] == kind]


def kit_env(
    *,
    message_id: str,
    receive_count: int,
    attributes: Mapping[str, Any],
    result_file: Path,
    attributes_file: Path | None = None,
) -> dict[str, str]:
    """The variables the kit's command mode gives a command (docs/frameworks.md): the
    attributes (SQS's shape) written by the kit's own code to `attributes_file` (default:
    beside `result_file`, as the kit keeps both in the job's private directory),
    WORKER_MESSAGE_ATTRIBUTES_FILE naming it, WORKER_MESSAGE_ATTRIBUTES while they fit."""
    attributes_file = attributes_file or result_file.with_name("attributes.json")
    return {
        "WORKER_MESSAGE_ID": message_id,
        "WORKER_RECEIVE_COUNT": str(receive_count),
        "WORKER_QUEUE_URL": QUEUE_URL,
        **attributes_environment(attributes, str(attributes_file)),
        "WORKER_RESULT_FILE": str(result_file),
    }


RunRunner = Callable[..., Run]


@pytest.fixture
def run_runner(php: str, tmp_path: Path) -> RunRunner:
    """Factory: run a runner once as the kit would (`/bin/sh -c 'php RUNNER'`) and collect."""
    counter = iter(range(1_000_000))

    def run(
        runner: Path,
        body: str,
        *,
        cwd: Path,
        receive_count: int = 1,
        attributes: Mapping[str, Any] | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> Run:
        out = tmp_path / f"run-{next(counter)}"
        out.mkdir()
        result_file = out / "result.json"
        env = {
            "PATH": os.environ["PATH"],
            "TEST_OUTPUT_DIR": str(out),
            **kit_env(
                message_id=f"msg-{out.name}",
                receive_count=receive_count,
                attributes=attributes or {},
                result_file=result_file,
            ),
            **(settings or {}),
        }
        done = subprocess.run(
            ["/bin/sh", "-c", f"{php} {runner}"],
            input=body,
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        record_file = out / "record.jsonl"
        records = (
            [json.loads(line) for line in record_file.read_text().splitlines()]
            if record_file.exists()
            else []
        )
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        events = [record["event"] for record in records if record["kind"] == "event"]
        return Run(done.returncode, result, records, done.stderr, events)

    return run


@pytest.fixture
def php_output(php: str) -> Callable[..., str]:
    """Run a PHP script of tests/php/ and return its stdout (fails with its stderr)."""

    def output(script: Path, *args: str) -> str:
        done = subprocess.run(
            [php, str(script), *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return output
