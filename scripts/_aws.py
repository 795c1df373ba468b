"""What the operator commands share on the AWS side: the environment, its stacks, clients, queues.

`--env NAME` names an environment of cdk.json (`--cdk-json`, default the project's, see
`--project`): its config gives the region and the batch windows, and the deployed stacks
`QueueWorker-NAME-Queue` (outputs QueueUrl, DeadLetterQueueUrl) and `QueueWorker-NAME-Worker`
(outputs ClusterName, ServiceName, LogGroupName) give the resources. An environment with several
queues or workers has those outputs once per queue or worker (:func:`output_key`): with `--env`,
`--queue NAME` and `--worker NAME` choose one, and may be left out where there is only one.
Without `--env`, queue commands take `--queue NAME|URL` (an SQS queue; its DLQ is found through
its redrive policy).
`--region` and `--endpoint-url` point the clients elsewhere (boto3 also honours
AWS_ENDPOINT_URL by itself).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from scripts._cli import NONEXISTENT_QUEUE_CODES, OpsError, Parser, UsageError, error_code
from stacks.config import ConfigError, EnvironmentConfig, load_config
from stacks.naming import scoped_id

QUEUE_STACK = "{prefix}-Queue"
WORKER_STACK = "{prefix}-Worker"
# The stacks' outputs the commands read (stacks/queue_stack.py and stacks/worker_stack.py).
QUEUE_URL_OUTPUT = "QueueUrl"
QUEUE_ARN_OUTPUT = "QueueArn"
DLQ_URL_OUTPUT = "DeadLetterQueueUrl"
DLQ_ARN_OUTPUT = "DeadLetterQueueArn"
QUEUE_STACK_OUTPUTS = (QUEUE_URL_OUTPUT, QUEUE_ARN_OUTPUT, DLQ_URL_OUTPUT, DLQ_ARN_OUTPUT)
CLUSTER_OUTPUT = "ClusterName"
SERVICE_OUTPUT = "ServiceName"
LOG_GROUP_OUTPUT = "LogGroupName"
WORKER_STACK_OUTPUTS = (CLUSTER_OUTPUT, SERVICE_OUTPUT, LOG_GROUP_OUTPUT)


def output_key(base: str, name: str) -> str:
    """The OutputKey of output `base` of queue or worker NAME: the stacks' output id
    (stacks.naming.scoped_id: `base` for the `default` one, else `base-NAME`), which
    CloudFormation keys by its letters and digits alone: `QueueUrl-mails` is `QueueUrlmails`."""
    return re.sub(r"[^A-Za-z0-9]", "", scoped_id(base, name))


def add_aws_options(parser: Parser) -> None:
    """--cdk-json, --region, --endpoint-url."""
    parser.add_argument(
        "--cdk-json",
        type=Path,
        help="where the environments are (default: the project's cdk.json)",
    )
    parser.add_argument(
        "--region",
        help="AWS region (default: the environment's, else AWS_REGION or the profile's)",
    )
    parser.add_argument("--endpoint-url", help="AWS endpoint for every client, e.g. moto's server")


def add_queue_options(parser: Parser) -> None:
    """--env or --queue (alias --queue-url) or both, plus the AWS options; :class:`Target`
    says when neither is given."""
    parser.add_argument(
        "--env", help="environment NAME of cdk.json: its deployed stack QueueWorker-NAME-Queue"
    )
    parser.add_argument(
        "--queue",
        "--queue-url",
        dest="queue",
        metavar="NAME|URL",
        help="with --env: the NAME of one of its queues (default: its only one); without: the "
        "work queue's name or URL (its DLQ: from its redrive policy)",
    )
    add_aws_options(parser)


def add_worker_option(parser: Parser) -> None:
    """--worker NAME: one of the environment's workers (default: its only one)."""
    parser.add_argument(
        "--worker",
        metavar="NAME",
        help="with --env: the NAME of one of its workers (default: its only one)",
    )


def add_env_options(parser: Parser) -> None:
    """A required --env, plus the AWS options."""
    parser.add_argument(
        "--env", required=True, help="environment NAME of cdk.json (its deployed stacks)"
    )
    add_aws_options(parser)


def cdk_json(args: argparse.Namespace) -> Path:
    """--cdk-json, else the project's cdk.json."""
    return Path(args.cdk_json) if args.cdk_json else Path(args.project) / "cdk.json"


def environment(cdk_json: Path, name: str) -> EnvironmentConfig:
    """The environment NAME of cdk.json, parsed as `cdk synth -c env=NAME` would."""
    try:
        context = json.loads(cdk_json.read_text()).get("context", {})
    except (OSError, ValueError) as error:
        raise OpsError(f"cannot read {cdk_json}: {error}") from None
    environments = context.get("environments") or {}
    require_environment(environments, name, cdk_json)
    try:
        return load_config(environments, name)
    except ConfigError as error:
        raise OpsError(
            f"environment {name!r} in {cdk_json} is not valid: {first_problem(error)}"
        ) from None


def require_environment(environments: Mapping[str, Any], name: str, cdk_json: Path) -> None:
    """OpsError naming the known environments when NAME is not one of them."""
    if name not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise OpsError(f"unknown environment {name!r} (environments in {cdk_json}: {known})")


def first_problem(error: ConfigError) -> str:
    """The first line of a config error: what one line of the CLI says of it."""
    return str(error).strip().splitlines()[0].strip()


class Target:
    """The environment, stacks and queues named by the parsed arguments; looked up on use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._clients: dict[str, Any] = {}
        self._outputs: dict[str, dict[str, str]] = {}
        self._queue_url: str | None = None
        self._dlq_url: str | None = None
        if not args.env and not getattr(args, "queue", None):
            raise UsageError("one of the arguments --env --queue/--queue-url is required")
        if not args.env and getattr(args, "worker", None):
            raise UsageError("--worker NAME names a worker of an environment: pass --env too")
        self.config = environment(cdk_json(args), args.env) if args.env else None

    @property
    def region(self) -> str | None:
        """--region, else the environment's, else AWS_REGION (boto3 reads the rest)."""
        if self._args.region:
            return str(self._args.region)
        if self.config is not None:
            return self.config.region
        return os.environ.get("AWS_REGION")

    def client(self, service: str) -> Any:
        """A boto3 client for `service` in the region, with --endpoint-url if given."""
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service, region_name=self.region, endpoint_url=self._args.endpoint_url
            )
        return self._clients[service]

    @property
    def sqs(self) -> Any:
        """The SQS client."""
        return self.client("sqs")

    def queue_url(self) -> str:
        """The work queue's URL (checked to exist)."""
        if self._queue_url is None:
            if self.config is not None:
                self._queue_url = self.queue_output(QUEUE_URL_OUTPUT)
            else:
                self._queue_url = self._resolve_queue(self._args.queue)
            self.attributes(self._queue_url, "QueueArn")
        return self._queue_url

    def dlq_url(self) -> str:
        """The DLQ's URL: stack output or the work queue's redrive target (checked to exist)."""
        if self._dlq_url is None:
            if self.config is not None:
                self._dlq_url = self.queue_output(DLQ_URL_OUTPUT)
            else:
                self._dlq_url = self._dlq_from_redrive_policy(self.queue_url())
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

    def output(self, stack: str, key: str) -> str:
        """Output `key` of the environment's stack (QUEUE_STACK or WORKER_STACK)."""
        assert self.config is not None, "outputs need --env"
        name = stack.format(prefix=self.config.stack_prefix)
        if name not in self._outputs:
            self._outputs[name] = stack_outputs(self.client("cloudformation"), name)
        outputs = self._outputs[name]
        if key not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            raise OpsError(f"stack {name} has no output {key} (outputs: {known})")
        return outputs[key]

    def queue_choice(self) -> str:
        """The environment's queue the command acts on: --queue NAME, else its only queue."""
        assert self.config is not None, "queues of the config need --env"
        given = getattr(self._args, "queue", None)
        return chosen("queue", given, list(self.config.work_queues), self.config.name)

    def worker_choice(self) -> str:
        """The environment's worker the command acts on: --worker NAME, else its only worker."""
        assert self.config is not None, "workers need --env"
        given = getattr(self._args, "worker", None)
        return chosen("worker", given, list(self.config.fleets), self.config.name)

    def queue_output(self, base: str, queue: str | None = None) -> str:
        """Output `base` (QUEUE_URL_OUTPUT...) of `queue` (default: the chosen queue)."""
        return self.output(QUEUE_STACK, output_key(base, queue or self.queue_choice()))

    def worker_output(self, base: str, worker: str | None = None) -> str:
        """Output `base` (SERVICE_OUTPUT, LOG_GROUP_OUTPUT) of `worker` (default: the chosen
        worker)."""
        return self.output(WORKER_STACK, output_key(base, worker or self.worker_choice()))

    def _resolve_queue(self, name_or_url: str) -> str:
        if name_or_url.startswith(("https://", "http://")):
            return name_or_url
        try:
            return str(self.sqs.get_queue_url(QueueName=name_or_url)["QueueUrl"])
        except ClientError as error:
            if error_code(error) in NONEXISTENT_QUEUE_CODES:
                raise OpsError(f"queue does not exist: {name_or_url}") from None
            raise

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


def chosen(kind: str, given: str | None, names: Sequence[str], environment: str) -> str:
    """`given`, one of the environment's `names` of queues or workers (`kind`); without it the
    only name. UsageError listing the names when `given` is not one, or is missing and there
    are several."""
    allowed = ", ".join(names)
    if given is None:
        if len(names) == 1:
            return names[0]
        raise UsageError(
            f"environment {environment} has {len(names)} {kind}s: pass --{kind} NAME, one of "
            f"{allowed}"
        )
    if given not in names:
        raise UsageError(
            f"--{kind}: {given!r} is not a {kind} of environment {environment}; allowed: {allowed}"
        )
    return given


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The outputs of the deployed stack `stack` (DescribeStacks)."""
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


def iso_time(epoch_millis: str | int) -> str:
    """An AWS timestamp (epoch milliseconds) as ISO 8601 UTC, seconds precision."""
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
