"""A stand-in for a framework's own SQS consumer (`php artisan queue:work sqs`, `bin/console
messenger:consume`), for the consumer-mode tests: `python -m tests.unit.worker.framework_consumer`
prints READY_EVENT as a JSON line once it can receive, then receives one message at a time from
QUEUE_URL (long polls of 1 s), runs it as the recorded job (recording_handlers.recorded_job:
`start` and `done` in the body's record file) and deletes it. On SIGTERM it does what Laravel's
`queue:work` does: it ends the job in hand (and runs one that a receive under way returns), then
exits 0 without receiving again.

It speaks SQS's JSON protocol to moto's server (AWS_ENDPOINT_URL) with urllib, not boto3: moto
checks no signature, and 16 or more of these start in a fleet test, each 0.35 s of CPU faster.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
from types import FrameType
from typing import Any

from worker.handlers import JobContext
from worker.supervise import write_line

from tests.unit.worker.recording_handlers import recorded_job

READY_EVENT = "consumer_ready"
stopping: list[int] = []


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    stopping.append(signum)


def sqs(action: str, **parameters: Any) -> dict[str, Any]:
    """One SQS call to moto's server; moto takes the region from the credential scope."""
    scope = f"testing/20260101/{os.environ['AWS_REGION']}/sqs/aws4_request"
    request = urllib.request.Request(
        os.environ["AWS_ENDPOINT_URL"],
        data=json.dumps(parameters).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"AmazonSQS.{action}",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, "
            "Signature=0",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read() or b"{}"))


def main() -> int:
    """Consume QUEUE_URL until SIGTERM."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    url = os.environ["QUEUE_URL"]
    # One write for the line and its newline: supervisord glues lines written in pieces.
    write_line(json.dumps({"event": READY_EVENT, "pid": os.getpid()}), sys.stdout)
    while not stopping:
        response = sqs(
            "ReceiveMessage",
            QueueUrl=url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=1,
            AttributeNames=["ApproximateReceiveCount"],
        )
        for message in response.get("Messages", []):
            receives = int(message["Attributes"]["ApproximateReceiveCount"])
            recorded_job(message["Body"], JobContext(message["MessageId"], receives))
            sqs("DeleteMessage", QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
