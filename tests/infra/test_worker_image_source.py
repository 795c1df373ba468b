"""worker.image: the kit's image, the team's Dockerfile, or an existing ECR image; the IAM a
framework needs; the consumer-mode warnings at synth.

The team's Dockerfile is a fixture (tests/infra/fixtures/team_app): synth stages it, nothing
builds it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Annotations, Match

from stacks.app_builder import build
from stacks.config import load_config
from stacks.constructs import worker_image as worker_image_module
from stacks.constructs.worker_image import KIT_BUILD_CONTEXT, WORKER_IMAGE_DIR
from stacks.constructs.worker_service import IMAGE_USER
from tests.infra.conftest import ENVIRONMENTS, FEATURE_FLAGS, ROOT, Synthesized, synthesize

TEAM_APP = "tests/infra/fixtures/team_app"
DOCKERFILE = "docker/worker.Dockerfile"
DIGEST = "sha256:" + "0123456789abcdef" * 4
PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
SEND = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]


def image_of(s: Synthesized) -> Any:
    (task,) = s.worker.find_resources("AWS::ECS::TaskDefinition").values()
    return task["Properties"]["ContainerDefinitions"][0]["Image"]


def docker_assets(s: Synthesized) -> list[dict[str, Any]]:
    manifest = json.loads((s.outdir / "QueueWorker-prod-Worker.assets.json").read_text())
    return [asset["source"] for asset in manifest.get("dockerImages", {}).values()]


def statements_of(s: Synthesized, role: str) -> list[dict[str, Any]]:
    (policy,) = s.worker.find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"Roles": [{"Ref": Match.string_like_regexp(role)}]}},
    ).values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def sends_to_work_queue(s: Synthesized) -> bool:
    """The task role may send to the work queue (not only to the DLQ)."""
    resources = [
        json.dumps(st["Resource"])
        for st in statements_of(s, "TaskRole")
        if "sqs:SendMessage" in st["Action"]
    ]
    return any("DeadLetter" not in r and "Dlq" not in r for r in resources)


def test_kit_default_builds_worker_image(prod: Synthesized) -> None:
    (source,) = docker_assets(prod)
    staged = prod.outdir / source["directory"]
    assert (staged / "supervisord.conf").read_bytes() == (
        WORKER_IMAGE_DIR / "supervisord.conf"
    ).read_bytes()
    assert "dockerBuildContexts" not in source and "dockerFile" not in source
    assert source["platform"] == "linux/amd64"


def test_team_directory_builds_its_dockerfile_with_the_kit_as_a_build_context() -> None:
    s = synthesize(
        "prod",
        worker={
            "image": {
                "directory": TEAM_APP,
                "dockerfile": DOCKERFILE,
                "target": "worker",
                "build_args": {"PHP_VERSION": "8.3"},
            },
            "architecture": "arm64",
        },
    )
    (source,) = docker_assets(s)
    staged = s.outdir / source["directory"]
    assert (staged / "marker.txt").read_text() == (ROOT / TEAM_APP / "marker.txt").read_text()
    assert source["dockerFile"] == DOCKERFILE
    assert source["dockerBuildTarget"] == "worker"
    assert source["dockerBuildArgs"] == {"PHP_VERSION": "8.3"}
    assert source["dockerBuildContexts"] == {KIT_BUILD_CONTEXT: str(WORKER_IMAGE_DIR)}
    assert source["platform"] == "linux/arm64"
    assert "cdk-hnb659fds-container-assets" in json.dumps(image_of(s))


def _team_asset_hash(kit_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(worker_image_module, "WORKER_IMAGE_DIR", kit_dir)
    environments = json.loads(json.dumps(ENVIRONMENTS))
    environments["prod"]["worker"]["image"] = {"directory": TEAM_APP, "dockerfile": DOCKERFILE}
    app = App(context=FEATURE_FLAGS)
    _, stack = build(app, load_config(environments, "prod", project_dir=ROOT))
    outdir = Path(app.synth().directory)
    (asset_hash,) = json.loads((outdir / f"{stack.stack_name}.assets.json").read_text())[
        "dockerImages"
    ]
    return str(asset_hash)


def test_team_image_hash_follows_the_kits_files_not_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kit upgrade rebuilds the team's image; another checkout of the same kit does not."""
    original = _team_asset_hash(WORKER_IMAGE_DIR, monkeypatch)
    copy = tmp_path / "elsewhere" / "worker_image"
    shutil.copytree(WORKER_IMAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert _team_asset_hash(copy, monkeypatch) == original
    (copy / "worker" / "__pycache__").mkdir()
    (copy / "worker" / "__pycache__" / "loop.cpython-311.pyc").write_bytes(b"not in a build")
    assert _team_asset_hash(copy, monkeypatch) == original
    (copy / "supervisord.conf").write_text("; a new kit version\n", encoding="utf-8")
    assert _team_asset_hash(copy, monkeypatch) != original


def test_repository_and_tag_name_an_ecr_image_of_the_account_and_region() -> None:
    s = synthesize("prod", worker={"image": {"repository": "team/app", "tag": "v1.2.3"}})
    assert image_of(s) == {
        "Fn::Join": [
            "",
            [
                {"Ref": "AWS::AccountId"},
                ".dkr.ecr.ap-northeast-1.",
                {"Ref": "AWS::URLSuffix"},
                "/team/app:v1.2.3",
            ],
        ]
    }
    assert docker_assets(s) == []


def test_the_container_runs_as_the_kits_user_unless_the_image_names_its_own(
    prod: Synthesized,
) -> None:
    def user(s: Synthesized) -> Any:
        [task] = s.worker.find_resources("AWS::ECS::TaskDefinition").values()
        return task["Properties"]["ContainerDefinitions"][0]["User"]

    own = synthesize("prod", worker={"image": {"repository": "team/app", "tag": "v1"}})
    named = synthesize(
        "prod", worker={"image": {"repository": "team/app", "tag": "v1", "user": "www-data"}}
    )
    assert user(prod) == user(own) == IMAGE_USER
    assert user(named) == "www-data"


def test_repository_arn_and_digest_pin_the_image_by_digest() -> None:
    arn = "arn:aws:ecr:us-east-1:123456789012:repository/team/app"
    s = synthesize("prod", worker={"image": {"repository": arn, "digest": DIGEST}})
    assert image_of(s) == {
        "Fn::Join": [
            "",
            [
                "123456789012.dkr.ecr.us-east-1.",
                {"Ref": "AWS::URLSuffix"},
                f"/team/app@{DIGEST}",
            ],
        ]
    }


def test_execution_role_may_pull_from_that_repository_only() -> None:
    arn = "arn:aws:ecr:us-east-1:123456789012:repository/team/app"
    s = synthesize("prod", worker={"image": {"repository": arn, "digest": DIGEST}})
    pulls = [st for st in statements_of(s, "ExecutionRole") if "ecr:BatchGetImage" in st["Action"]]
    assert pulls == [{"Action": PULL, "Effect": "Allow", "Resource": arn}]


@pytest.mark.parametrize(
    "worker",
    [
        {"image": {"repository": "team/app", "tag": "v1"}},
        {"image": {"directory": TEAM_APP, "dockerfile": DOCKERFILE}},
        {"handler_mode": "consumer", "handler": "php artisan queue:work sqs"},
    ],
    ids=["repository", "directory", "consumer"],
)
def test_framework_images_and_consumers_may_send_to_the_work_queue(
    worker: dict[str, Any],
) -> None:
    """Symfony's retry re-sends the message; Laravel jobs dispatch further jobs."""
    assert sends_to_work_queue(synthesize("prod", worker=worker))


def test_kit_default_may_send_to_the_dlq_only(prod: Synthesized) -> None:
    assert not sends_to_work_queue(prod)
    assert any("sqs:SendMessage" in st["Action"] for st in statements_of(prod, "TaskRole"))


def _worker_stack(queues: dict[str, Any] | None = None, **worker: Any) -> Any:
    environments = json.loads(json.dumps(ENVIRONMENTS))
    environments["prod"]["worker"].update(worker)
    if queues:
        environments["prod"]["queues"] = queues
    app = App(context=FEATURE_FLAGS)
    _, stack = build(app, load_config(environments, "prod", project_dir=ROOT))
    return stack


def test_consumer_mode_warns_what_it_gives_up() -> None:
    stack = _worker_stack(
        handler_mode="consumer", handler="php artisan queue:work sqs", job_timeout_seconds=60
    )
    annotations = Annotations.from_stack(stack)
    for gives_up in ("no visibility heartbeat", "no task scale-in protection", "no job log"):
        annotations.has_warning("*", Match.string_like_regexp(gives_up))
    annotations.has_warning("*", Match.string_like_regexp("Recommended: handler_mode 'command'"))
    annotations.has_no_warning("*", Match.string_like_regexp("job_timeout_seconds 60 exceeds"))


def test_consumer_mode_names_the_shortest_visibility_of_its_queues_by_its_key() -> None:
    stack = _worker_stack(
        queues={
            "reports": {"visibility_timeout_seconds": 900},
            "emails": {"visibility_timeout_seconds": 300},
        },
        handler_mode="consumer",
        handler="php artisan queue:work sqs --queue=reports,emails",
        job_timeout_seconds=60,
    )
    Annotations.from_stack(stack).has_warning(
        "*",
        Match.string_like_regexp(
            r"longer than queues\.emails\.visibility_timeout_seconds 300 s runs twice"
        ),
    )


def test_consumer_mode_warns_harder_when_jobs_outlast_the_stop_grace() -> None:
    stack = _worker_stack(
        handler_mode="consumer", handler="php artisan queue:work sqs", job_timeout_seconds=900
    )
    Annotations.from_stack(stack).has_warning(
        "*",
        Match.string_like_regexp(
            "job_timeout_seconds 900 exceeds worker.stop_grace_seconds 100 .*kills"
        ),
    )


def test_no_consumer_warning_in_the_kits_modes() -> None:
    Annotations.from_stack(_worker_stack()).has_no_warning(
        "*", Match.string_like_regexp("handler_mode is 'consumer'")
    )


@pytest.mark.parametrize(
    "image",
    [
        {"repository": "team/app", "tag": "v1"},
        {"directory": TEAM_APP, "dockerfile": DOCKERFILE},
    ],
    ids=["repository", "directory"],
)
def test_team_images_pass_cdk_nag(image: dict[str, Any]) -> None:
    report = synthesize("prod", worker={"image": image}).validation_report
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
