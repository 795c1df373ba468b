"""Every operator command the README and docs print parses as printed.

Each line of a fenced shell block (```sh, ```bash, ```console, ```text with a `$ ` prompt) that
runs the kit's CLI (`queue-worker VERB`, `python -m scripts VERB`, `python -m scripts.MODULE`,
with or without `.venv/bin/`) is parsed by that command's own argument parser, as the shell
would split it: a flag that does not exist, a value of the wrong type or a missing required
option fails here. Parsing runs nothing (the commands that need AWS are run against the
embedded one by their own tests). A variable the block sets (`SIM="..."`, `for e in a b; do`)
is expanded as the shell would (a loop's line once per value); a line with a variable the block
does not set cannot be parsed as printed and is skipped with that reason (SKIPPED_BECAUSE), as
is a line with a placeholder in capitals (PLACEHOLDER_REASON).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import re
import shlex
from pathlib import Path

import pytest

from scripts import __main__ as cli
from scripts import _cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
SHELL_BLOCKS = {"sh", "bash", "console", "shell", "text", ""}
COMMAND = re.compile(
    r"^(?:\.venv/bin/)?(?:queue-worker\s|python3?\s+-m\s+scripts(?:\s|\.(?P<module>[\w.]+)\s?))"
)
ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_]\w*)=(\S.*)$")
LOOP = re.compile(r"^for\s+([A-Za-z_]\w*)\s+in\s+(.*?);\s*do\b")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
SKIPPED_BECAUSE = "a shell variable its block does not set: the shell expands it, the test cannot"
PLACEHOLDER = re.compile(r"\b(VERB|NAME|URL|ID|N|DIR|FILE)\b")
PLACEHOLDER_REASON = "a placeholder in capitals (VERB, NAME, ...) stands for what the reader writes"


def expansions(line: str, variables: dict[str, list[str]]) -> list[str]:
    """``line`` with each variable its block set replaced by the value (a loop's variable by
    each of its values, one line each); a variable the block did not set stays."""
    lines = [line]
    for name in dict.fromkeys(m.group(1) or m.group(2) for m in VARIABLE.finditer(line)):
        reference = re.compile(rf"\$(?:\{{{name}\}}|{name}\b)")
        lines = [
            reference.sub(value.replace("\\", "\\\\"), text)
            for text in lines
            for value in variables.get(name, [f"${name}"])
        ]
    return lines


def printed_commands() -> list[tuple[str, str]]:
    """(where, command) of every CLI line in a fenced block of the docs, joined across `\\`,
    with the variables the block sets (NAME=value, for NAME in ...; do) expanded."""
    found = []
    for path in DOCS:
        kind: str | None = None
        pending = ""
        variables: dict[str, list[str]] = {}
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            fence = FENCE.match(raw.strip())
            if fence:
                kind = None if kind is not None else fence.group(1)
                variables = {}
                continue
            if kind is None or kind not in SHELL_BLOCKS:
                continue
            line = raw.strip()
            if kind in ("console", "text", ""):
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if setting := ASSIGNMENT.match(line) or LOOP.match(line):
                (value,) = expansions(setting.group(2), variables)
                with contextlib.suppress(ValueError):  # unbalanced quotes: not a setting
                    values = shlex.split(value)
                    if "$" not in value:
                        variables[setting.group(1)] = (
                            values if LOOP.match(line) else [" ".join(values)]
                        )
                continue
            for index, command in enumerate(expansions(line, variables)):
                if COMMAND.match(command):
                    place = f"{path.relative_to(ROOT)}:{number}"
                    found.append((place if index == 0 else f"{place}#{index + 1}", command))
    return found


def words(command: str) -> list[str]:
    """The command's words as the shell splits them, up to a pipe, redirect, `;`, `&&` or `#`."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    result = []
    for word in lexer:
        if word in ("|", "||", "&&", ";", ">", ">>", "2>", "<", "&") or word.startswith("#"):
            break
        result.append(word)
    return result


def parse(command: str) -> argparse.Namespace:
    """Parse ``command`` with its own parser (SystemExit on an error, as the CLI exits 2)."""
    argv = words(command)
    module = COMMAND.match(command).group("module")  # type: ignore[union-attr]
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


PRINTED = printed_commands()


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
