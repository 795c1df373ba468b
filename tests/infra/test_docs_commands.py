"""Every operator command the README and docs print parses as printed.

Each line of a fenced shell block (```sh, ```bash, ```console, ```text with a `$ ` prompt) that
runs the kit's CLI (`queue-worker VERB`, `python -m scripts VERB`, `python -m scripts.MODULE`,
with or without `.venv/bin/`) is parsed by that command's own argument parser, as the shell
would split it: a flag that does not exist, a value of the wrong type or a missing required
option fails here. Parsing runs nothing: tests/integration/test_docs_run.py runs each printed
command (the kit's CLI and the rest) against the embedded AWS, or says why it cannot. A
variable the block sets (`SIM="..."`, `for e in a b; do`) is expanded as the shell would (a
loop's line once per value); a line with a variable the block does not set cannot be parsed as
printed and is skipped with that reason (SKIPPED_BECAUSE), as is a line with a placeholder in
capitals (PLACEHOLDER_REASON).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from scripts import __main__ as cli
from scripts import _cli
from tests.printed_commands import (
    CLI,
    PLACEHOLDER,
    PLACEHOLDER_REASON,
    printed_commands,
    words,
)

SKIPPED_BECAUSE = "a shell variable its block does not set: the shell expands it, the test cannot"


def parse(command: str) -> argparse.Namespace:
    """Parse ``command`` with its own parser (SystemExit on an error, as the CLI exits 2)."""
    argv = words(command)
    module = CLI.match(command).group("module")  # type: ignore[union-attr]
    start = next(i for i, w in enumerate(argv) if Path(w).name == "queue-worker" or w == "-m") + 1
    if argv[start - 1] == "-m":
        start += 1  # past `scripts` or `scripts.MODULE`
    if module is None:
        args, unknown = cli.parser().parse_known_args(argv[start:])
        if unknown:
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return args
    command_module = importlib.import_module(f"scripts.{module}")
    parser = _cli.Parser(prog=f"python -m scripts.{module}")
    command_module.add_arguments(parser)
    _cli.add_project_option(parser)
    return parser.parse_args(argv[start:])


PRINTED = [(printed.where, printed.command) for printed in printed_commands() if printed.is_cli]


def test_the_docs_print_commands_of_every_kind() -> None:
    """The collection itself: the README's and the runbooks' commands are found."""
    where = {place.split(":")[0] for place, _ in PRINTED}
    assert {"README.md", "docs/operations.md", "docs/operations-scripts.md"} <= where
    verbs = {
        words(command)[1] for _, command in PRINTED if command.startswith(("queue-worker", ".venv"))
    }
    assert {"status", "logs", "dlq", "redrive", "enqueue", "purge", "plan"} <= verbs


@pytest.mark.parametrize(("where", "command"), PRINTED, ids=[p for p, _ in PRINTED])
def test_a_printed_command_parses_as_printed(where: str, command: str) -> None:
    if "$" in " ".join(words(command)):
        pytest.skip(f"{where}: {SKIPPED_BECAUSE}")
    if PLACEHOLDER.search(command):
        pytest.skip(f"{where}: {PLACEHOLDER_REASON}")
    try:
        parse(command)
    except SystemExit as exit_:  # --help exits 0 having printed the help
        assert exit_.code == 0, f"{where}: `{command}` does not parse (exit {exit_.code})"
