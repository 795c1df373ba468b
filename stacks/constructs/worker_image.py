"""The worker's container image: the kit's own, the team's Dockerfile, or an existing image."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import FileSystem, IgnoreMode
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from stacks.config import Architecture, ImageConfig

WORKER_IMAGE_DIR = Path(__file__).resolve().parents[2] / "worker_image"
KIT_BUILD_CONTEXT = "queue-worker-kit"
"""The name under which a team's Dockerfile finds the kit's ``worker_image/``
(``COPY --from=queue-worker-kit ...``)."""


def worker_image(
    scope: Construct, image: ImageConfig | None, architecture: Architecture
) -> ecs.ContainerImage:
    """The container image ``worker.image`` selects, for the task's architecture.

    - None: ``worker_image/`` built as an asset.
    - ``directory``: the team's Dockerfile built as an asset, with the kit's ``worker_image/``
      as the extra build context ``queue-worker-kit``. The asset hash covers the kit's files
      (not where this checkout lives), so a kit upgrade rebuilds the team's image and another
      checkout of the same files does not.
    - ``repository``: an image already in ECR, by tag or digest; the execution role may pull
      from that repository only (ContainerImage.from_ecr_repository grants it).
    """
    if image is None:
        return ecs.ContainerImage.from_asset(
            str(WORKER_IMAGE_DIR), platform=_platform(architecture)
        )
    if image.directory is not None:
        return ecs.ContainerImage.from_asset(
            image.directory,
            file=image.dockerfile,
            target=image.target,
            build_args=dict(image.build_args) or None,
            build_contexts={KIT_BUILD_CONTEXT: str(WORKER_IMAGE_DIR)},
            extra_hash=_kit_fingerprint(WORKER_IMAGE_DIR),
            invalidation=ecr_assets.DockerImageAssetInvalidationOptions(build_contexts=False),
            platform=_platform(architecture),
        )
    assert image.repository is not None  # config: exactly one of directory or repository
    if image.repository.startswith("arn:"):
        repository = ecr.Repository.from_repository_arn(scope, "Repository", image.repository)
    else:
        repository = ecr.Repository.from_repository_name(scope, "Repository", image.repository)
    tag_or_digest = image.digest or image.tag
    return ecs.ContainerImage.from_ecr_repository(repository, tag_or_digest)


def _platform(architecture: Architecture) -> ecr_assets.Platform:
    if architecture == "arm64":
        return ecr_assets.Platform.LINUX_ARM64
    return ecr_assets.Platform.LINUX_AMD64


def _kit_fingerprint(directory: Path) -> str:
    """The content hash of the kit's directory as a build sees it (its .dockerignore applied)."""
    ignore = directory / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.is_file() else [])
        if line.strip() and not line.startswith("#")
    ]
    return FileSystem.fingerprint(str(directory), exclude=patterns, ignore_mode=IgnoreMode.DOCKER)
