"""Fargate prices for the planner and the simulator (Linux tasks, USD).

Source: the public AWS Fargate price list (aws.amazon.com/fargate/pricing), on-demand Linux
per vCPU-hour and per GB-hour, as known on 2026-11-24 (these figures have been stable since
the 2023 price list; check the page before relying on them to the cent). Fargate Spot has no
fixed price: AWS adjusts it by region with long-term supply and demand, and advertises "up to
70%" off the on-demand price, a ceiling. Observed prices sit between 50% and 70% off (eu-west-1
x86_64: $0.01334053 against $0.04048 per vCPU-hour, 67% off, tomgregory.com's comparison;
fortem.dev: "50-70% off, 70% is the ceiling, not the typical case"). The kit plans with the low
end, SPOT_DISCOUNT = 50% (planner and simulator: --spot-discount), for x86_64 and arm64 alike
(Fargate Spot runs arm64 tasks on platform 1.4.0, the ECS API reference's
CapacityProviderStrategyItem): a plan that pays at 50% off pays at any observed Spot price.

Billing: per second from the start of the image pull until the task stops, one-minute minimum
(BILLING_MINIMUM_SECONDS). Valid CPU/memory pairs: stacks.fargate.VALID_MEMORY_MIB.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.fargate import VALID_MEMORY_MIB

BILLING_MINIMUM_SECONDS = 60
SPOT_DISCOUNT = 0.50
ARCHITECTURES = ("x86_64", "arm64")


@dataclass(frozen=True)
class HourlyRate:
    """On-demand USD per vCPU-hour and per GB-hour."""

    vcpu_hour: float
    gb_hour: float


# (region, architecture) -> on-demand rate.
ON_DEMAND: dict[tuple[str, str], HourlyRate] = {
    ("us-east-1", "x86_64"): HourlyRate(0.04048, 0.004445),
    ("us-east-1", "arm64"): HourlyRate(0.03238, 0.00356),
    ("eu-west-1", "x86_64"): HourlyRate(0.04048, 0.004445),
    ("eu-west-1", "arm64"): HourlyRate(0.03238, 0.00356),
    ("ap-northeast-1", "x86_64"): HourlyRate(0.05056, 0.00553),
    ("ap-northeast-1", "arm64"): HourlyRate(0.04045, 0.00442),
}
REGIONS = tuple(sorted({region for region, _ in ON_DEMAND}))


def rate(
    region: str,
    architecture: str = "x86_64",
    spot: bool = False,
    spot_discount: float = SPOT_DISCOUNT,
) -> HourlyRate:
    """The hourly rate (Spot: ``spot_discount`` off on-demand); raises ValueError naming what
    is known when the region/architecture pair is not."""
    try:
        base = ON_DEMAND[(region, architecture)]
    except KeyError:
        raise ValueError(
            f"no Fargate price for region {region!r} / architecture {architecture!r}; "
            f"known regions: {', '.join(REGIONS)}; architectures: {', '.join(ARCHITECTURES)}"
        ) from None
    factor = 1.0 - spot_discount if spot else 1.0
    return HourlyRate(base.vcpu_hour * factor, base.gb_hour * factor)


def task_price_per_second(
    cpu: int,
    memory_mib: int,
    region: str,
    architecture: str = "x86_64",
    spot: bool = False,
    spot_discount: float = SPOT_DISCOUNT,
) -> float:
    """USD per second for one task of `cpu` units (1024 = 1 vCPU) and `memory_mib`."""
    if memory_mib not in VALID_MEMORY_MIB.get(cpu, ()):
        raise ValueError(f"not a valid Fargate shape: cpu {cpu}, memory {memory_mib} MiB")
    hourly = rate(region, architecture, spot, spot_discount)
    return (cpu / 1024 * hourly.vcpu_hour + memory_mib / 1024 * hourly.gb_hour) / 3600


def billed_seconds(run_seconds: float) -> float:
    """Seconds billed for a task that ran `run_seconds` (one-minute minimum)."""
    return max(float(BILLING_MINIMUM_SECONDS), run_seconds)
