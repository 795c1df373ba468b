"""cdk-nag, cfn-lint, checkov and a masked snapshot for every environment."""

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

from tests.infra.conftest import ENVIRONMENTS, ROOT, VARIANTS, synthesize, variant

ENVS = sorted(ENVIRONMENTS)
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
ACCOUNT_ID = re.compile(r"\b\d{12}\b")
# checkov runs from its own venv (make setup; requirements-checkov.txt says why).
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def masked(template: dict[str, Any]) -> Any:
    """The template with asset hashes and account ids masked: they change with every edit of
    worker_image/ or every account, not with the infrastructure."""
    text = ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    return json.loads(ACCOUNT_ID.sub("<account-id>", text))


def checkov(*args: str) -> dict[str, Any]:
    """checkov's JSON report (offline: no download of Prisma Cloud guidelines)."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup`"
    result = subprocess.run(
        [str(CHECKOV), *args, "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT / ".venv-checkov")},
    )
    assert result.stdout.startswith("{"), result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def assert_clean_with_reasons(report: dict[str, Any]) -> None:
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == []
    assert results["parsing_errors"] == []
    for skipped in results["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 40, (skipped["check_id"], skipped["resource"])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_checkov_fails_nothing_and_every_skip_has_its_reason(name: str) -> None:
    templates = sorted(str(p) for p in variant(name).outdir.glob("*.template.json"))
    assert len(templates) == 2
    report = checkov(
        *(arg for t in templates for arg in ("--file", t)), "--framework", "cloudformation"
    )
    assert report["summary"]["passed"] > 50  # it really scanned both templates
    assert_clean_with_reasons(report)


def test_checkov_passes_the_dockerfile() -> None:
    report = checkov(
        "--file", str(ROOT / "worker_image" / "Dockerfile"), "--framework", "dockerfile"
    )
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3"} <= passed  # HEALTHCHECK, a non-root USER
    assert_clean_with_reasons(report)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cdk_nag_has_no_unacknowledged_findings(name: str) -> None:
    report = variant(name).validation_report
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for acknowledged in nag["suppressedViolations"]:
        assert len(acknowledged["reason"]) > 40, acknowledged["ruleName"]
        # On the narrowest construct: the one that holds the finding, not a stack or the app.
        paths = [c["constructPath"] for c in acknowledged["violatingConstructs"]]
        assert all(p.startswith(acknowledged["acknowledgedAt"]) for p in paths)
        assert acknowledged["acknowledgedAt"].count("/") >= 2


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cfn_lint_finds_nothing(name: str) -> None:
    templates = sorted(str(p) for p in variant(name).outdir.glob("*.template.json"))
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
