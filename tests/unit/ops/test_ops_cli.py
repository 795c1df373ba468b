"""The conventions of `python -m scripts`: progress on a terminal only, Ctrl-C says how far."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

from scripts.__main__ import main
from tests.sqs_helpers import queue_counts

ROOT = Path(__file__).resolve().parents[3]


def test_progress_is_one_updating_line_on_a_terminal(
    make_queue_pair: Any, aws_args: list[str]
) -> None:
    """In a pseudo-terminal (100 columns) enqueue redraws one line: `\\r`, a total, a rate."""
    pair = make_queue_pair()
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    argv = ["enqueue", *aws_args, "--queue", pair.url, "--count", "300", "--rate", "200"]
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts", *argv],
        cwd=ROOT,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    output = b""
    while chunk := _read(primary):
        output += chunk
    assert process.wait(30) == 0
    text = output.decode()
    lines = text.split("\r\n")
    assert lines[-1] == ""
    assert lines[-2].startswith("sent 300 messages to ")
    bar = lines[-3]  # everything before the result: one line, redrawn with \r
    assert "\n" not in bar
    assert bar.count("\r") >= 2
    assert re.search(r"enqueue: 100%\|.*\| 300/300 \[.*msg/s\]$", bar.split("\r")[-1])


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the child closed the terminal
        return b""


def test_no_progress_off_a_terminal(make_queue_pair: Any, aws_args: list[str], capsys: Any) -> None:
    pair = make_queue_pair()
    assert main(["enqueue", *aws_args, "--queue", pair.url, "--count", "25"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("sent 25 messages to ")


def test_ctrl_c_says_what_was_done(
    make_queue_pair: Any, aws_args: list[str], sqs_client: Any
) -> None:
    """SIGINT in the middle of a paced enqueue: one line with the count sent, exit 130."""
    pair = make_queue_pair()
    argv = ["enqueue", *aws_args, "--queue", pair.url, "--count", "500", "--rate", "50"]
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert out == ""
    match = re.fullmatch(r"interrupted: sent (\d+) of 500\n", err)
    assert match, err
    sent = int(match[1])
    assert 0 < sent < 500
    assert queue_counts(sqs_client, pair.url) == (sent, 0)  # exactly what it said


def test_help_shows_each_default_once_and_no_none(capsys: Any) -> None:
    """Help of the commands that list defaults: no `(default: None)`, never a default twice."""
    for verb in ("plan", "simulate", "bench"):
        try:
            main([verb, "--help"])
        except SystemExit as exited:
            assert exited.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: None)" not in text, verb
        assert "(default: none; see --env) (default" not in text, verb
