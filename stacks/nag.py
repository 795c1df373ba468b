"""cdk-nag acknowledgements: one finding, on the narrowest construct, with its reason."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge the AwsSolutions ``finding`` (e.g. ``AwsSolutions-ECS2``) on ``construct``."""
    Validations.of(construct).acknowledge(
        Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason)
    )


def as_nag_resource(stack: Stack, value: str) -> str:
    """``value`` as cdk-nag writes it in a finding id: ``{"Ref": "X"}`` becomes ``<X>``."""

    def render(part: Any) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, dict) and "Ref" in part:
            return f"<{part['Ref']}>"
        if isinstance(part, dict) and "Fn::Join" in part:
            separator, parts = part["Fn::Join"]
            return str(separator).join(render(p) for p in parts)
        raise ValueError(f"cannot render {part!r} as a cdk-nag resource")

    return render(stack.resolve(value))
