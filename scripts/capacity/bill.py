"""The whole month of an environment, priced from its synthesized templates and a workload.

    python -m scripts.capacity.simulate --cdk-out cdk.out/prod --json > /tmp/day.json
    queue-worker bill --cdk-out cdk.out/prod --day /tmp/day.json

What the templates hold is counted (:func:`facts`): the alarms and the metrics each reads (a
metric math alarm pays for every metric it reads), dashboards, KMS keys, whether the cluster has
Container Insights and how many services and task families it reports on, public IPs on tasks,
NAT gateways, interface endpoints, log groups, metric filters and flow logs. The workload gives
the usage (:class:`Usage`): compute (from the simulator or the planner), task-hours (public
IPv4, performance and flow logs), messages (SQS requests and job log lines) and the hours a day
tasks run (custom metrics are billed by the hour they receive data). :func:`bill` prices
both with scripts/capacity/pricing.py; each line says its quantity, its unit price and where
that comes from.
Without a template, :func:`facts_of` counts the same from an environment's config
(:class:`Settings`): the planner prices every candidate shape so, and a test holds both counts
equal on synthesized environments.
Not priced (under a cent a month at the reference workload): KMS requests (CloudWatch Logs and
SNS cache data keys), SNS e-mail deliveries, EventBridge's AWS service events (free), the
CloudWatch API calls of `queue-worker status`, and free tiers (an account's, shared).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts import _cli
from scripts._cli import OpsError, Parser, print_json, table
from scripts.capacity import pricing
from stacks.config import EnvironmentBlock

HELP = "the whole month of an environment: its templates priced with a workload"
DEFAULTS_IN_HELP = True
HOURS_PER_MONTH = 730  # AWS's month in its price examples
DAYS_PER_MONTH = HOURS_PER_MONTH / 24

# Container Insights (ECS, Fargate) publishes in ECS/ContainerInsights, per dimension set
# (the CloudWatch guide's list of Container Insights metrics for Amazon ECS): 8 resource metrics
# (CpuUtilized, CpuReserved, MemoryUtilized, MemoryReserved, NetworkRx/TxBytes, StorageRead/
# WriteBytes) for the cluster, each service and each task family, from the tasks' performance
# events, so only in hours tasks run; and counts: TaskCount and ServiceCount for the cluster,
# DesiredTaskCount, RunningTaskCount, PendingTaskCount, DeploymentCount and TaskSetCount per
# service, assumed published every hour (the fallback's rule reads them at 0 tasks).
CI_RESOURCE_METRICS = 8
CI_CLUSTER_COUNTS = 2
CI_SERVICE_COUNTS = 5
# Estimates (not measured here): Container Insights' performance events (a task and a container
# event a minute per task, about 1 KB each; cluster and service events a minute, ~2 KB), VPC
# flow log records (a task's few flows in 10-minute aggregates, ~130 bytes a record), the
# worker's own log lines (job start and end and the loop's lines: ~1 KB a job) and the bytes
# a message costs through a NAT gateway or endpoint (requests and log lines, ~20 KB).
CI_TASK_LOG_KB_PER_HOUR = 120
CI_SERVICE_LOG_KB_PER_HOUR = 120
FLOW_LOG_KB_PER_TASK_HOUR = 16
WORKER_LOG_KB_PER_JOB = 1
NETWORK_KB_PER_JOB = 20
# SQS requests (docs/benchmarks.md, "Worker fleet throughput": a reference job costs about one
# receive, one delete and one extension per minute of the job), plus the producer's send and
# the long polls (20 s) of idle processes while their task runs.
SQS_REQUESTS_PER_JOB = 3
SQS_POLLS_PER_IDLE_PROCESS_HOUR = 180
GB = 1024 * 1024  # KB in a GB
# What the stacks build, as facts_of counts it (tests/infra/test_bill.py holds it to what they
# synthesize): metrics each scaling alarm reads, without / with a batch window (the backlog;
# with a window also in-flight messages and the job metrics' sum and count), the Spot
# fallback's two alarms (desired, running, pending task counts each), the tasks-missing alarm
# (desired, running), the interface endpoints of stacks/constructs/network.py (SQS, ECR API and
# registry, Logs, ECS; one more per kind of secret and for ECS Exec) and the job metrics of
# stacks/constructs/monitoring.py's JOB_METRICS (5 metrics from 6 filters).
BACKLOG_ALARM_METRICS = (1, 4)
FLEET_SIZE_ALARM_METRICS = (2, 4)
FALLBACK_ALARM_METRICS = (3, 3)
TASKS_MISSING_ALARM_METRICS = 2
ALWAYS_ALARMS = 3  # dlq-messages, oldest-message-age, error-rate: one metric each
INTERFACE_ENDPOINTS = 5
JOB_FILTER_METRICS = 5


@dataclass(frozen=True)
class Facts:
    """What an environment's templates hold that has a price."""

    region: str
    alarm_metrics: tuple[int, ...]  # metrics each standard-resolution alarm reads
    high_resolution_alarm_metrics: int
    dashboards: int
    kms_keys: int
    container_insights: bool
    ecs_services: int
    task_families: int
    public_ip_on_tasks: bool
    nat_gateways: int
    interface_endpoint_azs: int  # interface endpoints x their subnets
    log_groups: int
    flow_logs: int
    filter_metrics: int  # distinct metrics the metric filters publish
    log_retention_days: int


@dataclass(frozen=True)
class Settings:
    """What an environment's config says that changes what its templates hold (stacks/config.py's
    names). Defaults: the config's (no Spot fallback, no window, level essential, public egress
    over 2 AZs, 30 days of logs)."""

    region: str
    fallback: bool = False  # worker.capacity: Spot with its on-demand fallback
    batch_windows: int = 0
    level: str = "essential"  # monitoring.level
    dashboard: bool = False
    container_insights: bool = False  # monitoring.container_insights (the fallback adds it)
    egress: str = "public"  # network.egress
    existing_vpc: bool = False  # network.vpc_id
    max_azs: int = 2
    secret_kinds: frozenset[str] = frozenset()  # kinds of worker.secrets: ssm, secretsmanager
    ecs_exec: bool = False
    log_retention_days: int = 30

    @classmethod
    def of(cls, config: EnvironmentBlock) -> Settings:
        """The settings of a parsed environment."""
        worker = config.worker
        return cls(
            region=config.region,
            fallback=worker.capacity.fallback,
            batch_windows=len(config.batch_windows),
            level=config.monitoring.level,
            dashboard=config.monitoring.dashboard,
            container_insights=config.monitoring.container_insights,
            egress=config.network.egress,
            existing_vpc=config.network.vpc_id is not None,
            max_azs=config.network.max_azs,
            secret_kinds=frozenset(ref.partition(":")[0] for ref in worker.secrets.values()),
            ecs_exec=worker.ecs_exec,
            log_retention_days=worker.log_retention_days,
        )


@dataclass(frozen=True)
class Usage:
    """One day of the workload, repeated for a month."""

    messages_per_day: float
    mean_job_seconds: float
    processes: int
    task_hours_per_day: float
    compute_per_day: float  # USD
    active_hours_per_day: float  # hours in which tasks run (logs, job and resource metrics)


@dataclass(frozen=True)
class Line:
    """One line of the bill: quantity x unit price."""

    item: str
    kind: str  # compute | fixed | usage
    quantity: float
    price: pricing.Price

    @property
    def usd(self) -> float:
        return self.quantity * self.price.usd


@dataclass(frozen=True)
class Bill:
    """The month, line by line."""

    lines: tuple[Line, ...]

    def total(self, kind: str | None = None) -> float:
        return sum(line.usd for line in self.lines if kind in (None, line.kind))

    @property
    def compute(self) -> float:
        return self.total("compute")

    @property
    def ratio(self) -> float:
        """The whole month over its compute (inf without compute)."""
        return self.total() / self.compute if self.compute else math.inf

    def totals(self) -> dict[str, float | None]:
        """USD by kind and the whole month over its compute (None without compute), rounded."""
        return {
            "total": round(self.total(), 2),
            "compute": round(self.compute, 2),
            "fixed": round(self.total("fixed"), 2),
            "usage": round(self.total("usage"), 2),
            "ratio_to_compute": round(self.ratio, 2) if self.compute else None,
        }

    def as_dict(self) -> dict[str, Any]:
        """The totals and every line with a cost."""
        lines = [{**asdict(line), "usd": round(line.usd, 4)} for line in self.lines if line.usd]
        return {**self.totals(), "lines": lines}


def _resources(templates: Iterable[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        dict(r.get("Properties", {}))
        for template in templates
        for r in template.get("Resources", {}).values()
        if r["Type"] == kind
    ]


def _alarm_metrics(alarm: Mapping[str, Any]) -> tuple[int, int]:
    """(metrics read, period in seconds) of one alarm: one for a metric alarm, the MetricStat
    queries of a metric math alarm (its expressions are free)."""
    stats = [m["MetricStat"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
    if stats:
        return len(stats), min(int(s["Period"]) for s in stats)
    return 1, int(alarm.get("Period", 60))


def facts(templates: Sequence[Mapping[str, Any]], region: str) -> Facts:
    """Count what has a price in an environment's templates (both stacks)."""
    standard, high = [], 0
    for alarm in _resources(templates, "AWS::CloudWatch::Alarm"):
        metrics, period = _alarm_metrics(alarm)
        if period < 60:
            high += metrics
        else:
            standard.append(metrics)
    clusters = _resources(templates, "AWS::ECS::Cluster")
    insights = any(
        s.get("Name") == "containerInsights" and s.get("Value") in ("enabled", "enhanced")
        for c in clusters
        for s in c.get("ClusterSettings", [])
    )
    services = _resources(templates, "AWS::ECS::Service")
    endpoints = [
        e
        for e in _resources(templates, "AWS::EC2::VPCEndpoint")
        if e.get("VpcEndpointType") == "Interface"
    ]
    groups = _resources(templates, "AWS::Logs::LogGroup")
    filters = {
        (t["MetricNamespace"], t["MetricName"])
        for f in _resources(templates, "AWS::Logs::MetricFilter")
        for t in f["MetricTransformations"]
    }
    return Facts(
        region=region,
        alarm_metrics=tuple(sorted(standard)),
        high_resolution_alarm_metrics=high,
        dashboards=len(_resources(templates, "AWS::CloudWatch::Dashboard")),
        kms_keys=len(_resources(templates, "AWS::KMS::Key")),
        container_insights=insights,
        ecs_services=len(services),
        task_families=len(_resources(templates, "AWS::ECS::TaskDefinition")),
        public_ip_on_tasks=any(
            s.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {}).get("AssignPublicIp")
            == "ENABLED"
            for s in services
        ),
        nat_gateways=len(_resources(templates, "AWS::EC2::NatGateway")),
        interface_endpoint_azs=sum(len(e.get("SubnetIds", [])) for e in endpoints),
        log_groups=len(groups),
        flow_logs=len(_resources(templates, "AWS::EC2::FlowLog")),
        filter_metrics=len(filters),
        log_retention_days=max((int(g.get("RetentionInDays", 0)) for g in groups), default=0),
    )


def facts_of(s: Settings) -> Facts:
    """What the templates of an environment with settings ``s`` hold, counted without them."""
    window = s.batch_windows > 0
    insights = s.container_insights or s.fallback
    alarms = [BACKLOG_ALARM_METRICS[window], FLEET_SIZE_ALARM_METRICS[window]]
    alarms += [1] * (s.batch_windows + ALWAYS_ALARMS)  # a deadline alarm per window
    alarms += FALLBACK_ALARM_METRICS if s.fallback else ()
    if s.level == "full":
        alarms += [1] + [TASKS_MISSING_ALARM_METRICS] * insights  # memory-high, tasks-missing
    new_vpc = not s.existing_vpc
    endpoints = INTERFACE_ENDPOINTS + len(s.secret_kinds) + s.ecs_exec
    return Facts(
        region=s.region,
        alarm_metrics=tuple(sorted(alarms)),
        high_resolution_alarm_metrics=0,
        dashboards=int(s.dashboard),
        kms_keys=1,
        container_insights=insights,
        ecs_services=1 + s.fallback,
        task_families=1,  # the fallback runs the worker's
        public_ip_on_tasks=s.egress == "public",
        nat_gateways=int(new_vpc and s.egress == "nat"),
        interface_endpoint_azs=endpoints * s.max_azs if new_vpc and s.egress == "endpoints" else 0,
        log_groups=1 + new_vpc + s.ecs_exec,  # the worker's, the flow log's, ECS Exec's
        flow_logs=int(new_vpc),
        filter_metrics=JOB_FILTER_METRICS,
        log_retention_days=s.log_retention_days,
    )


def active_hours(task_hours: float, peak_tasks: int) -> int:
    """Hours of the day in which tasks run, when the day's task-hours run at ``peak_tasks``."""
    return math.ceil(task_hours / max(1, peak_tasks))


def bill(f: Facts, usage: Usage) -> Bill:
    """The month of ``f``'s environment under ``usage``, at ``f.region``'s prices."""

    def p(item: str) -> pricing.Price:
        return pricing.price(f.region, item)

    days = DAYS_PER_MONTH
    task_hours = usage.task_hours_per_day * days
    active = min(usage.active_hours_per_day, 24.0) * days / HOURS_PER_MONTH  # share of hours
    jobs = usage.messages_per_day * days
    lines = [
        Line(
            "Fargate tasks (compute)",
            "compute",
            usage.compute_per_day * days,
            pricing.Price(1.0, "USD", "scripts/capacity/pricing.py (Fargate)", pricing.SEEN),
        ),
        Line(
            f"alarms: {len(f.alarm_metrics)}, reading {sum(f.alarm_metrics)} metrics",
            "fixed",
            sum(f.alarm_metrics),
            p("alarm_metric"),
        ),
        Line(
            "alarm metrics, high resolution",
            "fixed",
            f.high_resolution_alarm_metrics,
            p("alarm_metric_high_resolution"),
        ),
        Line("dashboards", "fixed", f.dashboards, p("dashboard")),
        Line("KMS keys", "fixed", f.kms_keys, p("kms_key")),
        Line(
            "NAT gateways (and their public IPv4)",
            "fixed",
            f.nat_gateways * HOURS_PER_MONTH,
            p("nat_gateway_hour"),
        ),
        Line(
            "NAT gateways' public IPv4", "fixed", f.nat_gateways * HOURS_PER_MONTH, p("public_ipv4")
        ),
        Line(
            "interface endpoints (x AZs)",
            "fixed",
            f.interface_endpoint_azs * HOURS_PER_MONTH,
            p("endpoint_hour"),
        ),
        Line(
            "job metrics (metric filters), hours with data",
            "usage",
            f.filter_metrics * active,
            p("custom_metric"),
        ),
        Line(
            "public IPv4 on tasks (task-hours)",
            "usage",
            task_hours if f.public_ip_on_tasks else 0,
            p("public_ipv4"),
        ),
        Line(
            "SQS requests",
            "usage",
            jobs * (SQS_REQUESTS_PER_JOB + usage.mean_job_seconds / 60)
            + SQS_POLLS_PER_IDLE_PROCESS_HOUR
            * max(0.0, task_hours * usage.processes - jobs * usage.mean_job_seconds / 3600),
            p("sqs_request"),
        ),
    ]
    log_kb = jobs * WORKER_LOG_KB_PER_JOB + f.flow_logs * task_hours * FLOW_LOG_KB_PER_TASK_HOUR
    if f.container_insights:
        counts = CI_CLUSTER_COUNTS + CI_SERVICE_COUNTS * f.ecs_services
        resources = CI_RESOURCE_METRICS * (1 + f.ecs_services + f.task_families)
        lines += [
            Line(
                f"Container Insights: {counts} task-count metrics, every hour",
                "fixed",
                counts,
                p("custom_metric"),
            ),
            Line(
                f"Container Insights: {resources} resource metrics, hours with tasks",
                "usage",
                resources * active,
                p("custom_metric"),
            ),
        ]
        log_kb += task_hours * CI_TASK_LOG_KB_PER_HOUR
        log_kb += f.ecs_services * HOURS_PER_MONTH * CI_SERVICE_LOG_KB_PER_HOUR
    network_gb = jobs * NETWORK_KB_PER_JOB / GB
    stored_gb = log_kb / GB * min(f.log_retention_days, 30) / 30  # steady state of a month
    lines += [
        Line("logs ingested (GB)", "usage", log_kb / GB, p("log_ingestion")),
        Line("logs stored (GB-month)", "usage", stored_gb, p("log_storage")),
        Line(
            "NAT gateway data (GB)", "usage", network_gb * bool(f.nat_gateways), p("nat_gateway_gb")
        ),
        Line(
            "interface endpoint data (GB)",
            "usage",
            network_gb * bool(f.interface_endpoint_azs),
            p("endpoint_gb"),
        ),
    ]
    return Bill(tuple(lines))


def text(b: Bill) -> list[str]:
    """The bill as a table: every line with a cost, then the totals."""
    rows = [
        [
            line.item,
            line.kind,
            f"{line.quantity:,.2f}",
            f"{line.price.usd:g} per {line.price.unit.split(' (')[0].split(',')[0]}",
            f"{line.usd:.2f}",
            f"{line.price.source} ({line.price.seen})",
        ]
        for line in b.lines
        if line.usd >= 0.005
    ]
    out = table(rows, ["item", "kind", "quantity", "unit price (USD)", "USD/month", "source"])
    ratio = f" = {b.ratio:.2f}x its compute" if b.compute else ""
    out.append(
        f"whole month: {b.total():.2f} USD (compute {b.compute:.2f}, fixed "
        f"{b.total('fixed'):.2f}, other usage {b.total('usage'):.2f}){ratio}"
    )
    return out


# -- Templates on disk ---------------------------------------------------------------------------


def templates_in(cdk_out: Path) -> list[dict[str, Any]]:
    """The templates of a cloud assembly directory (both stacks of one environment)."""
    paths = sorted(cdk_out.glob("*.template.json"))
    if not paths:
        raise OpsError(f"no *.template.json in {cdk_out}: synthesize first (make synth)")
    return [json.loads(p.read_text()) for p in paths]


def region_of(templates: Sequence[Mapping[str, Any]], default: str) -> str:
    """The region the kit's stacks name in their tags or outputs, else ``default``."""
    for template in templates:
        found = json.dumps(template)
        for region in pricing.REGIONS:
            if f'"{region}"' in found or f":{region}:" in found:
                return region
    return default


# -- The command ----------------------------------------------------------------------------------


def add_arguments(parser: Parser) -> None:
    """The command line."""
    parser.add_argument("--cdk-out", type=Path, required=True, help="one environment's assembly")
    parser.add_argument(
        "--day",
        type=Path,
        help="a simulated day (`queue-worker simulate ... --json`): compute, task-hours, "
        "messages; without it the month is idle (no tasks, no messages)",
    )
    parser.add_argument("--mean-job-seconds", type=float, default=165, help="SQS extensions")
    parser.add_argument("--region", choices=pricing.REGIONS, help="default: the templates'")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def usage_of_day(day: Mapping[str, Any] | None, mean_job_seconds: float) -> Usage:
    """A simulated day's usage (``simulate --json``), or an idle one."""
    if day is None:
        return Usage(0, mean_job_seconds, 1, 0, 0, 0)
    return Usage(
        messages_per_day=day["messages"],
        mean_job_seconds=mean_job_seconds,
        processes=day["processes_per_task"],
        task_hours_per_day=day["task_hours"],
        compute_per_day=day["cost"],
        active_hours_per_day=active_hours(day["task_hours"], int(day["peak_tasks"])),
    )


def execute(args: argparse.Namespace) -> int:
    """Print the month of the assembly's environment."""
    templates = templates_in(args.cdk_out)
    region = args.region or region_of(templates, "ap-northeast-1")
    day = json.loads(args.day.read_text()) if args.day else None
    b = bill(facts(templates, region), usage_of_day(day, args.mean_job_seconds))
    if args.json:
        print_json({"region": region, **b.as_dict()})
    else:
        print("\n".join(text(b)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scripts.capacity.bill`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
