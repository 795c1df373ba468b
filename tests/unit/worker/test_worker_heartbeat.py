"""The heartbeat's lock never spans a call to SQS; `release` still wins over a beat in flight."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

from worker.heartbeat import Heartbeat, Held
from worker.logs import EventLog
from worker.settings import WorkQueue

QUEUE = WorkQueue("q", "q")


class SlowSqs:
    """ChangeMessageVisibilityBatch that takes `seconds` (a slow network) or raises."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.calls: list[list[str]] = []
        self.entered = threading.Event()

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[Any]) -> Any:
        self.calls.append([e["ReceiptHandle"] for e in Entries])
        self.entered.set()
        time.sleep(self.seconds)
        if self.fail:
            raise ConnectionError("refused")
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def held(name: str, received_at: float) -> Held:
    return Held(name, f"rh-{name}", "{}", 1, {}, received_at, QUEUE)


def heartbeat(sqs: SlowSqs, visibility: int = 2, interval: float = 0.5) -> Heartbeat:
    return Heartbeat(sqs, visibility, interval, EventLog("t", io.StringIO()))


def test_a_slow_extension_blocks_neither_hold_nor_release_of_other_messages() -> None:
    sqs = SlowSqs(seconds=1.0)
    beat = heartbeat(sqs)
    old = held("old", time.monotonic() - 1.5)  # due for an extension
    beat.hold([old])
    thread = threading.Thread(target=beat.beat)
    thread.start()
    assert sqs.entered.wait(5)
    started = time.monotonic()
    fresh = held("fresh", time.monotonic())
    beat.hold([fresh])
    assert {m.message_id for m in beat.held()} == {"old", "fresh"}
    assert not beat.lease_lost("fresh")
    beat.release([fresh])  # not in the call in flight: returns at once
    assert time.monotonic() - started < 0.3
    thread.join()


def test_release_waits_for_an_extension_of_that_message_in_flight() -> None:
    sqs = SlowSqs(seconds=0.5)
    beat = heartbeat(sqs)
    old = held("old", time.monotonic() - 1.5)
    beat.hold([old])
    thread = threading.Thread(target=beat.beat)
    thread.start()
    assert sqs.entered.wait(5)
    started = time.monotonic()
    beat.release([old])  # once it returns, no extension may land after the caller's change
    assert time.monotonic() - started > 0.3  # it waited for the 0.5-s call to come back
    thread.join()
    assert beat.held() == []


def test_a_failing_extension_loses_the_lease_before_the_visibility_ends() -> None:
    sqs = SlowSqs(fail=True)
    beat = heartbeat(sqs, visibility=2, interval=0.5)
    message = held("m", time.monotonic())
    beat.hold([message])
    beat.start()
    try:
        deadline = time.monotonic() + 5
        while not beat.lease_lost("m"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert time.monotonic() < message.received_at + 2  # before it turns visible
        assert sqs.calls  # the heartbeat tried
    finally:
        beat.stop()


def test_a_working_heartbeat_never_loses_the_lease() -> None:
    sqs = SlowSqs()
    beat = heartbeat(sqs, visibility=2, interval=0.5)
    beat.hold([held("m", time.monotonic())])
    beat.start()
    try:
        deadline = time.monotonic() + 4  # twice the visibility
        while time.monotonic() < deadline:
            assert not beat.lease_lost("m")
            time.sleep(0.02)
    finally:
        beat.stop()
    assert len(sqs.calls) >= 3
