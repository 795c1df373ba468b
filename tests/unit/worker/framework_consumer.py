"""A stand-in for a framework's own SQS consumer (`php artisan queue:work sqs`, `bin/console
messenger:consume`), for the consumer-mode tests: `python -m tests.unit.worker.framework_consumer`
receives one message at a time from QUEUE_URL (long polls of 1 s), runs it as the recorded job
(recording_handlers.recorded_job: `start` and `done` in the body's record file) and deletes it.
On SIGTERM it does what Laravel's `queue:work` does: it ends the job in hand (and runs one that a
receive under way returns), then exits 0 without receiving again."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import boto3
from worker.handlers import JobContext

from tests.unit.worker.recording_handlers import recorded_job

stopping: list[int] = []


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    stopping.append(signum)


def main() -> int:
    """Consume QUEUE_URL until SIGTERM; AWS_ENDPOINT_URL and AWS_REGION come from the env."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    sqs = boto3.client("sqs", region_name=os.environ.get("AWS_REGION"))
    url = os.environ["QUEUE_URL"]
    while not stopping:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=1,
            AttributeNames=["ApproximateReceiveCount"],
        )
        for message in response.get("Messages", []):
            receives = int(message["Attributes"]["ApproximateReceiveCount"])
            recorded_job(message["Body"], JobContext(message["MessageId"], receives))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
