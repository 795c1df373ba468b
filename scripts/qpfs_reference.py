"""Synthesize a QueueProcessingFargateService with its defaults, to simulate beside the kit.

    python -m scripts.qpfs_reference --out cdk.out/qpfs
    python -m scripts.simulate --cdk-out cdk.out/qpfs

The stack (`QpfsReference`) has an explicit env (region ap-northeast-1, a dummy account), its
own VPC, a public image (no assets) and no lookups, so it synthesizes offline. Everything else
is the construct's default: one process per task (no WORKER_PROCESSES), 0.25 vCPU / 512 MiB,
step scaling on visible messages, CPU target tracking. Default output dir: cdk.out/qpfs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns

STACK_NAME = "QpfsReference"
IMAGE = "public.ecr.aws/docker/library/python:3.11-slim"
DUMMY_ENV = cdk.Environment(account="123456789012", region="ap-northeast-1")


def synth(out_dir: Path) -> Path:
    """Synthesize the reference stack into `out_dir`; return the template's path."""
    app = cdk.App(outdir=str(out_dir))
    stack = cdk.Stack(app, STACK_NAME, env=DUMMY_ENV)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    cluster = ecs.Cluster(stack, "Cluster", vpc=vpc)
    ecs_patterns.QueueProcessingFargateService(
        stack,
        "Service",
        cluster=cluster,
        image=ecs.ContainerImage.from_registry(IMAGE),
    )
    app.synth()
    return out_dir / f"{STACK_NAME}.template.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("cdk.out/qpfs"), help="default: cdk.out/qpfs"
    )
    args = parser.parse_args(argv)
    print(synth(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
