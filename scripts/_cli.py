"""The conventions every operator command shares: parser, exit codes, errors, progress, output.

A command is a module with ``HELP`` (one line), ``add_arguments(parser)`` and
``execute(args) -> int``; `queue-worker VERB` (alias `python -m scripts VERB`,
scripts/__main__.py) and `python -m scripts.MODULE` (each module's ``main``) both run it
through :func:`run`, which first finds the project (:func:`find_project`) into ``args.project``.

Exit codes: 0 done, 1 failure (one line on stderr, no traceback), 2 usage (bad arguments),
130 interrupted (Ctrl-C; the line says what was done so far). A reader that closes the pipe
(``| head``) ends the command quietly with 0.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import stat
import sys
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn, Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from tqdm import tqdm

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PROJECT_VARIABLE = "QUEUE_WORKER_PROJECT"
INSTALLED_CHECKOUT = Path(__file__).resolve().parents[1]


class OpsError(Exception):
    """A failure the operator can act on; its message is printed as one line (exit 1)."""


class UsageError(Exception):
    """Arguments that do not go together; printed like argparse's errors (exit 2)."""


class Interrupted(Exception):
    """Ctrl-C during long work; the message says what was done so far."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (plus a hint) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class Command(Protocol):
    """What scripts/__main__.py needs of a command module."""

    HELP: str

    def add_arguments(self, parser: Parser) -> None: ...

    def execute(self, args: argparse.Namespace) -> int: ...


def description(module: object) -> str:
    """A command's help text: its module docstring (summary, examples, what it does)."""
    return (module.__doc__ or "").strip()


class DefaultsHelpFormatter(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Keeps the description's line breaks and shows every option's default (not when there
    is none, nor when the help already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or "default" in text:
            return text
        return super()._get_help_string(action)


def formatter(module: object) -> type[argparse.HelpFormatter]:
    """DefaultsHelpFormatter for modules with DEFAULTS_IN_HELP, else one that keeps the
    description's line breaks (their option help says the defaults itself)."""
    if getattr(module, "DEFAULTS_IN_HELP", False):
        return DefaultsHelpFormatter
    return argparse.RawDescriptionHelpFormatter


def main(module: ModuleType, argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.MODULE`: parse with the module's arguments, then :func:`run` it."""
    name = module.__spec__.name if module.__spec__ else module.__name__
    parser = Parser(
        prog=f"python -m {name}",
        description=description(module),
        formatter_class=formatter(module),
    )
    command: Command = module
    command.add_arguments(parser)
    add_project_option(parser)
    args = parser.parse_args(argv)
    return run(command.execute, args, parser)


def add_project_option(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """--project DIR, default None: :func:`find_project` decides."""
    parser.add_argument(
        "--project",
        metavar="DIR",
        default=default,
        help=f"the kit's directory, whose cdk.json and cdk.out are read (default: "
        f"${PROJECT_VARIABLE}, else the first directory from here upward whose cdk.json has "
        "environments, else the checkout this command is installed from)",
    )


def find_project(given: str | Path | None = None) -> Path:
    """The kit's directory the commands read cdk.json and cdk.out from: ``given`` (--project),
    else $QUEUE_WORKER_PROJECT, else the first directory from the current one upward whose
    cdk.json has ``context.environments``, else the checkout these scripts are installed from.

    UsageError when --project or the variable names a directory without such a cdk.json.
    """
    source, chosen = "--project", given
    if not chosen:
        source, chosen = f"${PROJECT_VARIABLE}", os.environ.get(PROJECT_VARIABLE)
    if chosen:
        directory = Path(chosen).expanduser().resolve()
        if not is_project(directory):
            raise UsageError(
                f"{source}: {chosen} is not a queue-worker project "
                "(no cdk.json with context.environments there)"
            )
        return directory
    here = Path.cwd().resolve()
    return next((d for d in (here, *here.parents) if is_project(d)), INSTALLED_CHECKOUT)


def is_project(directory: Path) -> bool:
    """Whether ``directory`` holds the kit's cdk.json: one whose context has environments."""
    try:
        document = json.loads((directory / "cdk.json").read_text())
    except (OSError, ValueError):
        return False
    context = document.get("context") if isinstance(document, dict) else None
    return isinstance(context, dict) and isinstance(context.get("environments"), dict)


def run(execute: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Find the project into ``args.project``, then run ``execute(args)``; turn every error an
    operator can meet into one line and a code."""
    try:
        args.project = find_project(getattr(args, "project", None))
        code = int(execute(args))
        sys.stdout.flush()
        return code
    except UsageError as error:
        parser.error(str(error))
    except BrokenPipeError:
        # The reader went away (`| head`): point stdout at /dev/null so that the flush at
        # exit does not fail again, and end quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Interrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # known kinds become one line; others re-raise
        message = error_line(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILURE


def error_line(error: Exception) -> str | None:
    """The one line for an error an operator can meet; None for a bug (shown as a traceback)."""
    if isinstance(error, OpsError):
        return str(error)
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, or log in)"
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach the AWS endpoint: {error.kwargs.get('endpoint_url', error)}"
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in NONEXISTENT_QUEUE_CODES:
            return "queue does not exist (deleted while the command ran?)"
        if code in AUTH_ERROR_CODES:
            return f"AWS refused the credentials ({code}): log in again or check AWS_PROFILE"
        return f"AWS error: {error}"
    if isinstance(error, BotoCoreError):
        return f"AWS client error: {error}"
    return None


NONEXISTENT_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
AUTH_ERROR_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
}


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError ('' when there is none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`| head` is done).

    A command that waits between writes (`logs --follow`) checks this while it waits, so it
    ends then instead of at its next write, which may never come.
    """
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
    except (OSError, ValueError):  # no real stdout (captured)
        return False
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def confirm(
    question: str, answers: Collection[str], action: str, *, on_stderr: bool = False
) -> bool:
    """Ask ``question`` on the terminal; True if the answer (stripped) is one of ``answers``.

    OpsError ("refusing to ACTION") when stdin is not a terminal: without one nobody can
    answer, and a command that deletes must not take a pipe's line for consent. The question
    goes to stdout, or to stderr with ``on_stderr`` (when stdout carries a JSON document).
    """
    if not sys.stdin.isatty():
        raise OpsError(
            f"refusing to {action}: no terminal to confirm on (pass --yes to skip the question)"
        )
    if on_stderr:
        print(question, end="", file=sys.stderr, flush=True)
        question = ""
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip() in answers


def interactive() -> bool:
    """Whether both stdout and stderr are terminals (progress bars only then)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class Progress:
    """Counts work done (`done`, of `total` when known) and shows it as one updating line."""

    def __init__(self, bar: tqdm[Any]) -> None:
        self._bar = bar
        self.done = 0

    @property
    def total(self) -> int | None:
        """The expected count, if known."""
        return None if self._bar.total is None else int(self._bar.total)

    @total.setter
    def total(self, value: int) -> None:
        self._bar.total = value
        self._bar.refresh()

    def advance(self, count: int) -> None:
        """`count` more done."""
        self.done += count
        self._bar.update(count)

    def of_total(self) -> str:
        """``1200 of 5000`` (``1200 of ?`` when the total is unknown)."""
        return f"{self.done} of {'?' if self.total is None else self.total}"


@contextmanager
def progress(label: str, total: int | None, unit: str = "msg") -> Iterator[Progress]:
    """One updating line on stderr: ``LABEL: 24%|##  | 1200/5000 [00:05<00:15, 240msg/s]``.

    Quiet when stdout or stderr is not a terminal (scripts, CI, pipes).
    """
    bar: tqdm[Any] = tqdm(
        total=total,
        desc=label,
        unit=unit,
        file=sys.stderr,
        disable=not interactive(),
        dynamic_ncols=True,
    )
    try:
        yield Progress(bar)
    finally:
        bar.close()


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C back until the block ends, so that work and its count stay together.

    A SIGINT during the block raises KeyboardInterrupt when the block ends (so "sent N" is
    exact); outside the main thread, where signals cannot be handled, it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


def synthesized(cdk_out: Path, env: str) -> Path:
    """cdk_out/ENV, the assembly `make synth ENV=ENV` writes; OpsError when it has no template."""
    assembly = cdk_out / env
    if not any(assembly.glob("*.template.json")):
        raise OpsError(f"no synthesized templates in {assembly}: run `make synth ENV={env}` first")
    return assembly


def print_json(document: Any) -> None:
    """One JSON document on stdout."""
    print(json.dumps(document, indent=2, default=str))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> list[str]:
    """Rows as aligned text columns under ``header`` (numbers right-aligned)."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [
        all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(header))
    ]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if is_number else cell.ljust(width)
            for cell, width, is_number in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return lines


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at_least(convert: Any, minimum: float) -> Any:
    """An argparse type: `convert(text)`, which must be a number >= `minimum`."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value >= minimum:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


positive_int = _at_least(int, 1)
non_negative_int = _at_least(int, 0)
non_negative_float = _at_least(float, 0)
