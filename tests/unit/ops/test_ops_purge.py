"""scripts.operate.purge: confirmation, --yes, --dlq, dry run, refusal without a terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from ops_helpers import Terminal, send

from scripts.operate import purge
from tests.sqs_helpers import queue_counts as counts


@pytest.fixture
def filled(sqs_client: Any, make_queue_pair: Any) -> Any:
    """A queue pair with 4 messages in the queue and 2 in the DLQ."""
    pair = make_queue_pair()
    send(sqs_client, pair.url, ["a", "b", "c", "d"])
    send(sqs_client, pair.dlq_url, ["e", "f"])
    return pair


def test_yes_purges_the_queue_only(
    sqs_client: Any, filled: Any, aws_args: list[str], capsys: Any
) -> None:
    assert purge.main([*aws_args, "--queue-url", filled.url, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "about 4 visible" in out
    assert "purged" in out
    assert counts(sqs_client, filled.url) == (0, 0)
    assert counts(sqs_client, filled.dlq_url) == (2, 0)


def test_dlq_flag_purges_the_dlq_only(sqs_client: Any, filled: Any, aws_args: list[str]) -> None:
    assert purge.main([*aws_args, "--queue-url", filled.url, "--dlq", "--yes"]) == 0
    assert counts(sqs_client, filled.dlq_url) == (0, 0)
    assert counts(sqs_client, filled.url) == (4, 0)


def test_refuses_without_terminal_and_yes(
    sqs_client: Any, filled: Any, aws_args: list[str], capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(filled.url.rsplit("/", 1)[-1] + "\n"))
    assert purge.main([*aws_args, "--queue-url", filled.url]) == 1
    assert "refusing to purge: no terminal" in capsys.readouterr().err
    assert counts(sqs_client, filled.url) == (4, 0)


def test_typed_name_confirms(
    sqs_client: Any, filled: Any, aws_args: list[str], monkeypatch: Any
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(filled.url.rsplit("/", 1)[-1] + "\n"))
    assert purge.main([*aws_args, "--queue-url", filled.url]) == 0
    assert counts(sqs_client, filled.url) == (0, 0)


@pytest.mark.parametrize("typed", ["wrong-name\n", "", "\n"])
def test_wrong_name_aborts(
    sqs_client: Any, filled: Any, aws_args: list[str], monkeypatch: Any, capsys: Any, typed: str
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(typed))
    assert purge.main([*aws_args, "--queue-url", filled.url]) == 1
    assert capsys.readouterr().err == "error: aborted: the name did not match; nothing purged\n"
    assert counts(sqs_client, filled.url) == (4, 0)


def test_dry_run_purges_nothing(
    sqs_client: Any, filled: Any, aws_args: list[str], capsys: Any
) -> None:
    assert purge.main([*aws_args, "--queue-url", filled.url, "--dlq", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "about 2 visible" in out
    assert "dry run: would purge" in out
    assert counts(sqs_client, filled.dlq_url) == (2, 0)
