"""The SQS clients of the kit's processes, each with its own bound on a call's time.

boto3 is imported in the function, not at the top: a process that cannot start (a bad setting
or handler) fails before paying for it, and a consumer's watcher never loads it."""

from __future__ import annotations

from typing import Any


def bounded_sqs_client(
    region: str | None, attempts: int, connect_seconds: float, read_seconds: float
) -> Any:
    """An SQS client of `attempts` tries per call, each within the two timeouts;
    AWS_ENDPOINT_URL (moto locally) comes from the env."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=connect_seconds,
        read_timeout=read_seconds,
    )
    return boto3.client("sqs", region_name=region, config=config)
