"""Secret values never reach the log: every string the worker logs is masked.

The worker stack names the variables that hold `worker.secrets` in
``contract.SECRET_NAMES_VARIABLE`` (docs/contract.md); ECS puts their values in the container's
environment. Every value of at least ``MIN_SECRET_CHARS`` characters is replaced by
``MASK`` wherever it appears in a logged string (a command's output, a job's error), and so
are the forms a program commonly prints of it: the password of a URL (``scheme://user:pw@``)
and each string of a JSON object (a Secrets Manager secret read whole).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from worker import contract

MASK = "***"
MIN_SECRET_CHARS = 6
"""Shorter values are not masked: they would blank out ordinary words and numbers."""


def secret_values(env: Mapping[str, str]) -> tuple[str, ...]:
    """The values to mask: those of the variables ``env`` names in SECRET_NAMES_VARIABLE, with
    their URL passwords and JSON strings; longest first, at least MIN_SECRET_CHARS long."""
    names = env.get(contract.SECRET_NAMES_VARIABLE, "").split(",")
    values = {form for name in names if name.strip() for form in _forms(env.get(name.strip(), ""))}
    return tuple(sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=lambda v: -len(v)))


def _forms(value: str) -> Iterator[str]:
    yield value
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        password = None
    if password:
        yield password
        yield unquote(password)
    try:
        document = json.loads(value)
    except ValueError:
        return
    yield from _strings(document)


def _strings(document: Any) -> Iterator[str]:
    if isinstance(document, str):
        yield from _forms(document) if document != "" else ()
    elif isinstance(document, dict | list):
        for item in document.values() if isinstance(document, dict) else document:
            yield from _strings(item)


class SecretMask:
    """Replaces the secret values in text (``mask``); ``hold_tail`` keeps a value that a cut
    line splits in two whole for the next piece."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = tuple(sorted(set(values), key=lambda v: -len(v)))
        self._pattern = re.compile("|".join(map(re.escape, self.values))) if self.values else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text

    def mask_fields(self, value: Any) -> Any:
        """``value`` with every string in it masked (dicts and lists walked)."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {key: self.mask_fields(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_fields(item) for item in value]
        return value

    def hold_tail(self, text: str) -> tuple[str, str]:
        """(head, tail): ``tail`` is the longest end of ``text`` that begins a secret value (it
        may go on in the next piece), ``head`` the rest."""
        longest = 0
        for value in self.values:
            for size in range(min(len(value) - 1, len(text)), longest, -1):
                if text.endswith(value[:size]):
                    longest = size
                    break
        return text[: len(text) - longest], text[len(text) - longest :]
