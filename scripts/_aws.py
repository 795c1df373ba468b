"""What the operator scripts share: the queue target options, clients, counts, progress, errors.

Every script takes the queue by `--queue-url URL` (the work queue; its DLQ is found through its
redrive policy) or by `--env NAME` (the outputs of the deployed stack `QueueWorker-NAME-Queue`),
plus `--region` and `--endpoint-url` (boto3 also honours AWS_ENDPOINT_URL by itself).
Errors an operator can fix end the script with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

EXIT_ERROR = 2
STACK_NAME = "QueueWorker-{env}-Queue"
NONEXISTENT_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


class OpsError(Exception):
    """An error the operator can act on; its message is printed as one line."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (plus a hint) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def make_parser(prog: str, description: str) -> Parser:
    """A parser with the queue target options every script takes."""
    parser = Parser(prog=prog, description=description)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--queue-url", help="the work queue's URL (its DLQ: from its redrive policy)"
    )
    target.add_argument(
        "--env", help="environment NAME: read stack QueueWorker-NAME-Queue's outputs"
    )
    parser.add_argument(
        "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)"
    )
    parser.add_argument("--endpoint-url", help="SQS/CloudFormation endpoint, e.g. moto's server")
    return parser


def _at_least(convert: Callable[[str], Any], minimum: float) -> Callable[[str], Any]:
    """An argparse type: `convert(text)`, which must be a number >= `minimum`."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value >= minimum:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


positive_int = _at_least(int, 1)
non_negative_int = _at_least(int, 0)
non_negative_float = _at_least(float, 0)


class Target:
    """The queue and DLQ named by the parsed arguments; looked up on first use, then cached."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._clients: dict[str, Any] = {}
        self._outputs: dict[str, str] | None = None
        self._queue_url: str | None = None
        self._dlq_url: str | None = None

    def client(self, service: str) -> Any:
        """A boto3 client for `service` with the --region and --endpoint-url given."""
        if service not in self._clients:
            # boto3 itself reads AWS_DEFAULT_REGION and the profile, not AWS_REGION.
            region = self._args.region or os.environ.get("AWS_REGION")
            self._clients[service] = boto3.client(
                service, region_name=region, endpoint_url=self._args.endpoint_url
            )
        return self._clients[service]

    @property
    def sqs(self) -> Any:
        """The SQS client."""
        return self.client("sqs")

    def queue_url(self) -> str:
        """The work queue's URL (checked to exist)."""
        if self._queue_url is None:
            self._queue_url = self._args.queue_url or self._output("QueueUrl")
            self.attributes(self._queue_url, "QueueArn")
        return self._queue_url

    def dlq_url(self) -> str:
        """The DLQ's URL: stack output or the work queue's redrive target (checked to exist)."""
        if self._dlq_url is None:
            if self._args.env:
                self._dlq_url = self._output("DeadLetterQueueUrl")
            else:
                self._dlq_url = self._dlq_from_redrive_policy(self._args.queue_url)
            self.attributes(self._dlq_url, "QueueArn")
        return self._dlq_url

    def attributes(self, url: str, *names: str) -> dict[str, str]:
        """GetQueueAttributes of `url`; a missing queue becomes a one-line OpsError."""
        try:
            response = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))
        except ClientError as error:
            if error_code(error) in NONEXISTENT_QUEUE_CODES:
                raise OpsError(f"queue does not exist: {url}") from None
            raise
        return dict(response.get("Attributes", {}))

    def arn(self, url: str) -> str:
        """The queue's ARN."""
        return self.attributes(url, "QueueArn")["QueueArn"]

    def _dlq_from_redrive_policy(self, queue_url: str) -> str:
        attributes = self.attributes(queue_url, "RedrivePolicy")
        if "RedrivePolicy" not in attributes:
            raise OpsError(f"queue {queue_name(queue_url)} has no redrive policy, so no DLQ")
        dlq_arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        *_, account, name = dlq_arn.split(":")
        try:
            response = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        except ClientError as error:
            if error_code(error) in NONEXISTENT_QUEUE_CODES:
                raise OpsError(f"the DLQ in the redrive policy does not exist: {dlq_arn}") from None
            raise
        return str(response["QueueUrl"])

    def _output(self, key: str) -> str:
        if self._outputs is None:
            self._outputs = stack_outputs(self.client("cloudformation"), self._args.env)
        if key not in self._outputs:
            known = ", ".join(sorted(self._outputs)) or "none"
            stack = STACK_NAME.format(env=self._args.env)
            raise OpsError(f"stack {stack} has no output {key} (outputs: {known})")
        return self._outputs[key]


def stack_outputs(cloudformation: Any, env: str) -> dict[str, str]:
    """The outputs of the deployed stack `QueueWorker-<env>-Queue` (DescribeStacks)."""
    stack = STACK_NAME.format(env=env)
    try:
        response = cloudformation.describe_stacks(StackName=stack)
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            region = cloudformation.meta.region_name
            raise OpsError(f"stack {stack} does not exist in {region} (deploy it first)") from None
        raise
    outputs = response["Stacks"][0].get("Outputs", [])
    return {output["OutputKey"]: output["OutputValue"] for output in outputs}


def queue_name(url: str) -> str:
    """The queue's name: the last part of its URL."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def queue_counts(target: Target, url: str) -> dict[str, int]:
    """Approximate message counts of a queue: `visible`, `in_flight`, `delayed`."""
    names = {
        "visible": "ApproximateNumberOfMessages",
        "in_flight": "ApproximateNumberOfMessagesNotVisible",
        "delayed": "ApproximateNumberOfMessagesDelayed",
    }
    attributes = target.attributes(url, *names.values())
    return {key: int(attributes.get(name, 0)) for key, name in names.items()}


def describe_counts(name: str, counts: dict[str, int]) -> str:
    """One line: `NAME: about V visible, F in flight, D delayed`."""
    return (
        f"{name}: about {counts['visible']} visible, {counts['in_flight']} in flight, "
        f"{counts['delayed']} delayed"
    )


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError ('' when there is none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def iso_time(epoch_millis: str | int) -> str:
    """An SQS timestamp (epoch milliseconds) as ISO 8601 UTC, seconds precision."""
    moment = datetime.fromtimestamp(int(epoch_millis) / 1000, tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def release(sqs: Any, url: str, receipt_handles: Sequence[str]) -> None:
    """Make received messages visible again at once (visibility 0), 10 per call."""
    for start in range(0, len(receipt_handles), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(receipt_handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


class Pacer:
    """Keeps work at most `rate` items a second (0: no limit) by sleeping before each batch."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._started = time.monotonic()

    def wait(self, done: int) -> None:
        """Sleep until `done` items are allowed to have been processed."""
        if self.rate:
            time.sleep(max(0.0, self._started + done / self.rate - time.monotonic()))


class Progress:
    """Prints `LABEL: N[/TOTAL] ...` to stderr at most once every `interval` seconds (default 1)."""

    def __init__(self, label: str, interval: float = 1.0, stream: TextIO | None = None) -> None:
        self.label = label
        self.interval = interval
        self.stream = stream or sys.stderr
        self._last = time.monotonic()

    def update(self, done: int, total: int | None = None, detail: str = "") -> None:
        """Report `done` of `total` if the interval has passed since the last line."""
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        of_total = f"/{total}" if total is not None else ""
        print(f"{self.label}: {done}{of_total} {detail}".rstrip(), file=self.stream, flush=True)


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a script's main; turn the errors an operator can fix into one line and exit code 2."""
    try:
        return main(argv)
    except OpsError as error:
        message = str(error)
    except NoCredentialsError:
        message = "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, or log in)"
    except NoRegionError:
        message = "no AWS region: pass --region or set AWS_REGION"
    except ClientError as error:
        if error_code(error) in NONEXISTENT_QUEUE_CODES:
            message = "queue does not exist (deleted while the script ran?)"
        else:
            message = f"AWS error: {error}"
    except BotoCoreError as error:
        message = f"AWS client error: {error}"
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR
