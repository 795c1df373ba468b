"""Every command the README and docs print runs as printed, or the test says why it cannot.

The commands (tests/printed_commands.py) run in document order, each in `bash -c` as a reader
types it, in a copy of the project (the docs' `make synth`, `plan --write` and `purge` change
it, not the checkout) whose environments stand in moto's server as `queue-worker local-stack`
stands them up (scripts/devtools/local_stack.py), with the venv on PATH (as the README's setup
line exports it) and `~` a home with the project at ~/src/our-kit. A command passes when it
exits as the docs show it: 1 when the output they print ends in an `error:` line, else 0; one
that runs until stopped (`--follow`, `local-stack`) is interrupted after it has printed and
must exit 130; one that asks is answered through a terminal with the answer the docs show
(else `yes`). What it prints beyond that is each verb's own tests' business (the figures differ
from the docs' runs). A command that cannot run here is skipped with its reason (NOT_RUN).
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from worker.contract import FAILURE_REASON_ATTRIBUTE

from scripts.devtools.local_run import FAKE_CREDENTIALS
from scripts.devtools.local_stack import LocalStack, stand_up
from scripts.operate.dlq import DEFAULT_REASON
from tests.conftest import free_port
from tests.printed_commands import (
    PLACEHOLDER,
    PLACEHOLDER_REASON,
    ROOT,
    Printed,
    printed_commands,
    words,
)

pytestmark = pytest.mark.xdist_group("docs_run")  # one sandbox, the commands in order

NEEDS_AWS = "needs a real AWS account (it deploys, diffs, bootstraps or reads deployed tasks)"
NOT_RUN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^make test\b"), "is this suite: `.ci/run` runs `make test`"),
    (
        re.compile(
            r"^(?:make (?:diff|deploy|destroy|bootstrap|deploy-role)\b"
            r"|(?:npx |node_modules/\.bin/)?cdk (?:bootstrap|deploy|destroy)\b"
            r"|npx cdk |aws |output\(\))"
        ),
        NEEDS_AWS,
    ),
    (re.compile(r"^gh "), "needs GitHub: your token and repository (OWNER/NAME)"),
    (
        re.compile(r"--queue \S+\.fifo\b"),
        "needs a FIFO queue; the project's environments have none",
    ),
    (
        re.compile(r"^queue-worker (?:retry|forget) .*\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"),
        "names message ids of the docs' own run: SQS gives every message its id, yours differ",
    ),
    (
        re.compile(r"--env \S+ .*--(?:queue|worker) |--(?:queue|worker) \S+ .*--env "),
        "names a queue or worker of an environment with several (the README's `queues` and "
        "`workers` example): the project's environments have one of each",
    ),
    (
        re.compile(r"^docker build|--image our-app"),
        "needs your application's image (your Dockerfile and source)",
    ),
    (
        re.compile(r"--image localhost/php-laravel-app:test"),
        "measures the PHP test image: test_php_image.py builds it and runs this measurement",
    ),
    (
        re.compile(r"--measured measured\.json"),
        "reads measured.json, which the `measure` line before it writes from an image",
    ),
]
BENCHMARK = (
    "reproduces a benchmark from what its block synthesizes or writes under /tmp: about 20 CDK "
    "synths and 100 simulated days, beyond the suite's time; parsed by test_docs_commands.py "
    "(the benchmark lines on the project's own cdk.out run here)"
)
LONG_RUNNING = re.compile(r"--follow\b|\blocal-stack\b")
ASKED_FOR = re.compile(r"(?P<question>.*(?:\? \[y/N\]|: ) ?)(?P<answer>\S.*)$")
ENVIRONMENTS = ("dev", "stg", "prod")
COMMAND_SECONDS = 300


def runs_until_stopped(printed: Printed) -> bool:
    return LONG_RUNNING.search(" ".join(words(printed.command))) is not None


def reason_not_run(printed: Printed) -> str | None:
    """Why ``printed`` cannot run here, or None."""
    if PLACEHOLDER.search(printed.command):
        return PLACEHOLDER_REASON
    for pattern, reason in NOT_RUN:
        if pattern.search(printed.command):
            return reason
    on_own_cdk_out = printed.is_cli and not re.search(r"/tmp/|\$", printed.command)
    if printed.doc == "docs/benchmarks.md" and not on_own_cdk_out:
        return BENCHMARK
    return None


def expected_exit(printed: Printed) -> int:
    """What the docs show the command ending with: 130 if it runs until stopped, 1 if its
    printed output ends in an `error:` line, else 0."""
    if runs_until_stopped(printed):
        return 130
    shown = [line.strip() for line in printed.output if line.strip() not in ("", "...")]
    return 1 if shown and shown[-1].startswith("error:") else 0


def documented_answer(printed: Printed, question: str) -> str:
    """The answer the docs show typed after ``question``, else `yes`."""
    for line in printed.output:
        asked = ASKED_FOR.match(line.strip())
        if asked and question.strip().startswith(asked.group("question").strip()):
            return asked.group("answer")
    return "yes"


@dataclass(frozen=True)
class Sandbox:
    """A copy of the project, the environment its commands run in, and its stacks in moto."""

    project: Path
    env: dict[str, str]
    stacks: dict[str, LocalStack]

    def dead_letter(self, printed: Printed) -> None:
        """What a command that picks failures by `--reason R` presumes: a message of that
        reason in its environment's DLQ (SQS's move sets no reason; the worker's copy does)."""
        argv = words(printed.command)
        if "--reason" not in argv:
            return
        reason, stack = argv[argv.index("--reason") + 1], self.stacks[argv[argv.index("--env") + 1]]
        attributes = (
            {}
            if reason == DEFAULT_REASON
            else {FAILURE_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason}}
        )
        credentials = {key.lower(): value for key, value in FAKE_CREDENTIALS.items()}
        sqs = boto3.client(
            "sqs", region_name=stack.region, endpoint_url=stack.endpoint_url, **credentials
        )
        sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}", MessageAttributes=attributes)


def link_installed(source: Path, target: Path) -> None:
    """``target``: a directory of links to what ``source`` holds, with its own fresh
    `.installed` marker, so that make in the copy finds the setup done and never reinstalls
    (a reinstall through a linked directory would replace the checkout's)."""
    target.mkdir()
    for entry in source.iterdir():
        if entry.name != ".installed":
            (target / entry.name).symlink_to(entry)
    (target / ".installed").touch()


def wait_for_port(port: int, server: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Until the server listens on ``port``; fails loudly if it exits or never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, f"moto's server exited ({server.returncode})"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"moto's server does not listen on {port} after {seconds} s")


@pytest.fixture(scope="session")  # once: xdist runs other modules' tests between these
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The project copied (its tracked files; the venvs and node_modules linked), every
    environment synthesized and stood up in moto."""
    base = tmp_path_factory.mktemp("docs-run")
    project, home = base / "our-kit", base / "home"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for name in filter(None, tracked.split("\0")):
        source = ROOT / name
        if source.is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name)
    for installed in (".venv", "node_modules", ".venv-checkov"):
        link_installed(ROOT / installed, project / installed)
    (home / "src").mkdir(parents=True)
    (home / "src" / "our-kit").symlink_to(project)
    synth = subprocess.run(
        ["make", "--no-print-directory", "synth"], cwd=project, capture_output=True, text=True
    )
    assert synth.returncode == 0, synth.stdout + synth.stderr
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # Its own process: moto's state is per process, and other tests of this worker stand up
    # environments of the same names in theirs.
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server)
        stacks = {name: stand_up(project / "cdk.out", name, endpoint) for name in ENVIRONMENTS}
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "QUEUE_WORKER_", "PYTEST", "VIRTUAL_ENV"))
        }
        env |= FAKE_CREDENTIALS | {
            "AWS_DEFAULT_REGION": "ap-northeast-1",  # the reader's profile's (for --queue)
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "HOME": str(home),
            "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        }
        yield Sandbox(project, env, stacks)
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass
class Ran:
    exit_code: int
    output: str


def run_as_typed(sandbox: Sandbox, printed: Printed) -> Ran:
    """Run ``printed`` in bash in the sandbox, stdin a terminal that answers its questions,
    stdout and stderr together; a long-running one is interrupted once it has printed."""
    terminal, typed_into = pty.openpty()
    process = subprocess.Popen(
        ["bash", "-c", printed.command],
        cwd=sandbox.project,
        env=sandbox.env,
        stdin=typed_into,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(typed_into)
    assert process.stdout is not None
    output, started, last_output = b"", time.monotonic(), time.monotonic()
    interrupted = False
    try:
        while process.poll() is None or select.select([process.stdout], [], [], 0)[0]:
            readable, _, _ = select.select([process.stdout], [], [], 0.2)
            if readable:
                chunk = os.read(process.stdout.fileno(), 65536)
                if chunk:
                    output += chunk
                    last_output = time.monotonic()
                    continue
                if process.poll() is not None:
                    break
            now = time.monotonic()
            quiet = now - last_output
            if runs_until_stopped(printed) and not interrupted:
                if (output and quiet > 3) or now - started > 15:
                    os.killpg(process.pid, signal.SIGINT)
                    interrupted = True
            elif output and not output.endswith(b"\n") and quiet > 1:  # a question
                question = output.decode(errors="replace").splitlines()[-1]
                os.write(terminal, (documented_answer(printed, question) + "\n").encode())
                last_output = now
            assert now - started < COMMAND_SECONDS, f"{printed.where}: still running"
        return Ran(process.wait(timeout=30), output.decode(errors="replace"))
    finally:
        os.close(terminal)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


PRINTED = printed_commands()


def test_the_docs_print_every_kind_of_command_and_each_not_run_has_a_reason() -> None:
    """The collection: the README's setup, main job and operator commands are among those run,
    and what is not run is listed with why."""
    run = [printed for printed in PRINTED if reason_not_run(printed) is None]
    readme = {" ".join(words(p.command)[:2]) for p in run if p.doc == "README.md"}
    assert {"make run", "make setup", "queue-worker status"} <= readme
    verbs = {p.command.split()[1] for p in run if p.command.startswith("queue-worker ")}
    assert {"status", "logs", "dlq", "redrive", "enqueue", "purge", "plan"} <= verbs
    not_run = {reason_not_run(printed) for printed in PRINTED} - {None}
    assert NEEDS_AWS in not_run


@pytest.mark.parametrize("printed", PRINTED, ids=[printed.where for printed in PRINTED])
def test_a_printed_command_runs_as_printed(sandbox: Sandbox, printed: Printed) -> None:
    reason = reason_not_run(printed)
    if reason:
        pytest.skip(f"{printed.where}: {reason}")
    sandbox.dead_letter(printed)
    ran = run_as_typed(sandbox, printed)
    assert "Traceback (most recent call last)" not in ran.output, ran.output
    assert ran.exit_code == expected_exit(printed), (
        f"{printed.where}: `{printed.command}` exited {ran.exit_code}, the docs show "
        f"{expected_exit(printed)}:\n{ran.output[-3000:]}"
    )
