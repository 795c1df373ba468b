"""cdk-nag, cfn-lint and a masked snapshot for every environment."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.infra.conftest import ENVIRONMENTS, synthesize

ENVS = sorted(ENVIRONMENTS)
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
ACCOUNT_ID = re.compile(r"\b\d{12}\b")


def masked(template: dict[str, Any]) -> Any:
    """The template with asset hashes and account ids masked: they change with every edit of
    worker_image/ or every account, not with the infrastructure."""
    text = ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    return json.loads(ACCOUNT_ID.sub("<account-id>", text))


@pytest.mark.parametrize("env", ENVS)
def test_cdk_nag_has_no_unacknowledged_findings(env: str) -> None:
    report = synthesize(env).validation_report
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for acknowledged in nag["suppressedViolations"]:
        assert len(acknowledged["reason"]) > 40, acknowledged["ruleName"]
        # On the narrowest construct: the one that holds the finding, not a stack or the app.
        paths = [c["constructPath"] for c in acknowledged["violatingConstructs"]]
        assert all(p.startswith(acknowledged["acknowledgedAt"]) for p in paths)
        assert acknowledged["acknowledgedAt"].count("/") >= 2


@pytest.mark.parametrize("env", ENVS)
def test_cfn_lint_finds_nothing(env: str) -> None:
    templates = sorted(str(p) for p in synthesize(env).outdir.glob("*.template.json"))
    assert len(templates) == 2
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("env", ENVS)
def test_templates_match_their_masked_snapshots(env: str, snapshot: SnapshotAssertion) -> None:
    s = synthesize(env)
    json_snapshot = snapshot.use_extension(JSONSnapshotExtension)
    assert masked(s.queue_json) == json_snapshot(name=f"{env}-queue")
    assert masked(s.worker_json) == json_snapshot(name=f"{env}-worker")


def test_masking_hides_asset_hashes_and_accounts() -> None:
    digest = "a" * 64
    template = {"Image": f"123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/repo:{digest}"}
    assert masked(template) == {
        "Image": "<account-id>.dkr.ecr.ap-northeast-1.amazonaws.com/repo:<asset-hash>"
    }
