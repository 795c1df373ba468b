"""worker.image: parsed into ImageConfig; every bad value names its key path and the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stacks.config import ImageConfig, load_config
from tests.tutorial import environment_block
from tests.unit.config.test_config import ENVIRONMENTS, ROOT, problems, prod_with

TEAM_APP = "tests/infra/fixtures/team_app"
DOCKERFILE = "docker/worker.Dockerfile"
DIGEST = "sha256:" + "0123456789abcdef" * 4
KEY = "environments.prod.worker.image"


def with_image(image: Any) -> dict[str, Any]:
    return prod_with(worker={"image": image})


def image_problems(image: Any, project_dir: Path | None = ROOT) -> list[str]:
    with pytest.raises(Exception) as caught:
        load_config(with_image(image), "prod", project_dir=project_dir)
    return list(getattr(caught.value, "problems", [str(caught.value)]))


def test_absent_means_the_kits_own_image() -> None:
    assert load_config(ENVIRONMENTS, "prod", project_dir=ROOT).worker.image is None


def test_directory_is_resolved_against_the_project_directory() -> None:
    config = load_config(
        with_image(
            {
                "directory": TEAM_APP,
                "dockerfile": DOCKERFILE,
                "target": "worker",
                "build_args": {"PHP_VERSION": "8.3"},
            }
        ),
        "prod",
        project_dir=ROOT,
    )
    assert config.worker.image == ImageConfig(
        directory=str(ROOT / TEAM_APP),
        dockerfile=DOCKERFILE,
        target="worker",
        build_args={"PHP_VERSION": "8.3"},
    )


def test_directory_defaults_to_its_dockerfile_and_the_last_stage() -> None:
    image = ImageConfig(directory="app")
    assert (image.dockerfile, image.target, dict(image.build_args)) == ("Dockerfile", None, {})


def test_repository_with_a_tag_or_a_digest() -> None:
    tagged = load_config(with_image({"repository": "team/app", "tag": "v1.2.3"}), "prod")
    assert tagged.worker.image == ImageConfig(repository="team/app", tag="v1.2.3")
    arn = "arn:aws:ecr:ap-northeast-1:123456789012:repository/team/app"
    pinned = load_config(with_image({"repository": arn, "digest": DIGEST}), "prod")
    assert pinned.worker.image == ImageConfig(repository=arn, digest=DIGEST)


def test_missing_directory(tmp_path: Path) -> None:
    (message,) = image_problems({"directory": "no/such/app"}, project_dir=tmp_path)
    assert f"{KEY}.directory: 'no/such/app'" in message
    assert "relative to the project directory" in message


def test_missing_dockerfile() -> None:
    (message,) = image_problems({"directory": TEAM_APP})
    assert f"{KEY}.dockerfile: 'Dockerfile'" in message and "relative to directory" in message


def test_paths_are_not_checked_without_a_project_directory() -> None:
    config = load_config(with_image({"directory": "app"}), "prod")
    assert config.worker.image == ImageConfig(directory="app")


@pytest.mark.parametrize(
    ("image", "key", "value"),
    [
        ({"directory": TEAM_APP, "repository": "team/app", "tag": "v1"}, "directory", TEAM_APP),
        ({}, "directory/repository", "neither is set"),
        ({"repository": "team/app"}, "tag", "None"),
        ({"repository": "team/app", "tag": "v1", "digest": DIGEST}, "tag", "'v1'"),
        ({"repository": "team/app", "digest": "sha256:abc"}, "digest", "'sha256:abc'"),
        ({"repository": "team/app", "tag": "-v1"}, "tag", "'-v1'"),
        ({"repository": "Team/App", "tag": "v1"}, "repository", "'Team/App'"),
        (
            {"repository": "arn:aws:s3:::bucket", "tag": "v1"},
            "repository",
            "'arn:aws:s3:::bucket'",
        ),
        ({"repository": "team/app", "tag": "v1", "target": "worker"}, "target", "'worker'"),
        (
            {"repository": "team/app", "tag": "v1", "build_args": {"A": "1"}},
            "build_args",
            "{'A': '1'}",
        ),
        (
            {"repository": "team/app", "tag": "v1", "dockerfile": "x.Dockerfile"},
            "dockerfile",
            "'x.Dockerfile'",
        ),
        ({"directory": TEAM_APP, "dockerfile": DOCKERFILE, "tag": "v1"}, "tag", "'v1'"),
        ({"directory": "/abs/app"}, "directory", "'/abs/app'"),
        ({"repository": "team/app", "tag": "v1", "typo": 1}, "typo", "unknown key"),
        ({"repository": "team/app", "tag": "v1", "user": "root"}, "user", "'root'"),
        ({"repository": "team/app", "tag": "v1", "user": "0:0"}, "user", "'0:0'"),
        ({"repository": "team/app", "tag": "v1", "user": "www data"}, "user", "'www data'"),
        ("team/app:v1", "", "'team/app:v1' is not an object"),
    ],
    ids=[
        "directory-and-repository",
        "neither",
        "no-tag-or-digest",
        "tag-and-digest",
        "malformed-digest",
        "malformed-tag",
        "malformed-repository",
        "not-an-ecr-arn",
        "target-with-repository",
        "build-args-with-repository",
        "dockerfile-with-repository",
        "tag-with-directory",
        "absolute-directory",
        "unknown-key",
        "root-user",
        "root-uid",
        "malformed-user",
        "not-an-object",
    ],
)
def test_bad_image_names_the_key_and_the_value(image: Any, key: str, value: str) -> None:
    found = image_problems(image)
    where = f"{KEY}.{key}:" if key else f"{KEY}:"
    assert any(where in p and value in p for p in found), found


def test_image_problems_come_with_the_other_problems() -> None:
    found = problems(prod_with(worker={"image": {}}, queue={"max_receive_count": 0}))
    assert any(f"{KEY}.directory/repository:" in p for p in found)
    assert any("queue.max_receive_count: 0" in p for p in found)


def test_the_frameworks_tutorial_settings_load_in_the_layout_it_describes(
    tmp_path: Path,
) -> None:
    """docs/frameworks.md step 2, as a team would paste it: the kit in infra/ of the app's
    repository, the Dockerfile at the repository's root."""
    environment = environment_block("run-job.php")
    (tmp_path / "infra").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM app AS worker\n")
    config = load_config(
        {"prod": {"region": "ap-northeast-1", **environment}},
        "prod",
        project_dir=tmp_path / "infra",
    )
    assert config.worker.image is not None
    assert config.worker.image.directory == str(tmp_path)
    assert config.worker.handler_mode == "command"


@pytest.mark.parametrize("user", ["www-data", "33", "33:33", "www-data:www-data", "1000:0"])
def test_an_image_user_other_than_root_is_accepted(user: str) -> None:
    config = load_config(with_image({"repository": "team/app", "tag": "v1", "user": user}), "prod")
    assert config.worker.image is not None and config.worker.image.user == user
