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


# -- The rest of the bill -------------------------------------------------------------------------
# Everything an environment pays for besides Fargate, per region, each with where the figure comes
# from and when it was seen. This machine has no internet: "seen" figures were read on
# 2026-12-06 in stored copies of the pages named (the search corpus); "list" figures are the
# AWS list prices as the kit's authors know them, not re-read here (check the page before
# relying on them to the cent). scripts/capacity/bill.py applies them to synthesized templates.

SEEN = "2026-12-06"
CLOUDWATCH_PAGE = "https://aws.amazon.com/cloudwatch/pricing/"
VPC_PAGE = "https://aws.amazon.com/vpc/pricing/"
PRIVATELINK_PAGE = "https://aws.amazon.com/privatelink/pricing/"
KMS_PAGE = "https://aws.amazon.com/kms/pricing/"
SQS_PAGE = "https://aws.amazon.com/sqs/pricing/"


@dataclass(frozen=True)
class Price:
    """One unit price (USD), the page it comes from and how it was confirmed."""

    usd: float
    unit: str
    source: str
    seen: str  # "2026-12-06 (...)" or "list price, not re-read here"


LIST = "list price, not re-read here: no internet on this machine"


def _seen(where: str) -> str:
    return f"{SEEN}, {where}"


# Prices that are the same in every region the kit prices.
_GLOBAL = {
    "alarm_metric": Price(
        0.10,
        "alarm metric-month (standard resolution; a metric math alarm pays per metric it reads)",
        CLOUDWATCH_PAGE,
        _seen("the page's alarm table; also the CloudWatch billing guide (Japanese copy)"),
    ),
    "alarm_metric_high_resolution": Price(
        0.30, "alarm metric-month (period under 60 s)", CLOUDWATCH_PAGE, LIST
    ),
    "dashboard": Price(
        3.00,
        "dashboard-month (an account's first 3 dashboards of up to 50 metrics are free; the "
        "bill does not count on them: other environments and teams share them)",
        CLOUDWATCH_PAGE,
        _seen("the page's free tier and dashboard rows (Japanese copy)"),
    ),
    "custom_metric": Price(
        0.30,
        "metric-month, first 10,000 metrics; prorated by the hour, billed only in hours the "
        "metric receives data",
        CLOUDWATCH_PAGE,
        _seen("the page's metrics tiers (Japanese copy: 10,000 metrics at 0.30 USD)"),
    ),
    "kms_key": Price(1.00, "customer managed key-month", KMS_PAGE, LIST),
    "public_ipv4": Price(
        0.005,
        "public IPv4 address-hour (in use or idle, since 2024-02-01)",
        VPC_PAGE,
        _seen("the SDK references and the announcement's 0.005 USD per IP per hour"),
    ),
    "sqs_request": Price(
        0.40 / 1_000_000,
        "request (standard queue, 0.40 USD a million; the first million a month per account "
        "is free and not counted)",
        SQS_PAGE,
        LIST,
    ),
    "endpoint_gb": Price(0.01, "GB through an interface endpoint", PRIVATELINK_PAGE, LIST),
}

# Prices that differ by region: (region, item) -> price.
_REGIONAL: dict[str, dict[str, Price]] = {
    "ap-northeast-1": {
        "log_ingestion": Price(0.76, "GB ingested (standard class)", CLOUDWATCH_PAGE, LIST),
        "log_storage": Price(0.033, "GB-month stored", CLOUDWATCH_PAGE, LIST),
        "nat_gateway_hour": Price(0.062, "NAT gateway-hour", VPC_PAGE, LIST),
        "nat_gateway_gb": Price(0.062, "GB processed by a NAT gateway", VPC_PAGE, LIST),
        "endpoint_hour": Price(0.014, "interface endpoint-hour per AZ", PRIVATELINK_PAGE, LIST),
    },
    "us-east-1": {
        "log_ingestion": Price(0.50, "GB ingested (standard class)", CLOUDWATCH_PAGE, LIST),
        "log_storage": Price(0.03, "GB-month stored", CLOUDWATCH_PAGE, LIST),
        "nat_gateway_hour": Price(
            0.045,
            "NAT gateway-hour",
            VPC_PAGE,
            _seen("the page's example (US East), in a copy of the page read 2026-09-20"),
        ),
        "nat_gateway_gb": Price(0.045, "GB processed by a NAT gateway", VPC_PAGE, LIST),
        "endpoint_hour": Price(0.01, "interface endpoint-hour per AZ", PRIVATELINK_PAGE, LIST),
    },
    "eu-west-1": {
        "log_ingestion": Price(0.57, "GB ingested (standard class)", CLOUDWATCH_PAGE, LIST),
        "log_storage": Price(0.03, "GB-month stored", CLOUDWATCH_PAGE, LIST),
        "nat_gateway_hour": Price(0.048, "NAT gateway-hour", VPC_PAGE, LIST),
        "nat_gateway_gb": Price(0.048, "GB processed by a NAT gateway", VPC_PAGE, LIST),
        "endpoint_hour": Price(0.011, "interface endpoint-hour per AZ", PRIVATELINK_PAGE, LIST),
    },
}


def price(region: str, item: str) -> Price:
    """The price of ``item`` (a key of the tables above) in ``region``; ValueError naming what
    is known when the region is not."""
    if region not in _REGIONAL:
        raise ValueError(f"no prices for region {region!r}; known: {', '.join(sorted(_REGIONAL))}")
    return _REGIONAL[region].get(item) or _GLOBAL[item]
