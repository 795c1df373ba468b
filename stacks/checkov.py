"""checkov skips: one check, on the resource that fails it, with its reason.

checkov reads ``Metadata.checkov.skip`` (a list of ``{id, comment}``) on a CloudFormation
resource; tests/infra/test_checks.py runs checkov on every environment and requires a reason on
every skip.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from constructs import IConstruct


def skip(construct: IConstruct, check_id: str, reason: str) -> None:
    """Skip checkov ``check_id`` (e.g. ``CKV_AWS_27``) on ``construct``'s CloudFormation resource
    (the construct itself or its default child)."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    checkov: dict[str, Any] = resource.get_metadata("checkov") or {"skip": []}
    checkov["skip"] = [*checkov["skip"], {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", checkov)
