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


CHECK_RESULTS = ("passed_checks", "failed_checks", "skipped_checks")


def templates_of(name: str) -> list[str]:
    """The queue and worker templates of variant ``name``."""
    templates = sorted(str(p) for p in variant(name).outdir.glob("*.template.json"))
    assert len(templates) == 2
    return templates


@pytest.fixture(scope="module")
def checkov_of_every_variant() -> dict[str, Any]:
    """One checkov run over every variant's templates: its start (loading every check) costs
    more than a scan, and the tests below read each variant's part of the report."""
    templates = [t for name in sorted(VARIANTS) for t in templates_of(name)]
    return checkov(
        *(arg for t in templates for arg in ("--file", t)), "--framework", "cloudformation"
    )


def part_of(report: dict[str, Any], templates: list[str]) -> dict[str, Any]:
    """The results of `report` on `templates` alone."""
    results = report["results"]
    return {
        "results": {
            kind: [c for c in results[kind] if c["file_abs_path"] in templates]
            for kind in CHECK_RESULTS
        }
        | {"parsing_errors": [p for p in results["parsing_errors"] if p in templates]}
    }


@pytest.mark.xdist_group("scanners")  # one worker runs the one scan
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_checkov_fails_nothing_and_every_skip_has_its_reason(
    name: str, checkov_of_every_variant: dict[str, Any]
) -> None:
    templates = templates_of(name)
    report = part_of(checkov_of_every_variant, templates)
    results = report["results"]
    assert len(results["passed_checks"]) > 50  # it really scanned this variant
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


@pytest.fixture(scope="module")
def cfn_lint_of_every_variant() -> list[dict[str, Any]]:
    """What one cfn-lint run finds in every variant's templates (its JSON matches)."""
    templates = [t for name in sorted(VARIANTS) for t in templates_of(name)]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.startswith("["), result.stdout + result.stderr
    matches: list[dict[str, Any]] = json.loads(result.stdout)
    assert (result.returncode == 0) == (matches == []), result.stderr
    return matches


@pytest.mark.xdist_group("scanners")
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cfn_lint_finds_nothing(name: str, cfn_lint_of_every_variant: list[dict[str, Any]]) -> None:
    templates = templates_of(name)
    assert [m for m in cfn_lint_of_every_variant if m["Filename"] in templates] == []


def test_cfn_lint_reports_what_it_finds_by_template(tmp_path: Path) -> None:
    """The variants' test above reads cfn-lint's JSON by file: a template with a fault shows
    there under its own name."""
    broken = tmp_path / "broken.template.json"
    broken.write_text(
        json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"Nope": 1}}}})
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert {m["Filename"] for m in json.loads(result.stdout)} == {str(broken)}


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
