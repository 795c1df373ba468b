"""The commands the README and docs print, as a reader would type them, with what they show.

Each line of a fenced shell block (```sh, ```bash, ```console, ```text with a `$ ` prompt) is a
command, joined across a trailing `\\`. A variable the block sets (`SIM="..."`, `for e in a b;
do`) is expanded as the shell would (a loop's line once per value); such settings are not
commands themselves. In ```console and ```text blocks, the lines after a `$ ` command up to the
next one are what the docs show it printing (``Printed.output``).
"""

from __future__ import annotations

import contextlib
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
SHELL_BLOCKS = {"sh", "bash", "console", "shell", "text", ""}
PROMPTED_BLOCKS = {"console", "text", ""}  # a command only after `$ `; the rest is its output
ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_]\w*)=(\S.*)$")
LOOP = re.compile(r"^for\s+([A-Za-z_]\w*)\s+in\s+(.*?);\s*do\b")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
# The kit's CLI: `queue-worker VERB`, `python -m scripts VERB`, `python -m scripts.PACKAGE.MODULE`.
CLI = re.compile(
    r"^(?:\.venv/bin/)?(?:queue-worker\s|python3?\s+-m\s+scripts(?:\s|\.(?P<module>[\w.]+)\s?))"
)


PLACEHOLDER = re.compile(r"\b(VERB|NAME|URL|ID|N|DIR|FILE)\b")
PLACEHOLDER_REASON = "a placeholder in capitals (VERB, NAME, ...) stands for what the reader writes"


@dataclass(frozen=True)
class Printed:
    """One printed command: where (``docs/x.md:12``, ``#2`` for a loop's second value), the
    command as the shell gets it, and the lines the docs show it printing."""

    where: str
    command: str
    output: tuple[str, ...] = ()

    @property
    def doc(self) -> str:
        return self.where.split(":")[0]

    @property
    def is_cli(self) -> bool:
        return CLI.match(self.command) is not None


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


def _setting(line: str, variables: dict[str, list[str]]) -> bool:
    """Record ``line``'s setting (NAME=value, a loop's values) in ``variables``; True if it
    is one (a value that uses a variable the block did not set is not recorded)."""
    setting = ASSIGNMENT.match(line) or LOOP.match(line)
    if not setting:
        return False
    (value,) = expansions(setting.group(2), variables)
    with contextlib.suppress(ValueError):  # unbalanced quotes: not a setting
        values = shlex.split(value)
        if "$" not in value:
            variables[setting.group(1)] = values if LOOP.match(line) else [" ".join(values)]
    return True


def printed_commands() -> list[Printed]:
    """Every command of the docs' fenced shell blocks, in the order the docs print them."""
    found: list[Printed] = []
    for path in DOCS:
        kind: str | None = None
        pending = ""
        variables: dict[str, list[str]] = {}
        last: list[Printed] = []  # the `$ ` command(s) whose output the next lines are
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            fence = FENCE.match(raw.strip())
            if fence:
                kind = None if kind is not None else fence.group(1)
                variables, last = {}, []
                continue
            if kind is None or kind not in SHELL_BLOCKS:
                continue
            line = raw.strip()
            if kind in PROMPTED_BLOCKS:
                if not line.startswith("$ "):
                    last = [replace(command, output=(*command.output, raw)) for command in last]
                    found[len(found) - len(last) :] = last
                    continue
                line = line[2:]
            if not line or line.startswith("#") or line in ("done", "fi"):
                continue
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if _setting(line, variables):
                last = []
                continue
            place = f"{path.relative_to(ROOT)}:{number}"
            last = [
                Printed(place if index == 0 else f"{place}#{index + 1}", command)
                for index, command in enumerate(expansions(line, variables))
            ]
            found.extend(last)
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
