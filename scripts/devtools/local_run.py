"""Run the worker fleet locally, as an environment's synthesized templates configure it.

    queue-worker local-run --env dev [--messages 40 --duration 1 --poison 2
        --malformed 2 --processes N --prefetch S]

Reads cdk.out/NAME/QueueWorker-NAME-Queue.template.json (the work queue's VisibilityTimeout,
retention and maxReceiveCount; the DLQ) and cdk.out/NAME/QueueWorker-NAME-Worker.template.json
(the container Environment of the task definition), starts moto's server on loopback, creates
the queue and DLQ as the queue stack would, runs the real supervisord fleet
(`python -m worker.supervise`, the image's entrypoint) with the template's settings, enqueues a
batch of sleep jobs including poison (always failing) and malformed messages, shows progress
and ends with a report. Progress and settings go to stderr, the report to stdout (with --json,
stdout is the JSON document alone). At least one good message (--messages 1): without one there
is no throughput to report. Exits 1 if any message was lost (one `error:` line says how many),
2 on bad arguments, 130 on Ctrl-C; always cleans up.

Local overrides (printed): QUEUE_URL/DEAD_LETTER_QUEUE_URL point at moto, the handler is the
example `worker.examples:sleep_job`, and the retry backoff is 1-2 s so poison messages reach the
DLQ within seconds instead of minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from worker.contract import FAILURE_REASON_ATTRIBUTE, SOURCE_MESSAGE_ID_ATTRIBUTE

from scripts import _cli
from scripts._cli import (
    Parser,
    non_negative_float,
    non_negative_int,
    positive_int,
    print_json,
)

HELP = "run the worker fleet locally on moto, as an environment's synthesized templates say"
WORKER_IMAGE = _cli.INSTALLED_CHECKOUT / "worker_image"
REGION = "ap-northeast-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
DEMO_OVERRIDES = {
    "WORKER_HANDLER_MODE": "callable",
    "WORKER_HANDLER": "worker.examples:sleep_job",
    "RETRY_BACKOFF_BASE_SECONDS": "1",
    "RETRY_BACKOFF_MAX_SECONDS": "2",
}


@dataclass(frozen=True)
class QueueSpec:
    """The work queue's settings from the queue stack's template."""

    visibility_timeout: int = 30
    retention_seconds: int = 345_600
    max_receive_count: int = 3


def say(text: str) -> None:
    """A progress or settings line: stderr, so that stdout is the report alone."""
    print(text, file=sys.stderr, flush=True)


def read_templates(assembly: Path, env_name: str) -> tuple[QueueSpec, dict[str, str]]:
    """(work queue settings, worker container environment with literal values only)."""
    queue_path = assembly / f"QueueWorker-{env_name}-Queue.template.json"
    queue_template = json.loads(queue_path.read_text())
    queues = [
        r["Properties"]
        for r in queue_template["Resources"].values()
        if r["Type"] == "AWS::SQS::Queue"
    ]
    work = [q for q in queues if "RedrivePolicy" in q]
    if len(work) != 1 or len(queues) != 2:
        raise _cli.OpsError(f"{queue_path}: expected one queue with a RedrivePolicy and its DLQ")
    spec = QueueSpec(
        visibility_timeout=int(work[0].get("VisibilityTimeout", 30)),
        retention_seconds=int(work[0].get("MessageRetentionPeriod", 345_600)),
        max_receive_count=int(work[0]["RedrivePolicy"]["maxReceiveCount"]),
    )
    environment = container_definition(assembly, env_name).get("Environment", [])
    # Values that are CloudFormation expressions (the queue URLs) only exist once deployed.
    return spec, {e["Name"]: e["Value"] for e in environment if isinstance(e["Value"], str)}


def container_definition(assembly: Path, env_name: str) -> dict[str, Any]:
    """The worker container of the task definition in the worker stack's template."""
    worker_template = json.loads(
        (assembly / f"QueueWorker-{env_name}-Worker.template.json").read_text()
    )
    [task] = [
        r["Properties"]
        for r in worker_template["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
    ]
    return dict(task["ContainerDefinitions"][0])


class CountingMoto:
    """moto's server on loopback (in this process); counts the SQS requests it serves.

    ``port`` 0 (the default) takes a free one; a port in use raises OSError."""

    def __init__(self, port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.requests: Counter[str] = Counter()
        self.server_errors: Counter[str] = Counter()
        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            action = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2] or "query-protocol"
            self.requests[action] += 1

            def start(status: str, headers: Any, *rest: Any) -> Any:
                if status.startswith("5"):
                    self.server_errors[action] += 1
                return start_response(status, headers, *rest)

            return app(environ, start)

        self.server = make_server(
            "127.0.0.1", port, counting, threaded=True, request_handler=MotoRequestHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@dataclass
class FleetLog:
    """The fleet's stdout, parsed: JSON lines become events; the rest is kept for errors.

    ``copy``: a file that gets every line too; ``ship``: called with every line as well."""

    events: list[dict[str, Any]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    copy: Path | None = None
    ship: Callable[[str], None] | None = None

    def follow(self, stream: Any) -> None:
        copy = open(self.copy, "a") if self.copy else None  # noqa: SIM115 - closed below
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if copy:
                copy.write(line + "\n")
            if self.ship:
                self.ship(line)
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.other.append(line)
        if copy:
            copy.close()

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == event]


@dataclass
class Report:
    """What the run shows at its end."""

    enqueued: int
    processed: int
    dead_lettered: int
    dead_lettered_by_worker: int
    """Sent to the DLQ by the worker, with a reason (a malformed body, a non-retryable error)."""
    dead_lettered_by_sqs: int
    """Moved by SQS's redrive policy after max_receive_count receives (retried until then)."""
    max_receive_count: int
    lost: int
    duplicates: int
    wall_seconds: float
    ideal_seconds: float
    worker_requests: int
    request_breakdown: dict[str, int]
    outcomes: dict[str, int]
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    """The worker's reasons (its failure reason up to the first colon), with their counts."""
    server_errors: dict[str, int] = field(default_factory=dict)

    @property
    def efficiency(self) -> float:
        return self.ideal_seconds / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def requests_per_message(self) -> float:
        return self.worker_requests / self.processed if self.processed else float("inf")

    def lines(self) -> list[str]:
        breakdown = ", ".join(f"{k} {v}" for k, v in sorted(self.request_breakdown.items()))
        per_message = (
            f"{self.requests_per_message:.2f} per processed message"
            if self.processed
            else "none processed"
        )
        return [
            f"enqueued        {self.enqueued}",
            f"processed       {self.processed}",
            f"dead-lettered   {self.dead_letter_text()}",
            f"lost            {self.lost}",
            f"duplicates      {self.duplicates}",
            f"job runs        {self.runs_text()}",
            f"wall time       {self.wall_seconds:.1f} s (ideal {self.ideal_seconds:.1f} s: "
            f"{self.efficiency:.0%} of ideal)",
            f"SQS requests    {self.worker_requests} by the workers = {per_message}"
            + (f" ({breakdown})" if breakdown else ""),
        ] + ([f"moto 5xx errors {_counts(self.server_errors)}"] if self.server_errors else [])

    def dead_letter_text(self) -> str:
        """``4: 2 by the worker with a reason (malformed body 2), 2 moved by SQS after 3 ...``."""
        if not self.dead_lettered:
            return "0"
        parts = []
        if self.dead_lettered_by_worker:
            reasons = _counts(self.dead_letter_reasons)
            parts.append(
                f"{self.dead_lettered_by_worker} by the worker with a reason"
                + (f" ({reasons})" if reasons else "")
            )
        if self.dead_lettered_by_sqs:
            parts.append(
                f"{self.dead_lettered_by_sqs} moved by SQS after {self.max_receive_count} "
                "receives (max_receive_count)"
            )
        return f"{self.dead_lettered}: {', '.join(parts)}"

    def runs_text(self) -> str:
        """``48: 40 done, 6 retry, 2 dead_letter (a retried message runs again)``."""
        total = sum(self.outcomes.values())
        if not total:
            return "0"
        again = " (a retried message runs again)" if total > self.enqueued else ""
        return f"{total}: {_counts(self.outcomes, unit_first=True)}{again}"


def _counts(counts: dict[str, int], unit_first: bool = False) -> str:
    """``malformed body 2, timeout 1`` (or ``2 malformed body, 1 timeout``): most first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{n} {name}" if unit_first else f"{name} {n}" for name, n in ordered)


def fake_aws_env() -> None:
    """Fake credentials and a region: nothing here may reach real AWS."""
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.setdefault("AWS_REGION", REGION)
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])
    os.environ.pop("AWS_PROFILE", None)


def _create_queues(sqs: Any, spec: QueueSpec) -> tuple[str, str]:
    # Unique per run: a long poll the previous fleet abandoned at its stop may still be waiting
    # in the server and would take (hide) messages of a queue with the same name.
    suffix = uuid.uuid4().hex[:12]
    dlq = sqs.create_queue(QueueName=f"local-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=f"local-work-{suffix}",
        Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout),
            "MessageRetentionPeriod": str(spec.retention_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return url, dlq


def enqueue_batch(sqs: Any, url: str, args: argparse.Namespace) -> set[str]:
    good = json.dumps({"duration_seconds": args.duration})
    poison = json.dumps({"duration_seconds": min(args.duration, 0.5), "fail": True})
    bodies = [good] * args.messages + [poison] * args.poison + ["{malformed"] * args.malformed
    ids: set[str] = set()
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])
        ]
        response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        ids.update(m["MessageId"] for m in response["Successful"])
    return ids


def _dead_letter_ids(sqs: Any, dlq: str) -> tuple[dict[str, str], set[str]]:
    """The work-queue ids of the DLQ's messages: ({sent by the worker: its reason}, moved by SQS).

    The worker's copy names its source message and its reason in attributes; SQS's redrive
    moves the message itself, id and all."""
    by_worker: dict[str, str] = {}
    by_sqs: set[str] = set()
    while batch := sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=600, MessageAttributeNames=["All"]
    ).get("Messages", []):
        for message in batch:
            attributes = message.get("MessageAttributes", {})
            source = attributes.get(SOURCE_MESSAGE_ID_ATTRIBUTE)
            if source:
                reason = attributes.get(FAILURE_REASON_ATTRIBUTE, {}).get("StringValue", "")
                by_worker[source["StringValue"]] = reason
            else:
                by_sqs.add(message["MessageId"])
    return by_worker, by_sqs


def _queue_count(sqs: Any, url: str, name: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"]
    return int(attributes[name])


@contextlib.contextmanager
def _fleet(env: dict[str, str], log: FleetLog) -> Iterator[subprocess.Popen[bytes]]:
    """The real fleet (`python -m worker.supervise`); SIGTERMed, then killed, on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.supervise"],
        cwd=WORKER_IMAGE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop the fleet in order
    )
    reader = threading.Thread(target=log.follow, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(float(env.get("SUPERVISOR_STOPWAITSECS", "110")) + 10)
            except subprocess.TimeoutExpired:
                say("fleet did not stop in time: killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything left of the group
        process.wait()
        reader.join(5)


def fleet_environment(
    template_env: dict[str, str],
    overrides: dict[str, str],
    queue_url: str,
    dlq_url: str,
    endpoint_url: str,
    run_dir: Path,
) -> dict[str, str]:
    """The fleet's environment: ours, the template's container environment, the local
    overrides, the queues and the endpoint (moto); no ECS agent (no task protection)."""
    env = {
        **os.environ,
        **template_env,
        **overrides,
        "QUEUE_URL": queue_url,
        "DEAD_LETTER_QUEUE_URL": dlq_url,
        "AWS_ENDPOINT_URL": endpoint_url,
        "WORKER_RUN_DIR": str(run_dir / f"run-{os.getpid()}"),
        "WORKER_TASK_DIR": str(run_dir / f"task-{os.getpid()}"),
    }
    env.pop("ECS_AGENT_URI", None)
    return env


def start_fleet(
    stack: contextlib.ExitStack, env: dict[str, str], log: FleetLog
) -> tuple[subprocess.Popen[bytes], int]:
    """The fleet started on ``stack`` (stopped when it closes), once all its workers have
    started: (the supervisord entrypoint, the number of worker processes)."""
    processes = int(env.get("WORKER_PROCESSES", "2"))
    fleet = stack.enter_context(_fleet(env, log))
    say(f"fleet: supervisord entrypoint pid {fleet.pid} (process group {fleet.pid})")
    _wait_until(
        lambda: len(log.of("worker_started")) >= processes or fleet.poll() is not None,
        60,
        "the workers to start",
        log,
    )
    if fleet.poll() is not None:
        show_fleet_output(log)
        raise _cli.OpsError("the fleet exited at start (its output is above)")
    return fleet, processes


def local_overrides(args: argparse.Namespace) -> dict[str, str]:
    """DEMO_OVERRIDES, plus --processes and --prefetch when given."""
    overrides = dict(DEMO_OVERRIDES)
    if args.processes:
        overrides["WORKER_PROCESSES"] = str(args.processes)
    if args.prefetch is not None:
        overrides["PREFETCH_SECONDS"] = str(args.prefetch)
    return overrides


def _wait_until(condition: Any, timeout: float, what: str, log: FleetLog) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            show_fleet_output(log)
            raise _cli.OpsError(f"timed out waiting for {what} (the fleet's output is above)")
        time.sleep(0.1)


def show_fleet_output(log: FleetLog) -> None:
    """The fleet's last lines that are not JSON events (tracebacks, supervisord), on stderr."""
    for line in log.other[-20:]:
        say(line)


def run(args: argparse.Namespace) -> Report:
    """Start everything, run the batch, stop everything; the report of the run."""
    assembly = _cli.synthesized(Path(args.cdk_out or Path(args.project) / "cdk.out"), args.env)
    spec, template_env = read_templates(assembly, args.env)
    fake_aws_env()
    overrides = local_overrides(args)
    shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
    say(f"settings from the {args.env} templates; local overrides: {shown}")
    with contextlib.ExitStack() as stack:
        workers_moto = CountingMoto()  # the workers' endpoint: its requests are counted
        stack.callback(workers_moto.close)
        admin_moto = CountingMoto()  # this script's own endpoint (same in-process state)
        stack.callback(admin_moto.close)
        sqs = boto3.client("sqs", region_name=os.environ["AWS_REGION"], endpoint_url=admin_moto.url)
        url, dlq = _create_queues(sqs, spec)
        env = fleet_environment(
            template_env,
            overrides,
            url.replace(admin_moto.url, workers_moto.url),
            dlq.replace(admin_moto.url, workers_moto.url),
            workers_moto.url,
            Path(args.run_dir),
        )
        say(
            f"queue: visibility {spec.visibility_timeout} s, maxReceiveCount "
            f"{spec.max_receive_count}; fleet: {env.get('WORKER_PROCESSES', '2')} processes"
        )
        log = FleetLog(copy=Path(args.fleet_log) if args.fleet_log else None)
        fleet, processes = start_fleet(stack, env, log)
        workers_moto.requests.clear()
        started = time.monotonic()
        sent = enqueue_batch(sqs, url, args)

        def settled() -> int:
            done = {j["message_id"] for j in log.of("job") if j["outcome"] == "done"}
            return len(done & sent) + _queue_count(sqs, dlq, "ApproximateNumberOfMessages")

        finished_at = None
        deadline = started + args.timeout
        # Settled = done or dead-lettered: one updating line on a terminal, quiet elsewhere.
        with _cli.progress("settled", len(sent)) as bar:
            try:
                say(f"enqueued {len(sent)} messages: {args.messages} good, {args.poison} "
                    f"poison, {args.malformed} malformed")  # fmt: skip
                while time.monotonic() < deadline:
                    bar.advance(settled() - bar.done)
                    if bar.done >= len(sent):
                        finished_at = time.monotonic()
                        break
                    if fleet.poll() is not None:
                        say("the fleet exited early")
                        break
                    time.sleep(0.1)
            except KeyboardInterrupt:
                raise _cli.Interrupted(
                    f"settled {bar.of_total()}; the fleet and the embedded SQS are stopped"
                ) from None
        wall = (finished_at or time.monotonic()) - started
        requests = dict(workers_moto.requests)  # before the stop: shutdown is not work
        server_errors = dict(workers_moto.server_errors)
        by_worker, by_sqs = _dead_letter_ids(sqs, dlq)
    dead = set(by_worker) | by_sqs
    jobs = log.of("job")
    done = [j["message_id"] for j in jobs if j["outcome"] == "done"]
    # The reason up to its first colon: "malformed body", "RuntimeError".
    reasons = Counter(
        (reason.partition(":")[0] or "no reason given")
        for message_id, reason in by_worker.items()
        if message_id in sent
    )
    return Report(
        enqueued=len(sent),
        processed=len(set(done) & sent),
        dead_lettered=len(dead & sent),
        dead_lettered_by_worker=len(set(by_worker) & sent),
        dead_lettered_by_sqs=len(by_sqs & sent - set(by_worker)),
        max_receive_count=spec.max_receive_count,
        lost=len(sent - set(done) - dead),
        duplicates=len(done) - len(set(done)),
        wall_seconds=wall,
        ideal_seconds=args.messages * args.duration / processes,
        worker_requests=sum(requests.values()),
        request_breakdown=requests,
        outcomes=dict(Counter(j["outcome"] for j in jobs)),
        dead_letter_reasons=dict(reasons),
        server_errors=server_errors,
    )


def add_arguments(parser: Parser) -> None:
    """The command line."""
    parser.add_argument("--env", default="dev", help="environment name (default dev)")
    parser.add_argument("--cdk-out", help="synthesized assemblies (default: the project's cdk.out)")
    add_batch_arguments(parser, messages=40, poison=2, malformed=2)
    parser.add_argument("--timeout", type=float, default=300, help="give up after (default 300)")
    parser.add_argument("--fleet-log", default="", help="also write the fleet's output here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--run-dir", default="/tmp/queue-worker-local", help=argparse.SUPPRESS)


def add_batch_arguments(parser: Parser, messages: int, poison: int, malformed: int) -> None:
    """The demo batch (--messages, --duration, --poison, --malformed) and the fleet's
    local overrides (--processes, --prefetch), with these defaults."""
    parser.add_argument(
        "--messages",
        type=positive_int,
        default=messages,
        help=f"good messages, at least 1 (default {messages})",
    )
    parser.add_argument(
        "--duration", type=non_negative_float, default=1.0, help="seconds a job (default 1)"
    )
    parser.add_argument(
        "--poison",
        type=non_negative_int,
        default=poison,
        help=f"always failing: retried, then moved to the DLQ by SQS (default {poison})",
    )
    parser.add_argument(
        "--malformed",
        type=non_negative_int,
        default=malformed,
        help=f"non-JSON bodies: dead-lettered by the worker with a reason (default {malformed})",
    )
    parser.add_argument(
        "--processes", type=non_negative_int, default=0, help="override WORKER_PROCESSES"
    )
    parser.add_argument("--prefetch", type=float, default=None, help="override PREFETCH_SECONDS")


def execute(args: argparse.Namespace) -> int:
    """Run, print the report; 1 if a message was lost, 130 on Ctrl-C (after cleaning up)."""

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        report = run(args)
    except KeyboardInterrupt:  # outside the wait for the batch (start-up, clean-up)
        raise _cli.Interrupted("the fleet and the embedded SQS are stopped") from None
    if args.json:
        print_json({**asdict(report), "efficiency": report.efficiency})
    else:
        print("\n".join(report.lines()))
    if report.lost:
        raise _cli.OpsError(
            f"{report.lost} of {report.enqueued} messages lost (neither done nor in the DLQ)"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m scripts.devtools.local_run`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
