"""worker.idempotency against DynamoDB in moto: claim, done, release, lock takeover, decorator."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from worker.idempotency import (
    IdempotencyGuard,
    JobInProgressElsewhere,
    Outcome,
    default_lock_seconds,
    idempotent,
)

REGION = "ap-northeast-1"
NOW = 1_800_000_000.0


@dataclass(frozen=True)
class Ctx:
    """What the runtime passes a handler: the message id and its receive count."""

    message_id: str
    receive_count: int = 1


@pytest.fixture
def dynamodb(moto_endpoint: str) -> Any:
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture
def table(dynamodb: Any) -> str:
    """A fresh dedupe table shaped like the queue stack's: key `pk`, TTL on `expires_at`."""
    name = f"dedupe-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def make_guard(dynamodb: Any, table: str) -> Callable[..., IdempotencyGuard]:
    def make(now: float = NOW, **options: Any) -> IdempotencyGuard:
        return IdempotencyGuard(table, client=dynamodb, clock=lambda: now, **options)

    return make


def record(dynamodb: Any, table: str, key: str) -> dict[str, Any] | None:
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)
    found: dict[str, Any] | None = item.get("Item")
    return found


def test_first_claim_acquires_second_sees_in_progress(
    make_guard: Any, dynamodb: Any, table: str
) -> None:
    guard = make_guard(lock_seconds=300, ttl_days=2)
    first = guard.claim("order-1")
    assert first.outcome is Outcome.ACQUIRED
    item = record(dynamodb, table, "order-1")
    assert item is not None
    assert item["status"] == {"S": "in_progress"}
    assert item["owner"] == {"S": first.owner}
    assert int(item["lock_expires_at"]["N"]) == NOW + 300
    assert int(item["expires_at"]["N"]) == NOW + 2 * 86400
    assert guard.claim("order-1").outcome is Outcome.IN_PROGRESS
    with pytest.raises(JobInProgressElsewhere), guard.job("order-1"):
        pytest.fail("the block must not run while another holder has the key")


def test_done_is_kept_and_seen_as_duplicate(make_guard: Any, dynamodb: Any, table: str) -> None:
    guard = make_guard()
    with guard.job("order-2") as claim:
        assert not claim.duplicate
    item = record(dynamodb, table, "order-2")
    assert item is not None
    assert item["status"] == {"S": "done"}
    assert "lock_expires_at" not in item
    assert int(item["expires_at"]["N"]) == NOW + 7 * 86400
    later = make_guard(now=NOW + 6 * 86400)
    assert later.claim("order-2").outcome is Outcome.DONE
    with later.job("order-2") as claim:
        assert claim.duplicate


def test_failure_releases_the_key(make_guard: Any, dynamodb: Any, table: str) -> None:
    guard = make_guard()
    with pytest.raises(RuntimeError, match="boom"), guard.job("order-3"):
        raise RuntimeError("boom")
    assert record(dynamodb, table, "order-3") is None
    assert guard.claim("order-3").outcome is Outcome.ACQUIRED


def test_expired_lock_is_taken_over(make_guard: Any, dynamodb: Any, table: str) -> None:
    crashed = make_guard(lock_seconds=60).claim("order-4")
    assert make_guard(now=NOW + 59).claim("order-4").outcome is Outcome.IN_PROGRESS
    takeover_guard = make_guard(now=NOW + 61)
    takeover = takeover_guard.claim("order-4")
    assert takeover.outcome is Outcome.ACQUIRED
    # The old holder lost the key: it can neither complete nor release it.
    assert make_guard().mark_done(crashed) is False
    assert make_guard().release(crashed) is False
    assert takeover_guard.mark_done(takeover) is True
    item = record(dynamodb, table, "order-4")
    assert item is not None
    assert (item["status"], item["owner"]) == ({"S": "done"}, {"S": takeover.owner})


def test_record_past_its_ttl_counts_as_gone(make_guard: Any) -> None:
    guard = make_guard(ttl_days=1)
    with guard.job("order-5"):
        pass
    assert make_guard(now=NOW + 86400 + 1).claim("order-5").outcome is Outcome.ACQUIRED


def test_decorator_skips_duplicates_and_logs_them(
    make_guard: Any, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("SUPERVISOR_PROCESS_NAME", "worker_03")
    runs: list[str] = []

    @idempotent(guard=make_guard())
    def handler(body: str, ctx: Ctx) -> str:
        runs.append(body)
        return "ran"

    assert handler("job", Ctx("m-1")) == "ran"
    assert handler("job", Ctx("m-1", receive_count=2)) == "duplicate"
    assert handler("job", Ctx("m-2")) == "ran"  # default key: the message id
    assert runs == ["job", "job"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"] == "job_duplicate"
    assert lines[0]["level"] == "info"
    assert lines[0]["process"] == "worker_03"
    assert (lines[0]["message_id"], lines[0]["receive_count"]) == ("m-1", 2)
    assert {"time", "pid", "key"} <= set(lines[0])


def test_decorator_with_business_key_catches_a_resent_message(make_guard: Any) -> None:
    runs: list[str] = []

    @idempotent(key=lambda body, ctx: json.loads(body)["order"], guard=make_guard())
    def handler(body: str, ctx: Ctx) -> None:
        runs.append(ctx.message_id)

    handler('{"order": "A-17"}', Ctx("first-send"))
    handler('{"order": "A-17"}', Ctx("producer-sent-it-again"))
    assert runs == ["first-send"]


def test_decorator_releases_on_failure_so_a_retry_runs(make_guard: Any) -> None:
    attempts: list[int] = []

    @idempotent(guard=make_guard())
    def handler(body: str, ctx: Ctx) -> None:
        attempts.append(ctx.receive_count)
        if ctx.receive_count == 1:
            raise RuntimeError("external API down")

    with pytest.raises(RuntimeError):
        handler("job", Ctx("m-9", 1))
    handler("job", Ctx("m-9", 2))
    handler("job", Ctx("m-9", 3))
    assert attempts == [1, 2]


def test_table_name_comes_from_the_environment_on_first_call(
    dynamodb: Any, table: str, moto_endpoint: str, monkeypatch: Any
) -> None:
    monkeypatch.delenv("IDEMPOTENCY_TABLE_NAME", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)

    @idempotent(ttl_days=1)
    def handler(body: str, ctx: Ctx) -> None:
        pass

    with pytest.raises(RuntimeError, match="set IDEMPOTENCY_TABLE_NAME"):
        handler("job", Ctx("m-env"))
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", table)
    handler("job", Ctx("m-env"))
    item = record(dynamodb, table, "m-env")
    assert item is not None
    assert item["status"] == {"S": "done"}


def test_default_lock_outlasts_the_job_timeout(monkeypatch: Any) -> None:
    monkeypatch.delenv("JOB_TIMEOUT_SECONDS", raising=False)
    assert default_lock_seconds() == 960
    monkeypatch.setenv("JOB_TIMEOUT_SECONDS", "300")
    assert default_lock_seconds() == 360
    assert IdempotencyGuard("t").lock_seconds == 360
