"""Task scale-in protection across several real processes, against a fake ECS agent."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from worker.app import task_protection
from worker.logs import EventLog
from worker.protection import TaskProtection
from worker.settings import Settings

from tests.unit.worker.harness import FakeAgent


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    fake = FakeAgent()
    yield fake
    fake.server.shutdown()


def _member(conn: Connection, uri: str, directory: str) -> None:
    """A worker process stand-in: runs busy/idle on command, answers 'ok'."""
    protection = TaskProtection(uri, directory, 30, EventLog("worker_member", io.StringIO()))
    conn.send(os.getpid())
    while (command := conn.recv()) != "exit":
        started = time.monotonic()
        getattr(protection, command.rstrip("!"))()  # busy, idle or wait
        returned_after = time.monotonic() - started
        if not command.endswith("!"):  # "busy!": do not wait for the agent call to land
            protection.wait(10)  # the call is made on the caller thread: wait for it
        conn.send(returned_after)


class Member:
    def __init__(self, uri: str, directory: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_member, args=(child, uri, str(directory)))
        self.process.start()
        self.pid = self.conn.recv()

    def do(self, command: str) -> float:
        """Run busy/idle/wait (and wait for the agent call; `busy!` does not); seconds taken."""
        self.conn.send(command)
        return float(self.conn.recv())

    def close(self) -> None:
        self.conn.send("exit")
        self.process.join(10)


def test_processes_of_a_task_agree_only_transitions_call_the_agent(
    agent: FakeAgent, tmp_path: Path
) -> None:
    members = [Member(agent.uri, tmp_path) for _ in range(3)]
    try:
        a, b, c = members
        a.do("busy")
        assert agent.enabled() == [True]
        b.do("busy")
        c.do("busy")
        a.do("idle")
        b.do("idle")
        assert agent.enabled() == [True]  # c is still busy: the task stays protected
        c.do("idle")
        assert agent.enabled() == [True, False]
        b.do("busy")
        b.do("busy")  # already busy: nothing to do
        b.do("idle")
        assert agent.enabled() == [True, False, True, False]
    finally:
        for member in members:
            member.close()
    assert agent.paths == ["/v1/task/task-protection/v1/state"] * 4
    assert agent.bodies[0] == {"ProtectionEnabled": True, "ExpiresInMinutes": 30}
    assert agent.bodies[1] == {"ProtectionEnabled": False}


def test_a_dead_process_marker_is_ignored(agent: FakeAgent, tmp_path: Path) -> None:
    dead = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    (tmp_path / f"busy-{dead.pid}").touch()  # it died while busy
    log = EventLog("worker_test", io.StringIO())
    protection = TaskProtection(agent.uri, str(tmp_path), 30, log)
    protection.busy()
    protection.wait(10)
    protection.idle()
    protection.wait(10)
    assert agent.enabled() == [True, False]
    assert not (tmp_path / f"busy-{dead.pid}").exists()


def test_a_long_busy_spell_renews_the_protection_at_half_expiry(
    agent: FakeAgent, tmp_path: Path
) -> None:
    members = [Member(agent.uri, tmp_path) for _ in range(2)]
    try:
        a, b = members
        a.do("busy")
        b.do("busy")
        assert agent.enabled() == [True]
        b.do("idle")
        (tmp_path / "protected-at").write_text(str(time.time() - 16 * 60))  # > 30 min / 2
        b.do("busy")
        assert agent.enabled() == [True, True]
    finally:
        for member in members:
            member.close()


def test_off_without_the_agent_or_when_switched_off(tmp_path: Path) -> None:
    log = EventLog("w", io.StringIO())
    base = {
        "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/q",
        "WORKER_TASK_DIR": str(tmp_path),
    }
    agent = {"ECS_AGENT_URI": "http://127.0.0.1:9/v1"}
    assert task_protection(Settings.from_env(base), log) is None
    assert (
        task_protection(Settings.from_env({**base, **agent, "TASK_PROTECTION": "off"}), log) is None
    )
    assert isinstance(task_protection(Settings.from_env({**base, **agent}), log), TaskProtection)


def test_agent_failures_are_logged_never_raised(tmp_path: Path) -> None:
    stream = io.StringIO()
    broken = FakeAgent(status=500)
    try:
        protection = TaskProtection(broken.uri, str(tmp_path), 30, EventLog("w", stream))
        protection.busy()
        protection.wait(10)
        line = json.loads(stream.getvalue().splitlines()[-1])
        assert (line["event"], line["level"], line["protected"]) == (
            "task_protection",
            "warning",
            True,
        )
    finally:
        broken.server.shutdown()
    unreachable = TaskProtection("http://127.0.0.1:9", str(tmp_path), 30, EventLog("w", stream))
    unreachable.busy()
    unreachable.wait(10)
    unreachable.idle()
    unreachable.wait(10)
    assert "Connection refused" in stream.getvalue()


def test_a_stalled_agent_stalls_no_process(tmp_path: Path) -> None:
    """The agent takes 2 s per call (scaled down from the 5-s stall of issue 9)."""
    agent = FakeAgent(stall={True: 2.0, False: 2.0})
    members = [Member(agent.uri, tmp_path) for _ in range(3)]
    try:
        took = [member.do("busy!") for member in members]
        deadline = time.monotonic() + 15
        while not agent.arrived:  # the protection call is in the stalled agent now
            assert time.monotonic() < deadline
            time.sleep(0.01)
        took += [member.do("idle!") for member in members]
        assert max(took) < 0.5, took  # none waited for the agent, nor for each other
        while agent.enabled()[-1:] != [False]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        for member in members:
            member.close()
        agent.server.shutdown()
    assert agent.enabled()[0] is True


def test_a_stale_release_landing_late_never_leaves_a_busy_task_unprotected(
    tmp_path: Path,
) -> None:
    """a's release (slow, 1 s) lands after b's protection (fast): a sends it again."""
    agent = FakeAgent(stall={False: 1.0})
    a, b = Member(agent.uri, tmp_path), Member(agent.uri, tmp_path)
    try:
        a.do("busy")
        a.do("idle!")  # its PUT false is on its way, slowly
        b.do("busy")  # b is busy now: PUT true lands first
        a.do("wait")  # until a's calls settled
        assert agent.enabled() == [True, True, False, True]
    finally:
        a.close()
        b.close()
        agent.server.shutdown()
