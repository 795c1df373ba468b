"""The loop and the pause tag (contract.PAUSED_TAG) against moto: paused, it receives nothing,
finishes and deletes what it holds and polls the tag every PAUSE_CHECK_SECONDS (shortened
here to 0.5 s); untagged, it takes the rest. Each message runs once."""

from __future__ import annotations

from collections.abc import Callable

from worker.contract import CONTINUED_EVENT, PAUSED_EVENT, PAUSED_TAG

from tests.sqs_helpers import queue_counts
from tests.unit.worker.harness import Harness

Make = Callable[..., Harness]
CHECK = "0.5"  # PAUSE_CHECK_SECONDS of these tests (30 by default)


def tag(h: Harness) -> None:
    h.sqs.client.tag_queue(QueueUrl=h.worker.settings.queue_url, Tags={PAUSED_TAG: "since=test"})


def untag(h: Harness) -> None:
    h.sqs.client.untag_queue(QueueUrl=h.worker.settings.queue_url, TagKeys=[PAUSED_TAG])


def test_a_loop_started_paused_receives_nothing_until_the_tag_goes(make_worker: Make) -> None:
    h = make_worker(PAUSE_CHECK_SECONDS=CHECK)
    tag(h)
    ids = {h.send(duration_seconds=0.01) for _ in range(3)}
    h.start()
    h.wait_for(lambda: h.sqs.calls["list_queue_tags"] >= 4)  # 1.5 s of polling the tag
    assert h.sqs.calls["receive_message"] == 0
    assert [e["tag"] for e in h.events(PAUSED_EVENT)] == ["since=test"]
    untag(h)
    h.wait_for(lambda: len(h.jobs("done")) == 3)
    h.wait_for(lambda: queue_counts(h.sqs.client, h.worker.settings.queue_url) == (0, 0))
    assert h.stop() == "sigterm"
    assert h.runs() == {message_id: {"start": 1, "done": 1} for message_id in ids}
    assert len(h.events(CONTINUED_EVENT)) == 1


def test_the_running_job_finishes_and_is_deleted_and_nothing_more_is_taken(
    make_worker: Make,
) -> None:
    # One message a receive (no duration known yet, then 2 s jobs > PREFETCH_SECONDS 1 s).
    h = make_worker(PAUSE_CHECK_SECONDS=CHECK, PREFETCH_SECONDS="1", VISIBILITY_TIMEOUT_SECONDS="4")
    first = h.send(duration_seconds=2)
    rest = {h.send(duration_seconds=0.01) for _ in range(4)}
    h.start()
    h.wait_for(lambda: first in h.runs())  # the first job runs
    tag(h)
    h.wait_for(lambda: len(h.jobs("done")) == 1)
    h.wait_for(lambda: h.worker.paused)
    url = h.worker.settings.queue_url
    h.wait_for(lambda: queue_counts(h.sqs.client, url) == (4, 0))  # the done one deleted
    receives = h.sqs.calls["receive_message"]
    calls_then = h.sqs.calls["list_queue_tags"]
    h.wait_for(lambda: h.sqs.calls["list_queue_tags"] >= calls_then + 3)  # > 1 s paused
    assert h.sqs.calls["receive_message"] == receives  # no receive while the tag is there
    assert set(h.runs()) == {first}
    assert queue_counts(h.sqs.client, url) == (4, 0)
    untag(h)
    h.wait_for(lambda: len(h.jobs("done")) == 5)
    h.wait_for(lambda: queue_counts(h.sqs.client, url) == (0, 0))
    h.stop()
    assert set(h.runs()) == {first, *rest}
    assert all(run == {"start": 1, "done": 1} for run in h.runs().values())


def test_the_tag_is_read_at_most_once_per_interval(make_worker: Make) -> None:
    h = make_worker(PAUSE_CHECK_SECONDS="3", RECEIVE_WAIT_SECONDS="0")  # receives back to back
    h.start()
    h.wait_for(lambda: h.sqs.calls["receive_message"] >= 20)
    h.stop()
    assert h.sqs.calls["list_queue_tags"] == 1  # the first, at start; the next is due at 3 s


def test_a_refused_tag_read_leaves_the_loop_working_and_is_logged_once(
    make_worker: Make,
) -> None:
    h = make_worker(PAUSE_CHECK_SECONDS="0.1")
    h.sqs.failing["list_queue_tags"] = -1  # e.g. a task role without sqs:ListQueueTags
    ids = {h.send(duration_seconds=0.01) for _ in range(2)}
    h.start()
    h.wait_for(lambda: len(h.jobs("done")) == 2)
    h.wait_for(lambda: h.sqs.calls["list_queue_tags"] >= 3)
    h.stop()
    assert set(h.runs()) == ids
    assert len(h.events("pause_check_error")) == 1
