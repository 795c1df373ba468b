"""Synthesize a QueueProcessingFargateService, to simulate beside the kit: with its defaults, or
tuned as a careful user would (--tuned).

    python -m scripts.capacity.qpfs_reference --out cdk.out/qpfs
    python -m scripts.capacity.qpfs_reference --tuned --out cdk.out/qpfs-tuned
    python -m scripts.capacity.simulate --cdk-out cdk.out/qpfs

The stack (`QpfsReference`) has an explicit env (region ap-northeast-1, a dummy account), its
own VPC, a public image (no assets) and no lookups, so it synthesizes offline. Everything else
is the construct's default: one process per task (no WORKER_PROCESSES), 0.25 vCPU / 512 MiB,
step scaling on visible messages, CPU target tracking. Default output dir: cdk.out/qpfs.

--tuned (TUNED): what a careful user sets for the reference workload (2,000 jobs of 30-300 s
by 08:30) without the kit: CPU-based scaling disabled (I/O-bound jobs), scale to zero
(min 0), a maximum large enough for 10x (250 tasks: about 92 hours of jobs a day at 1x), the
queue's visibility timeout above the longest job (600 s: no job runs twice by expiry), steps
that add tasks in proportion to the backlog, and the longest stop timeout Fargate allows
(120 s). What it cannot set: several processes per task, a heartbeat, hand-back on SIGTERM and
task scale-in protection; its scale-in looks at visible messages only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns

STACK_NAME = "QpfsReference"
IMAGE = "public.ecr.aws/docker/library/python:3.11-slim"
DUMMY_ENV = cdk.Environment(account="123456789012", region="ap-northeast-1")
TUNED_MAX_TASKS = 250
TUNED_VISIBILITY_SECONDS = 600
# Backlog of visible messages -> tasks added (one process a task); an empty queue removes 25.
TUNED_STEPS = (
    appscaling.ScalingInterval(upper=0, change=-25),
    appscaling.ScalingInterval(lower=1, change=+5),
    appscaling.ScalingInterval(lower=100, change=+25),
    appscaling.ScalingInterval(lower=500, change=+50),
)


def synth(out_dir: Path, tuned: bool = False) -> Path:
    """Synthesize the reference stack into `out_dir` (defaults, or TUNED); return the
    template's path."""
    app = cdk.App(outdir=str(out_dir))
    stack = cdk.Stack(app, STACK_NAME, env=DUMMY_ENV)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    cluster = ecs.Cluster(stack, "Cluster", vpc=vpc)
    tuning = {}
    if tuned:
        tuning = {
            "disable_cpu_based_scaling": True,
            "min_scaling_capacity": 0,
            "max_scaling_capacity": TUNED_MAX_TASKS,
            "visibility_timeout": cdk.Duration.seconds(TUNED_VISIBILITY_SECONDS),
            "scaling_steps": list(TUNED_STEPS),
            "container_name": "worker",
        }
    service = ecs_patterns.QueueProcessingFargateService(
        stack,
        "Service",
        cluster=cluster,
        image=ecs.ContainerImage.from_registry(IMAGE),
        **tuning,  # type: ignore[arg-type]
    )
    if tuned:  # the longest stop timeout Fargate allows: the job's chance to finish
        cfn = service.task_definition.node.default_child
        assert isinstance(cfn, ecs.CfnTaskDefinition)
        cfn.add_property_override("ContainerDefinitions.0.StopTimeout", 120)
    app.synth()
    return out_dir / f"{STACK_NAME}.template.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line."""
    parser.add_argument(
        "--out", type=Path, default=Path("cdk.out/qpfs"), help="default: cdk.out/qpfs"
    )
    parser.add_argument("--tuned", action="store_true", help="tuned as a careful user would")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(synth(args.out, args.tuned))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
