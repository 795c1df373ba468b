"""Measure your worker image: the memory and CPU a busy process takes, for the planner.

    queue-worker measure --image our-app:1.4.2 --env prod --bodies bodies.jsonl
    queue-worker measure --image our-app:1.4.2 --env prod --bodies bodies.jsonl --out measured.json
    queue-worker plan --measured measured.json --messages 2000 --duration uniform:30:300 --env prod

Runs IMAGE as ECS runs the environment's task (its user, 10001 unless worker.image says, a
read-only root filesystem, a /tmp volume, the container settings of the synthesized
cdk.out/ENV/QueueWorker-ENV-Worker.template.json: `make synth ENV=ENV` first) with --processes
worker processes, against an embedded SQS (moto's server on loopback; the container shares the
host's network, and gets fake credentials: nothing reaches AWS). It sends the sample bodies of
--bodies (one SQS message body a line, as your producer sends it; blank lines skipped) again
and again, so that every process keeps a job; once every process has finished one (the
warm-up), it counts the container's CPU time over --seconds and reads the peak of its memory
(its cgroup: memory.peak, or v1's max_usage_in_bytes; else the highest memory.current
sampled), and stops the container.

Per process: memory = (the peak - the kit's own share in the environment's handler mode,
stacks/sizing.py) / processes, rounded up to a MiB; CPU = CPU seconds / --seconds / processes,
the vCPU a busy process takes. Prints them as the planner's `--process-memory N --process-cpu X`;
--out writes them as a JSON document for `plan --measured`. Measure with jobs like your real
ones: the figures are those of the bodies given. The task's secrets are not in the templates:
give stand-ins with --set NAME=VALUE. Exits 1 when the container stops or the jobs fail.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from worker.contract import DONE, ERROR, JOB_EVENT, OUTCOME, PROCESS

from scripts import _cli
from scripts._cli import OpsError, Parser, UsageError, positive_int, print_json
from scripts.capacity import measured
from scripts.devtools.local_run import (
    FAKE_CREDENTIALS,
    CountingMoto,
    FleetLog,
    _create_queues,
    container_definition,
    fake_aws_env,
    read_templates,
    say,
    show_fleet_output,
)
from stacks import sizing

HELP = "measure your image's memory and CPU per busy process, for `plan --measured`"
ENGINES = ("docker", "podman")
CGROUP_FILES = (
    "/sys/fs/cgroup/memory.current",  # cgroup v2
    "/sys/fs/cgroup/memory.peak",
    "/sys/fs/cgroup/cpu.stat",
    "/sys/fs/cgroup/memory/memory.usage_in_bytes",  # cgroup v1
    "/sys/fs/cgroup/memory/memory.max_usage_in_bytes",
    "/sys/fs/cgroup/cpuacct/cpuacct.usage",
)
START_TIMEOUT = 120  # seconds for the fleet's processes to start


def ecs_run_options(engine: str, user: str) -> tuple[str, ...]:
    """`ENGINE run` options that start a container as the task definition does: ``user`` (the
    template's, 10001:10001 unless the environment's worker.image says) and a read-only root
    filesystem whose /tmp is writable only through the image's `VOLUME ["/tmp"]` (ECS's task
    volume at /tmp copies the image's /tmp mode from it). podman would mount a tmpfs on /tmp by
    itself: turned off."""
    no_tmpfs = ("--read-only-tmpfs=false",) if engine == "podman" else ()
    return ("--read-only", *no_tmpfs, "--user", user)


def read_bodies(path: Path) -> list[str]:
    """The message bodies of ``path``, one JSON document a line (blank lines skipped);
    UsageError naming the first line that is not JSON."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise UsageError(f"--bodies {path}: {error.strerror}") from None
    bodies = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError:
            raise UsageError(f"--bodies {path}: line {number} is not one JSON body") from None
        bodies.append(line.strip())
    if not bodies:
        raise UsageError(f"--bodies {path}: no message body in it")
    return bodies


def cgroup_figures(text: str) -> tuple[int, int | None, float]:
    """(memory now, its peak or None, CPU seconds) from `grep -H .` of CGROUP_FILES."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        path, _, value = line.partition(":")
        key = path.rsplit("/", 1)[-1]
        values[key] = f"{values[key]} {value}" if key in values else value
    now = values.get("memory.current") or values.get("memory.usage_in_bytes")
    peak = values.get("memory.peak") or values.get("memory.max_usage_in_bytes")
    if "cpu.stat" in values:
        stat = values["cpu.stat"].split()
        cpu = int(stat[stat.index("usage_usec") + 1]) / 1e6
    elif "cpuacct.usage" in values:
        cpu = int(values["cpuacct.usage"]) / 1e9
    else:
        cpu = -1.0
    if now is None or cpu < 0:
        raise OpsError(f"the container's cgroup has no memory or CPU figures ({values or text!r})")
    return int(now), int(peak) if peak else None, cpu


class Container:
    """The image running as the task does, its log lines followed; removed on close."""

    def __init__(self, engine: str, image: str, user: str, env: dict[str, str]) -> None:
        self.engine = engine
        self.name = f"queue-worker-measure-{uuid.uuid4().hex[:8]}"
        settings = [f"--env={key}={value}" for key, value in env.items()]
        command = [engine, "run", "--rm", "--name", self.name, "--network", "host"]
        command += [*ecs_run_options(engine, user), "--volume", "/tmp", *settings, image]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this command only: it removes the container
        )
        self.log = FleetLog()
        self.reader = threading.Thread(target=self.log.follow, args=(self.process.stdout,))
        self.reader.daemon = True
        self.reader.start()

    def cgroup(self) -> tuple[int, int | None, float]:
        """:func:`cgroup_figures` of the container now."""
        command = f"grep -H . {' '.join(CGROUP_FILES)} 2>/dev/null; true"
        result = subprocess.run(
            [self.engine, "exec", self.name, "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise OpsError(
                f"{self.engine} exec {self.name} sh failed (the image needs sh and grep): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return cgroup_figures(result.stdout)

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``condition()``; OpsError (with the container's last lines on stderr) when
        the container exits or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not condition():
            stopped = self.process.poll() is not None
            if stopped or time.monotonic() > deadline:
                show_fleet_output(self.log)
                happened = "the container exited" if stopped else f"{timeout:g} s passed"
                raise OpsError(f"{happened} waiting for {what} (its last lines are above)")
            time.sleep(0.2)

    def close(self) -> None:
        """Remove the container (killed: its jobs are samples) and wait for its log."""
        subprocess.run(
            [self.engine, "rm", "--force", self.name], capture_output=True, timeout=60, check=False
        )
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        self.reader.join(5)


class Feeder:
    """Keeps the queue holding a job for every process: the bodies, round and round."""

    def __init__(self, sqs: Any, url: str, bodies: list[str], processes: int) -> None:
        self.sqs, self.url, self.processes = sqs, url, processes
        self.bodies = itertools.cycle(bodies)
        self.sent = 0

    def top_up(self) -> None:
        """Send bodies while fewer than 2 x processes wait."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        missing = 2 * self.processes - int(attributes["ApproximateNumberOfMessages"])
        for start in range(0, max(0, missing), 10):
            entries = [
                {"Id": str(i), "MessageBody": next(self.bodies)}
                for i in range(min(10, missing - start))
            ]
            self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            self.sent += len(entries)


def measure(args: argparse.Namespace, bodies: list[str]) -> measured.Measured:
    """Run the image on the embedded SQS, warm it up, measure it busy, remove it."""
    assembly = _cli.synthesized(Path(args.cdk_out or Path(args.project) / "cdk.out"), args.env)
    spec, template_env = read_templates(assembly, args.env)
    user = container_definition(assembly, args.env).get("User", "10001:10001")
    mode = template_env.get("WORKER_HANDLER_MODE", "callable")
    if mode not in sizing.KIT_SLOT_OVERHEAD_MIB:
        raise OpsError(f"{args.env}'s templates set an unknown WORKER_HANDLER_MODE {mode!r}")
    fake_aws_env()
    with contextlib.ExitStack() as stack:
        moto = CountingMoto()
        stack.callback(moto.close)
        sqs = boto3.client("sqs", region_name=os.environ["AWS_REGION"], endpoint_url=moto.url)
        url, dlq = _create_queues(sqs, spec)
        env = {
            **template_env,
            **FAKE_CREDENTIALS,
            "AWS_REGION": os.environ["AWS_REGION"],
            "AWS_DEFAULT_REGION": os.environ["AWS_REGION"],
            "AWS_ENDPOINT_URL": moto.url,
            "QUEUE_URL": url,
            "DEAD_LETTER_QUEUE_URL": dlq,
            "WORKER_PROCESSES": str(args.processes),
            **dict(setting.split("=", 1) for setting in args.set),
        }
        env.pop("ECS_AGENT_URI", None)
        say(
            f"{args.image} on {args.engine}: {args.processes} processes in {mode} mode, "
            f"{args.env}'s settings, SQS at {moto.url}"
        )
        container = Container(args.engine, args.image, user, env)
        stack.callback(container.close)
        log = container.log
        container.wait_for(
            lambda: len(log.of("worker_started")) >= args.processes,
            START_TIMEOUT,
            f"{args.processes} worker processes to start",
        )
        feeder = Feeder(sqs, url, bodies, args.processes)

        def warmed_up() -> bool:
            feeder.top_up()
            jobs = log.of(JOB_EVENT)
            done = {j.get(PROCESS) for j in jobs if j.get(OUTCOME) == DONE}
            failed = [j for j in jobs if j.get(OUTCOME) != DONE]
            if not done and len(failed) >= 2 * args.processes:
                raise OpsError(
                    f"{len(failed)} jobs failed and none succeeded (the first: "
                    f"{failed[0].get(OUTCOME)}, {failed[0].get(ERROR) or 'no error given'}): "
                    "the figures would not be those of your jobs"
                )
            return len(done) >= int(args.processes)

        container.wait_for(warmed_up, args.timeout, "every process to finish a job")
        say(f"warmed up: every process has finished a job; measuring {args.seconds:g} s busy")
        highest, peak, cpu_before = container.cgroup()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < args.seconds:
            feeder.top_up()
            if peak is None:  # no peak kept by the cgroup: sampled (each read costs its CPU)
                highest = max(highest, container.cgroup()[0])
            if container.process.poll() is not None:
                raise OpsError("the container exited while measured")
            time.sleep(min(1.0, max(0.0, args.seconds - elapsed)))
        now, peak, cpu_after = container.cgroup()
        busy = time.monotonic() - started
    jobs = [j.get(OUTCOME) for j in log.of(JOB_EVENT)]
    top = max(highest, now, peak or 0)
    memory, cpu, kit = measured.per_process(top, cpu_after - cpu_before, busy, args.processes, mode)
    return measured.Measured(
        image=args.image,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        environment=args.env,
        handler_mode=mode,
        processes=args.processes,
        busy_seconds=round(busy, 1),
        jobs_done=jobs.count(DONE),
        jobs_failed=len(jobs) - jobs.count(DONE),
        container_peak_mib=round(top / measured.MIB, 1),
        kit_mib=kit,
        process_memory_mib=memory,
        process_cpu=cpu,
    )


def report(figures: measured.Measured) -> list[str]:
    """The text report: the figures, how they were found, the planner's options."""
    return [
        f"image           {figures.image} ({figures.environment}'s settings, "
        f"{figures.handler_mode} mode, {figures.processes} processes)",
        f"jobs            {figures.jobs_done} done, {figures.jobs_failed} failed",
        f"container peak  {figures.container_peak_mib:g} MiB, of which the kit's own share "
        f"{figures.kit_mib} MiB (stacks/sizing.py)",
        f"per process     {figures.process_memory_mib} MiB, {figures.process_cpu:g} vCPU busy "
        f"(over {figures.busy_seconds:g} s, every process busy)",
        f"for the planner {figures.planner_options()}",
    ]


def default_engine() -> str:
    """docker when it is on PATH, else podman."""
    return "docker" if shutil.which("docker") else "podman"


def setting(text: str) -> str:
    """An argparse type: NAME=VALUE."""
    if "=" not in text or not text.partition("=")[0]:
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
    return text


def add_arguments(parser: Parser) -> None:
    """The command line."""
    parser.add_argument("--image", required=True, help="your worker image, as ENGINE names it")
    parser.add_argument("--env", required=True, help="the environment whose templates to run")
    parser.add_argument(
        "--bodies",
        type=Path,
        required=True,
        metavar="FILE",
        help="sample SQS message bodies, one JSON body a line, sent round and round",
    )
    parser.add_argument(
        "--processes", type=positive_int, default=8, help="worker processes (default 8)"
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=default_engine(),
        help="the container engine (default: docker when on PATH, else podman)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=60,
        help="seconds measured busy, after the warm-up (default 60)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds for the warm-up: every process finishing a job (default 600)",
    )
    parser.add_argument(
        "--set",
        type=setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a container setting besides the templates' (a secret's stand-in); repeatable",
    )
    parser.add_argument("--cdk-out", help="synthesized assemblies (default: the project's cdk.out)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def execute(args: argparse.Namespace) -> int:
    """Measure; print the figures (and write --out)."""
    if not args.seconds > 0 or not args.timeout > 0:
        raise UsageError("--seconds and --timeout must be > 0")
    bodies = read_bodies(args.bodies)
    try:
        figures = measure(args, bodies)
    except KeyboardInterrupt:
        raise _cli.Interrupted("the container and the embedded SQS are stopped") from None
    if args.out:
        measured.write(args.out, figures)
    if args.json:
        print_json(asdict(figures))
    else:
        print("\n".join(report(figures)))
        if args.out:
            print(f"written to {args.out}: queue-worker plan --measured {args.out} ...")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m scripts.devtools.measure_image`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
