"""Every wildcard in the synthesized policies is explained in one place: docs/security.md's table
"Wildcards in the policies". The test reads every identity policy (the roles' policies) and
resource policy (key, queue, topic) of every variant, and of the settings that add statements
(``ci``, ``worker.ecs_exec``, ``worker.secrets_kms_key_arns``), and fails on a ``*`` in an
action, a resource or a principal that no row of the table explains; a row that explains no
wildcard any more fails too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from stacks.config import DEFAULT_NAME, EnvironmentConfig
from tests.infra.conftest import ROOT, VARIANTS, Synthesized, synthesize, variant

SECURITY_DOC = (ROOT / "docs" / "security.md").read_text()
TABLE_TITLE = "### Wildcards in the policies"
# Settings that add statements beyond the VARIANTS.
EXTRA = {
    "prod-ci": (
        "prod",
        {"ci": {"github_repository": "octo-org/queue-app"}, "bootstrap": {"qualifier": "qwprod"}},
    ),
    "prod-ecs-exec": ("prod", {"worker": {"ecs_exec": True}}),
    "prod-secrets-keys": (
        "prod",
        {
            "worker": {
                "secrets": {"DB_PASSWORD": "ssm:/app/db", "API_TOKEN": "secretsmanager:app/api"},
                "secrets_kms_key_arns": [
                    "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                ],
            }
        },
    ),
}
NAMES = sorted(VARIANTS) + sorted(EXTRA)
# Role logical ids -> how the table names their policies.
ROLES = {
    "ExecutionRole": "execution role",
    "TaskRole": "task role",
    "DeployRole": "deploy role",
    "DiffRole": "diff role",
}
RESOURCE_POLICIES = {
    "AWS::KMS::Key": ("key policy", "KeyPolicy"),
    "AWS::SQS::QueuePolicy": ("queue policies", "PolicyDocument"),
    "AWS::SNS::TopicPolicy": ("topic policy", "PolicyDocument"),
}
Finding = tuple[str, str]  # (policy, statement: its Sid, else its actions)


def synthesized(name: str) -> Synthesized:
    if name in EXTRA:
        env, changes = EXTRA[name]
        return synthesize(env, **changes)
    return variant(name)


def templates(s: Synthesized) -> list[dict[str, Any]]:
    """Every stack of the assembly: queue, worker and, with ``ci``, the deploy-role stack."""
    return [json.loads(path.read_text()) for path in sorted(s.outdir.glob("*.template.json"))]


def render(value: Any, region: str) -> str:
    """A resource as the table writes it: REGION, ACCOUNT, and resources by their construct
    name (``ClusterEB0386A7`` -> ``Cluster``)."""
    if isinstance(value, str):
        return value.replace(region, "REGION")
    if isinstance(value, list):
        return "".join(render(v, region) for v in value)
    if "Fn::Join" in value:
        return render(value["Fn::Join"][1], region)
    reference = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0] or "?"
    pseudo = {"AWS::AccountId": "ACCOUNT", "AWS::Region": "REGION", "AWS::Partition": "aws"}
    return pseudo.get(reference) or re.sub(r"[0-9A-F]{8}$", "", reference).upper()


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statement_wildcards(statement: dict[str, Any], region: str) -> set[str]:
    """The wildcards of one statement, as the table writes them: an action (``kms:Get*``),
    ``Resource: ...`` or ``Principal: *``."""
    found = {a for a in listed(statement.get("Action", [])) if "*" in a}
    resources = [render(r, region) for r in listed(statement.get("Resource", []))]
    found |= {f"Resource: {r}" for r in resources if "*" in r}
    principal = statement.get("Principal", {})
    principals = [principal] if isinstance(principal, str) else list(principal.values())
    if any("*" in item for p in principals for item in listed(p)):
        found.add("Principal: *")
    return found


def policies(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(policy as the table names it, policy document) for every policy of ``template``."""
    resources = template["Resources"]

    def role_name(logical_id: str) -> str:
        return next((name for key, name in ROLES.items() if key in logical_id), logical_id)

    for logical_id, resource in resources.items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::ManagedPolicy" and "CloudFormationExecution" in logical_id:
            yield "execution policy", properties["PolicyDocument"]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = [role_name(r["Ref"]) for r in properties.get("Roles", [])] or [logical_id]
            for role in roles:
                yield role, properties["PolicyDocument"]
        elif kind == "AWS::IAM::Role":
            for inline in properties.get("Policies", []):
                yield role_name(logical_id), inline["PolicyDocument"]
            # A managed policy's statements are not in the template: it counts as a wildcard.
            for managed in properties.get("ManagedPolicyArns", []):
                yield role_name(logical_id), {"Statement": [{"Action": "*", "Managed": managed}]}
        elif kind in RESOURCE_POLICIES:
            name, key = RESOURCE_POLICIES[kind]
            yield name, properties[key]


@cache
def findings(name: str) -> dict[Finding, frozenset[str]]:
    s = synthesized(name)
    found: dict[Finding, set[str]] = {}
    for template in templates(s):
        for policy, document in policies(template):
            for statement in document["Statement"]:
                wildcards = statement_wildcards(statement, s.config.region)
                if wildcards:
                    label = statement.get("Sid") or ", ".join(sorted(listed(statement["Action"])))
                    found.setdefault((policy, label), set()).update(wildcards)
    return {key: frozenset(value) for key, value in found.items()}


def explained() -> dict[Finding, frozenset[str]]:
    """The table's rows: | policy | statement | wildcards (each in backticks) | why |."""
    section = SECURITY_DOC.split(TABLE_TITLE, 1)[1].split("\n#", 1)[0]
    rows: dict[Finding, frozenset[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("Policy", "---") or set(cells[0]) <= {"-"}:
            continue
        policy, statement, wildcards, why = cells
        assert len(why) > 30, f"row {policy} / {statement} gives no reason"
        rows[(policy, statement.strip("`"))] = frozenset(re.findall(r"`([^`]+)`", wildcards))
    return rows


def test_the_table_exists_and_every_row_gives_a_reason() -> None:
    assert TABLE_TITLE in SECURITY_DOC
    assert len(explained()) >= 5


@pytest.mark.parametrize("name", NAMES)
def test_every_wildcard_is_explained_in_docs_security(name: str) -> None:
    rows = explained()
    unexplained = {
        finding: sorted(wildcards - rows.get(finding, frozenset()))
        for finding, wildcards in findings(name).items()
        if not wildcards <= rows.get(finding, frozenset())
    }
    assert unexplained == {}, f"add a row to {TABLE_TITLE!r} in docs/security.md or narrow it"


def test_every_row_explains_a_wildcard_that_exists() -> None:
    seen: dict[Finding, set[str]] = {}
    for name in NAMES:
        for finding, wildcards in findings(name).items():
            seen.setdefault(finding, set()).update(wildcards)
    stale = {row: sorted(w - seen.get(row, set())) for row, w in explained().items()}
    assert {row: w for row, w in stale.items() if w} == {}


TRUST_TITLE = "### Who each role trusts"
Trust = tuple[str, str, str]  # (role's construct id, principal, condition)


@cache
def trusts(name: str) -> frozenset[Trust]:
    """Every trust statement of the queue and worker stacks' roles (the GitHub roles'
    subjects are docs/ci-cd.md's, tests/infra/test_ci_cd.py)."""
    s = synthesized(name)
    found = set()
    for template in (s.queue_json, s.worker_json):
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            role = without_worker_name(re.sub(r"[0-9A-F]{8}$", "", logical_id), s.config)
            for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
                (principal,) = listed(statement["Principal"]["Service"])
                condition = (
                    json.dumps(statement["Condition"]) if "Condition" in statement else "none"
                )
                found.add((role, principal, condition))
    return frozenset(found)


def without_worker_name(logical_id: str, config: EnvironmentConfig) -> str:
    """A worker's role as the ``default`` worker's: ``ScalingbatchTargetRole`` (worker
    ``batch``) trusts what ``ScalingTargetRole`` does, for the same reason."""
    for worker in config.fleets:
        in_id = re.sub(r"[-_]", "", worker)  # logical ids keep letters and digits only
        base = re.match(rf"^(Worker|Scaling|SpotFallback|BatchWindows){in_id}(?=[A-Z])", logical_id)
        if worker != DEFAULT_NAME and base:
            return base.group(1) + logical_id[base.end() :]
    return logical_id


def explained_trusts() -> set[Trust]:
    """The table's rows: | role | principal | condition | why |."""
    section = SECURITY_DOC.split(TRUST_TITLE, 1)[1].split("\n#", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("Role", "---") or set(cells[0]) <= {"-"}:
            continue
        assert len(cells[3]) > 30, f"row {cells[0]} gives no reason"
        rows.add((cells[0].strip("`"), cells[1].strip("`"), cells[2].strip("`")))
    return rows


@pytest.mark.parametrize("name", NAMES)
def test_every_trust_is_explained_in_docs_security(name: str) -> None:
    unexplained = sorted(trusts(name) - explained_trusts())
    assert unexplained == [], f"add a row to {TRUST_TITLE!r} in docs/security.md"


def test_every_trust_row_is_a_trust_that_exists() -> None:
    assert len(explained_trusts()) >= 4
    seen = set().union(*(trusts(name) for name in NAMES))
    assert sorted(explained_trusts() - seen) == []
