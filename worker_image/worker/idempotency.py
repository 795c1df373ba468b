"""Idempotency guard: run a job's body at most once per key, across processes and tasks.

SQS delivers at least once, so a handler can see the same job twice. A handler opts in:

    from worker.idempotency import idempotent

    @idempotent(key=lambda body, ctx: json.loads(body)["order_id"])
    def handle(body: str, ctx) -> None: ...

or, for finer control, with the context manager:

    with IdempotencyGuard().job(key) as claim:
        if claim.duplicate:
            return
        ...

A DynamoDB table (partition key `pk`, string; TTL attribute `expires_at`) holds one record per
key: `in_progress` while a holder runs the job (its lock expires after `lock_seconds`), `done`
afterwards until the TTL (default 7 days). See docs/idempotency.md for the guarantees.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol, TypeVar

import boto3
from botocore.exceptions import ClientError

from worker.supervise import write_line

TABLE_ENV = "IDEMPOTENCY_TABLE_NAME"
DEFAULT_TTL_DAYS = 7.0  # SQS keeps a message 14 days at most: a record need not outlive that
DEFAULT_LOCK_SECONDS = 960  # the kit's default job timeout (900 s) plus a margin
LOCK_MARGIN_SECONDS = 60  # lock = JOB_TIMEOUT_SECONDS + this, when that variable is set

# Claim the key if nobody has it, its record outlived its TTL (DynamoDB deletes expired items
# lazily), or its holder's lock expired (the holder crashed or overran its lock).
CLAIM_CONDITION = (
    "attribute_not_exists(pk) OR expires_at < :now "
    "OR (#status = :in_progress AND lock_expires_at < :now)"
)


# What a skipped duplicate returns: the runtime logs its job line with outcome "duplicate".
DUPLICATE = "duplicate"


class JobInProgressElsewhere(Exception):
    """Another holder runs this job now: retry later (the worker retries on any exception)."""


class Outcome(Enum):
    """What a claim found."""

    ACQUIRED = "acquired"
    DONE = "done"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class Claim:
    """The result of `IdempotencyGuard.claim`: the key, the outcome and this holder's id."""

    key: str
    outcome: Outcome
    owner: str

    @property
    def duplicate(self) -> bool:
        """True when the job is already done: skip it."""
        return self.outcome is Outcome.DONE


class JobContext(Protocol):
    """What the decorator needs of the runtime's per-message context."""

    @property
    def message_id(self) -> str: ...

    @property
    def receive_count(self) -> int: ...


def default_lock_seconds() -> int:
    """JOB_TIMEOUT_SECONDS + 60 when that variable is set, else 960."""
    timeout = os.environ.get("JOB_TIMEOUT_SECONDS")
    return int(timeout) + LOCK_MARGIN_SECONDS if timeout else DEFAULT_LOCK_SECONDS


class IdempotencyGuard:
    """Claims, completes and releases keys in the dedupe table.

    `table_name` defaults to $IDEMPOTENCY_TABLE_NAME (read on first use), `client` to a boto3
    DynamoDB client, `ttl_days` to 7, `lock_seconds` to `default_lock_seconds()` and `clock`
    to time.time.
    """

    def __init__(
        self,
        table_name: str | None = None,
        *,
        client: Any = None,
        ttl_days: float = DEFAULT_TTL_DAYS,
        lock_seconds: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table_name = table_name
        self._client = client
        self.ttl_seconds = int(ttl_days * 86400)
        self.lock_seconds = lock_seconds if lock_seconds is not None else default_lock_seconds()
        self.clock = clock

    @property
    def table_name(self) -> str:
        """The table's name: as given, else $IDEMPOTENCY_TABLE_NAME (read once)."""
        if self._table_name is None:
            name = os.environ.get(TABLE_ENV)
            if not name:
                raise RuntimeError(f"idempotency guard: set {TABLE_ENV} or pass table_name")
            self._table_name = name
        return self._table_name

    @property
    def client(self) -> Any:
        """The DynamoDB client (created on first use)."""
        if self._client is None:
            # AWS_REGION first, as the runtime does (boto3 itself reads AWS_DEFAULT_REGION).
            self._client = boto3.client("dynamodb", region_name=os.environ.get("AWS_REGION"))
        return self._client

    def claim(self, key: str) -> Claim:
        """Try to take `key`: ACQUIRED (run the job), DONE (skip it) or IN_PROGRESS (retry)."""
        owner = f"{os.getpid()}/{socket.gethostname()}/{uuid.uuid4().hex}"
        now = int(self.clock())
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": key},
                    "status": {"S": "in_progress"},
                    "owner": {"S": owner},
                    "lock_expires_at": {"N": str(now + self.lock_seconds)},
                    "expires_at": {"N": str(now + self.ttl_seconds)},
                },
                ConditionExpression=CLAIM_CONDITION,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":now": {"N": str(now)},
                    ":in_progress": {"S": "in_progress"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            status = error.response.get("Item", {}).get("status", {}).get("S")
            outcome = Outcome.DONE if status == "done" else Outcome.IN_PROGRESS
            return Claim(key, outcome, owner)
        return Claim(key, Outcome.ACQUIRED, owner)

    def mark_done(self, claim: Claim) -> bool:
        """Record the job as done (kept until the TTL, counted from now).

        Returns False when this holder no longer owns the key (its lock expired and another
        holder took over): the job then may have run twice.
        """
        now = int(self.clock())
        return self._if_owner(
            claim,
            self.client.update_item,
            names={"#status": "status"},
            values={":done": {"S": "done"}, ":expires": {"N": str(now + self.ttl_seconds)}},
            UpdateExpression="SET #status = :done, expires_at = :expires REMOVE lock_expires_at",
        )

    def release(self, claim: Claim) -> bool:
        """Delete this holder's record so a retry can claim the key; False if not the owner."""
        return self._if_owner(claim, self.client.delete_item)

    def _if_owner(
        self,
        claim: Claim,
        operation: Callable[..., Any],
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        **request: Any,
    ) -> bool:
        """Run a DynamoDB write on the claim's record if this holder still owns it."""
        try:
            operation(
                TableName=self.table_name,
                Key={"pk": {"S": claim.key}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={**(names or {}), "#owner": "owner"},
                ExpressionAttributeValues={**(values or {}), ":owner": {"S": claim.owner}},
                **request,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @contextmanager
    def job(self, key: str) -> Iterator[Claim]:
        """Hold `key` for the block: done on success, released on an exception.

        Yields the claim; when `claim.duplicate` the job is already done and the block should
        return at once (nothing is recorded). Raises JobInProgressElsewhere when another holder
        runs it now.
        """
        claim = self.claim(key)
        if claim.outcome is Outcome.IN_PROGRESS:
            raise JobInProgressElsewhere(f"job {key!r} is in progress elsewhere; retry later")
        if claim.duplicate:
            yield claim
            return
        try:
            yield claim
        except BaseException:
            self.release(claim)
            raise
        if not self.mark_done(claim):
            log("warning", "idempotency_lock_lost", key=key, lock_seconds=self.lock_seconds)


Handler = TypeVar("Handler", bound=Callable[[str, Any], Any])


def idempotent(
    key: Callable[[str, Any], str] | None = None,
    *,
    ttl_days: float = DEFAULT_TTL_DAYS,
    lock_seconds: int | None = None,
    table_name: str | None = None,
    guard: IdempotencyGuard | None = None,
) -> Callable[[Handler], Handler]:
    """Decorate a `handler(body, ctx)` so its body runs at most once per key.

    `key(body, ctx)` defaults to the SQS message id (`ctx.message_id`); a business key from the
    producer is better, because a message sent again gets a new id. A duplicate returns DUPLICATE
    without running the handler and logs a `job_duplicate` line. The guard (table, TTL, lock)
    is built on the first call unless given.
    """

    def decorate(handler: Handler) -> Handler:
        holder: list[IdempotencyGuard] = [guard] if guard else []

        @functools.wraps(handler)
        def guarded(body: str, ctx: JobContext) -> Any:
            if not holder:
                holder.append(
                    IdempotencyGuard(table_name, ttl_days=ttl_days, lock_seconds=lock_seconds)
                )
            job_key = key(body, ctx) if key else ctx.message_id
            with holder[0].job(job_key) as claim:
                if claim.duplicate:
                    log(
                        "info",
                        "job_duplicate",
                        message_id=ctx.message_id,
                        receive_count=ctx.receive_count,
                        key=job_key,
                    )
                    return DUPLICATE
                return handler(body, ctx)

        return guarded  # type: ignore[return-value]

    return decorate


def log(level: str, event: str, **fields: Any) -> None:
    """One JSON line on stdout with the worker log's common fields (docs/contract.md)."""
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "event": event,
        "process": os.environ.get("SUPERVISOR_PROCESS_NAME", "").strip() or "worker_local",
        "pid": os.getpid(),
        **fields,
    }
    write_line(json.dumps(line), sys.stdout)  # one write: never glued to another line
