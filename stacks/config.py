"""Typed, frozen, validated per-environment settings.

cdk.json context holds one block per environment under ``environments``; ``-c env=NAME`` picks
one and ``-c section.key=value`` overrides a single value. :func:`load_config` turns that raw
data into an :class:`EnvironmentConfig` once, in app.py, and reports every problem at once in a
:class:`ConfigError`. Nothing below app.py reads context or the process environment.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import available_timezones

from stacks.fargate import MAX_STOP_TIMEOUT_SECONDS, VALID_MEMORY_MIB
from stacks.sizing import kit_memory_mib, task_memory_need_mib

# SQS keeps a message invisible for at most 12 hours after it was received, heartbeat or not.
SQS_MAX_VISIBILITY_SECONDS = 12 * 60 * 60
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)

Architecture = Literal["x86_64", "arm64"]
HandlerMode = Literal["callable", "command", "consumer"]
Egress = Literal["public", "nat", "endpoints"]


class ConfigError(ValueError):
    """Every problem found in one environment's settings, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class NetworkConfig:
    """Where tasks run.

    Default: a new VPC over ``max_azs`` (2) AZs; tasks in public subnets with a public IP and a
    security group without inbound rules (``egress="public"``: no NAT gateway to pay for).
    ``egress="nat"`` puts them in private subnets behind one NAT gateway (fixed egress IP).
    ``egress="endpoints"`` puts them in isolated private subnets without any route to the
    internet: VPC endpoints reach SQS, ECR, CloudWatch Logs and S3 (and SSM / Secrets Manager /
    DynamoDB when used); jobs cannot call external APIs. An existing VPC is used when ``vpc_id``
    is set, with its ``subnet_ids`` and ``availability_zones`` (no lookups at synth); there
    ``nat`` and ``endpoints`` both mean no public IP, the VPC provides the way out.
    """

    egress: Egress = "public"
    max_azs: int = 2
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    availability_zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageConfig:
    """The team's own worker image (``worker.image``); absent = the kit's ``worker_image/``.

    Exactly one of ``directory`` (the team's Dockerfile, built as a CDK asset for the task's
    architecture, with the kit's ``worker_image/`` as the extra build context
    ``queue-worker-kit``) or ``repository`` (an existing ECR image that already contains the
    kit, with exactly one of ``tag`` or ``digest``).
    """

    directory: str | None = None
    """Build context, relative to the project directory (where cdk.json is); load_config
    resolves it to an absolute path when given the project directory. Default none."""
    dockerfile: str = "Dockerfile"
    """The Dockerfile, relative to ``directory``. Default ``Dockerfile``."""
    target: str | None = None
    """Build stage (``docker build --target``). Default none: the last stage."""
    build_args: Mapping[str, str] = field(default_factory=dict)
    """``docker build --build-arg`` values. Default none."""
    repository: str | None = None
    """ECR repository name in the environment's account and region, or a repository ARN."""
    tag: str | None = None
    """Image tag in ``repository``; set this or ``digest``."""
    digest: str | None = None
    """Image digest (``sha256:`` + 64 hex) in ``repository``; set this or ``tag``."""


@dataclass(frozen=True)
class WorkerConfig:
    """One Fargate task: its shape and the supervisord fleet of worker processes it runs."""

    processes: int = 2
    """Worker processes per task (supervisord ``numprocs``). Default 2."""
    cpu: int = 256
    """Task CPU units (1024 = 1 vCPU). Default 256."""
    memory_mib: int = 512
    """Task memory; must be valid for ``cpu`` on Fargate. Default 512."""
    architecture: Architecture = "x86_64"
    spot: bool = False
    """Run on Fargate Spot (x86_64 only). Default off."""
    handler_mode: HandlerMode = "callable"
    handler: str = "worker.examples:sleep_job"
    job_timeout_seconds: int = 900
    max_jobs_per_process: int = 200
    """Recycle a process after this many jobs (0 = never). Default 200."""
    max_memory_mib_per_process: int = 200
    """Recycle a process above this RSS, between jobs (0 = never). Default 200."""
    prefetch_seconds: int = 5
    """Work a process may hold ahead of its running job, by mean duration: the receive batch
    is clamp(prefetch / mean, 1, 10), so jobs of 5 s or more come one at a time. Default 5."""
    stop_timeout_seconds: int = 120
    """ECS SIGTERM-to-SIGKILL time (Fargate max 120). Default 120."""
    log_retention_days: int = 30
    encrypt_logs: bool = True
    """Encrypt the worker and flow log groups with the kit's KMS key. Default true."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Extra plain environment variables for the handler."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """NAME -> ``ssm:/parameter/name`` or ``secretsmanager:secret-name[:json-key]``."""
    image: ImageConfig | None = None
    """The worker image. Default None: the kit's own ``worker_image/``."""

    @property
    def supervisor_stopwait_seconds(self) -> int:
        """supervisord's SIGTERM-to-SIGKILL time: inside ECS's stop timeout."""
        return self.stop_timeout_seconds - 10

    @property
    def stop_grace_seconds(self) -> int:
        """How long a running job may finish after SIGTERM before its message is handed back."""
        return self.stop_timeout_seconds - 20


@dataclass(frozen=True)
class QueueConfig:
    """The work queue, its dead-letter queue and the worker's retry timing."""

    max_receive_count: int = 5
    """Receives before SQS moves a message to the DLQ. Default 5."""
    retention_days: int = 4
    """Work queue retention (the DLQ keeps 14 days). Default 4."""
    visibility_timeout_seconds: int = 120
    """Base visibility: a crashed process's message is back after this. Default 120."""
    retry_backoff_base_seconds: int = 10
    retry_backoff_max_seconds: int = 600
    idempotency_table: bool = False
    """Create the DynamoDB table of the optional dedupe guard. Default off."""

    @property
    def heartbeat_interval_seconds(self) -> int:
        """How often the worker extends held messages: four times per visibility timeout."""
        return max(1, self.visibility_timeout_seconds // 4)


@dataclass(frozen=True)
class ScalingConfig:
    """Task count bounds and queue-depth step scaling."""

    min_tasks: int = 0
    """Floor outside batch windows. Default 0: nothing runs when there is nothing to do."""
    max_tasks: int = 10
    max_total_processes: int = 100
    """Connection cap: max_tasks x processes must stay at or below it. Default 100."""
    target_backlog_per_process: int = 10
    """Waiting messages per process that are acceptable before scaling out. Default 10."""
    scale_out_cooldown_seconds: int = 120
    scale_in_cooldown_seconds: int = 60
    scale_in_after_minutes: int = 3
    """Minutes of surplus capacity before scaling in. Default 3."""


@dataclass(frozen=True)
class BatchWindow:
    """A daily window that raises the task floor at ``start`` for ``hold_minutes``.

    ``end`` is the deadline: the deadline alarm fires when the backlog cannot finish by then.
    """

    start: time
    end: time
    timezone: str
    min_tasks: int
    hold_minutes: int = 30


@dataclass(frozen=True)
class AlarmsConfig:
    """Where alarms go (one encrypted SNS topic) and when they fire (see docs/operations.md)."""

    email: str | None = None
    """Subscribe this address to the alarm topic. Default: no subscription."""
    dlq_messages_threshold: int = 1
    """Alarm when the DLQ holds at least this many messages. Default 1."""
    worker_error_rate_percent: int = 20
    """Alarm when more than this share of jobs fail (retry, dead_letter, timeout). Default 20."""
    oldest_message_age_minutes: int | None = None
    """Alarm when the oldest message has waited longer. Default None: derived from the job
    timeout, the visibility timeout and the batch windows (stacks/constructs/monitoring.py)."""
    tasks_missing_minutes: int = 10
    """Alarm when fewer tasks run than desired for this many minutes in a row. Default 10."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything one environment's stacks need, validated."""

    name: str
    region: str
    account: str | None = None
    retain_data: bool = False
    """Retain the queue (and table) on delete and turn on termination protection."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    batch_windows: tuple[BatchWindow, ...] = ()
    alarms: AlarmsConfig = field(default_factory=AlarmsConfig)

    @property
    def stack_prefix(self) -> str:
        return f"QueueWorker-{self.name}"


SECTIONS: dict[str, type[Any]] = {
    "network": NetworkConfig,
    "worker": WorkerConfig,
    "queue": QueueConfig,
    "scaling": ScalingConfig,
    "alarms": AlarmsConfig,
}
TOP_LEVEL_KEYS = {"region", "account", "retain_data", "batch_window", "batch_windows", *SECTIONS}
WINDOW_KEYS = {f.name for f in dataclasses.fields(BatchWindow)}
# -c section.key=value works on these sections (batch_window: a single window only).
OVERRIDABLE = {*SECTIONS, "batch_window"}
OVERRIDE_KEY = re.compile(r"^(?P<section>[a-z_]+)\.(?P<key>[a-z_]+)$")


def load_config(
    environments: Mapping[str, Any] | None,
    env_name: str | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    project_dir: Path | None = None,
) -> EnvironmentConfig:
    """Parse and validate one environment; raise ConfigError listing every problem.

    ``overrides`` maps ``section.key`` (for example ``worker.processes``) to a value, as given
    with ``-c worker.processes=6``; strings are converted to the key's type. ``project_dir``
    (the directory of cdk.json) resolves ``worker.image.directory``, which must then exist and
    hold its Dockerfile; without it the path is kept as given and not checked.
    """
    known = sorted(environments or {})
    if not env_name:
        raise ConfigError(
            [f"env: no environment chosen; pass -c env=NAME with NAME one of {known}"]
        )
    if env_name not in known:
        raise ConfigError([f"env: unknown environment {env_name!r}; known: {known}"])
    raw = environments[env_name] if environments else {}
    if not isinstance(raw, Mapping):
        raise ConfigError([f"environments.{env_name}: expected an object, got {raw!r}"])
    problems: list[str] = []
    raw = _apply_overrides(raw, overrides or {}, problems)
    config = _parse_environment(env_name, raw, problems)
    if config is not None and not problems:
        problems.extend(_cross_checks(config))
    if config is not None and not problems and project_dir is not None:
        config = _resolve_image_directory(config, project_dir, problems)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def _resolve_image_directory(
    config: EnvironmentConfig, project_dir: Path, problems: list[str]
) -> EnvironmentConfig:
    """``worker.image.directory`` as an absolute path; it and its Dockerfile must exist."""
    image = config.worker.image
    if image is None or image.directory is None:
        return config
    where = f"environments.{config.name}.worker.image"
    directory = (project_dir / image.directory).resolve()
    if not directory.is_dir():
        problems.append(
            f"{where}.directory: {image.directory!r} is not a directory ({directory}); "
            "allowed: a directory relative to the project directory, where cdk.json is"
        )
    elif not (directory / image.dockerfile).is_file():
        problems.append(
            f"{where}.dockerfile: {image.dockerfile!r} is not a file in {directory}; allowed: "
            "the Dockerfile's path relative to directory (default 'Dockerfile')"
        )
    resolved = dataclasses.replace(image, directory=str(directory))
    worker = dataclasses.replace(config.worker, image=resolved)
    return dataclasses.replace(config, worker=worker)


def _apply_overrides(
    raw: Mapping[str, Any], overrides: Mapping[str, Any], problems: list[str]
) -> dict[str, Any]:
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    for dotted, value in overrides.items():
        match = OVERRIDE_KEY.match(dotted)
        section = match["section"] if match else ""
        if not match or section not in OVERRIDABLE:
            problems.append(
                f"-c {dotted}: not an override key; use section.key with section one of "
                f"{sorted(OVERRIDABLE)}"
            )
            continue
        if section == "batch_window" and not isinstance(merged.get(section), dict):
            problems.append(f"-c {dotted}: this environment has no single batch_window to change")
            continue
        merged.setdefault(section, {})[match["key"]] = value
    return merged


def _parse_environment(
    name: str, raw: Mapping[str, Any], problems: list[str]
) -> EnvironmentConfig | None:
    prefix = f"environments.{name}"
    for key in sorted(set(raw) - TOP_LEVEL_KEYS):
        problems.append(f"{prefix}.{key}: unknown key; allowed: {sorted(TOP_LEVEL_KEYS)}")
    region = raw.get("region")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
        problems.append(
            f"{prefix}.region: {region!r} is not an AWS region name such as 'ap-northeast-1' "
            "(required: synth makes no lookups)"
        )
    account = raw.get("account")
    if account is not None and not (isinstance(account, str) and re.fullmatch(r"\d{12}", account)):
        problems.append(f"{prefix}.account: {account!r} must be a 12-digit account id or absent")
    retain = _convert(raw.get("retain_data", False), bool, f"{prefix}.retain_data", problems)
    sections = {
        section: _parse_section(cls, raw.get(section, {}), f"{prefix}.{section}", problems)
        for section, cls in SECTIONS.items()
    }
    windows = _parse_windows(raw, prefix, problems)
    if problems:
        return None
    return EnvironmentConfig(
        name=name,
        region=str(region),
        account=account,
        retain_data=bool(retain),
        batch_windows=windows,
        **sections,
    )


def _parse_section(cls: type[Any], raw: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(raw, Mapping):
        problems.append(f"{prefix}: expected an object, got {raw!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(set(raw) - fields):
        problems.append(f"{prefix}.{key}: unknown key; allowed: {sorted(fields)}")
    values = {
        key: _convert(value, hints[key], f"{prefix}.{key}", problems)
        for key, value in raw.items()
        if key in fields
    }
    before = len(problems)
    values = {k: v for k, v in values.items() if v is not _INVALID}
    instance = cls(**values)
    if len(problems) == before:
        problems.extend(f"{prefix}.{p}" for p in _FIELD_CHECKS[cls](instance))
    return instance


def _parse_windows(
    raw: Mapping[str, Any], prefix: str, problems: list[str]
) -> tuple[BatchWindow, ...]:
    if "batch_window" in raw and "batch_windows" in raw:
        problems.append(f"{prefix}: set batch_window (one) or batch_windows (a list), not both")
        return ()
    items = [raw["batch_window"]] if "batch_window" in raw else raw.get("batch_windows", [])
    key = "batch_window" if "batch_window" in raw else "batch_windows"
    if not isinstance(items, list):
        problems.append(f"{prefix}.{key}: expected a list of windows, got {items!r}")
        return ()
    windows = []
    for index, item in enumerate(items):
        where = f"{prefix}.{key}" + (f"[{index}]" if key == "batch_windows" else "")
        window = _parse_window(item, where, problems)
        if window is not None:
            windows.append(window)
    return tuple(windows)


def _parse_window(item: Any, where: str, problems: list[str]) -> BatchWindow | None:
    if not isinstance(item, Mapping):
        problems.append(f"{where}: expected an object, got {item!r}")
        return None
    before = len(problems)
    for key in sorted(set(item) - WINDOW_KEYS):
        problems.append(f"{where}.{key}: unknown key; allowed: {sorted(WINDOW_KEYS)}")
    for key in ("start", "end", "timezone", "min_tasks"):
        if key not in item:
            problems.append(f"{where}.{key}: required")
    if len(problems) > before:
        return None
    start = _parse_clock(item["start"], f"{where}.start", problems)
    end = _parse_clock(item["end"], f"{where}.end", problems)
    timezone = item["timezone"]
    if not isinstance(timezone, str) or timezone not in _timezones():
        problems.append(
            f"{where}.timezone: {timezone!r} is not an IANA time zone such as 'Asia/Tokyo'"
        )
    min_tasks = _convert(item["min_tasks"], int, f"{where}.min_tasks", problems)
    hold = _convert(item.get("hold_minutes", 30), int, f"{where}.hold_minutes", problems)
    if len(problems) > before or start is None or end is None:
        return None
    window = BatchWindow(start, end, timezone, int(min_tasks), int(hold))
    length = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if length <= 0:
        problems.append(
            f"{where}.end: {item['end']!r} must be after start {item['start']!r} "
            "(windows do not cross midnight; split such a window in two)"
        )
    elif not 1 <= window.hold_minutes <= length:
        problems.append(
            f"{where}.hold_minutes: {window.hold_minutes} must be between 1 and the window's "
            f"length ({length} minutes)"
        )
    if window.min_tasks < 1:
        problems.append(f"{where}.min_tasks: {window.min_tasks} must be at least 1")
    return window


def _parse_clock(value: Any, where: str, problems: list[str]) -> time | None:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value) if isinstance(value, str) else None
    if not match:
        problems.append(f"{where}: {value!r} is not a time of day as HH:MM (24-hour)")
        return None
    return time(int(match[1]), int(match[2]))


_INVALID = object()


def _convert(value: Any, hint: Any, where: str, problems: list[str]) -> Any:
    """Check ``value`` against a field's type; strings from -c overrides are converted."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value in allowed:
            return value
        problems.append(f"{where}: {value!r} is not allowed; allowed: {list(allowed)}")
        return _INVALID
    if origin in (types.UnionType, typing.Union):  # str | None
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif (
        origin is Mapping
        and isinstance(value, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        return dict(value)
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return _parse_section(hint, value, where, problems)
    problems.append(f"{where}: {value!r} is not {_describe(hint)}")
    return _INVALID


def _describe(hint: Any) -> str:
    names = {bool: "true or false", int: "a whole number", str: "a string"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    if dataclasses.is_dataclass(hint):
        return "an object"
    return "an object of string values"


def _timezones() -> set[str]:
    return available_timezones() or {"UTC"}


def _check_network(n: NetworkConfig) -> list[str]:
    problems = []
    if not 2 <= n.max_azs <= 6:
        problems.append(f"max_azs: {n.max_azs} must be between 2 and 6 (tasks span 2+ AZs)")
    existing = (n.vpc_id is not None, bool(n.subnet_ids), bool(n.availability_zones))
    if any(existing) and not all(existing):
        problems.append(
            "vpc_id: an existing VPC needs vpc_id, subnet_ids and availability_zones together"
        )
    if n.vpc_id is not None and not re.fullmatch(r"vpc-[0-9a-f]{8,17}", n.vpc_id):
        problems.append(f"vpc_id: {n.vpc_id!r} is not a VPC id such as 'vpc-0abc1234'")
    return problems


RESERVED_ENV = {
    "QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL",
    "WORKER_PROCESSES",
    "WORKER_HANDLER_MODE",
    "WORKER_HANDLER",
    "JOB_TIMEOUT_SECONDS",
    "VISIBILITY_TIMEOUT_SECONDS",
    "HEARTBEAT_INTERVAL_SECONDS",
    "RETRY_BACKOFF_BASE_SECONDS",
    "RETRY_BACKOFF_MAX_SECONDS",
    "PREFETCH_SECONDS",
    "MAX_JOBS_PER_PROCESS",
    "MAX_MEMORY_MIB_PER_PROCESS",
    "WORKER_STOP_GRACE_SECONDS",
    "SUPERVISOR_STOPWAITSECS",
    "TASK_PROTECTION",
    "IDEMPOTENCY_TABLE_NAME",
}
SECRET_REF = re.compile(r"^(ssm:/[\w./-]+|secretsmanager:[\w/+=.@-]+(:[\w.-]+)?)$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _check_worker(w: WorkerConfig) -> list[str]:
    problems = []
    if w.processes < 1:
        problems.append(f"processes: {w.processes} must be at least 1")
    if w.cpu not in VALID_MEMORY_MIB:
        problems.append(f"cpu: {w.cpu} is not a Fargate CPU; valid: {sorted(VALID_MEMORY_MIB)}")
    elif w.memory_mib not in VALID_MEMORY_MIB[w.cpu]:
        problems.append(
            f"memory_mib: {w.memory_mib} is not valid with cpu {w.cpu}; valid memory_mib for "
            f"cpu {w.cpu}: {list(VALID_MEMORY_MIB[w.cpu])}"
        )
    elif w.max_memory_mib_per_process and w.processes >= 1:
        need = task_memory_need_mib(w.processes, w.max_memory_mib_per_process, w.handler_mode)
        if need > w.memory_mib:
            kit = kit_memory_mib(w.processes, w.handler_mode)
            problems.append(
                f"memory_mib: {w.memory_mib} cannot hold {w.processes} processes of up to "
                f"max_memory_mib_per_process {w.max_memory_mib_per_process} MiB plus the kit's "
                f"own {kit} MiB in {w.handler_mode} mode (supervisord and the worker loops, "
                f"docs/benchmarks.md): {need} MiB; raise memory_mib or lower processes or "
                "max_memory_mib_per_process"
            )
    if w.spot and w.architecture != "x86_64":
        problems.append("spot: Fargate Spot runs x86_64 tasks only; set architecture x86_64")
    if not w.handler.strip():
        problems.append("handler: must not be empty")
    elif w.handler_mode == "callable" and not re.fullmatch(r"[\w.]+:\w+", w.handler):
        problems.append(f"handler: {w.handler!r} must be module:function in callable mode")
    if w.max_jobs_per_process < 0:
        problems.append(f"max_jobs_per_process: {w.max_jobs_per_process} must be 0 or more")
    if w.max_memory_mib_per_process < 0:
        problems.append(
            f"max_memory_mib_per_process: {w.max_memory_mib_per_process} must be 0 or more"
        )
    if not 0 <= w.prefetch_seconds <= 3600:
        problems.append(f"prefetch_seconds: {w.prefetch_seconds} must be between 0 and 3600")
    if not 30 <= w.stop_timeout_seconds <= MAX_STOP_TIMEOUT_SECONDS:
        problems.append(
            f"stop_timeout_seconds: {w.stop_timeout_seconds} must be between 30 and "
            f"{MAX_STOP_TIMEOUT_SECONDS} (the Fargate maximum)"
        )
    if w.log_retention_days not in LOG_RETENTION_DAYS:
        problems.append(
            f"log_retention_days: {w.log_retention_days} is not a CloudWatch Logs retention; "
            f"valid: {list(LOG_RETENTION_DAYS)}"
        )
    for name in sorted({*w.environment, *w.secrets}):
        if not ENV_NAME.match(name) or name in RESERVED_ENV:
            problems.append(
                f"environment/secrets: {name!r} must be an UPPER_CASE name not used by the kit"
            )
    problems.extend(
        f"secrets.{name}: {ref!r} must be 'ssm:/parameter/name' or "
        "'secretsmanager:secret-name[:json-key]'"
        for name, ref in sorted(w.secrets.items())
        if not SECRET_REF.match(ref)
    )
    return problems


def _check_queue(q: QueueConfig) -> list[str]:
    problems = []
    if not 1 <= q.max_receive_count <= 1000:
        problems.append(f"max_receive_count: {q.max_receive_count} must be between 1 and 1000")
    if not 1 <= q.retention_days <= 14:
        problems.append(f"retention_days: {q.retention_days} must be between 1 and 14 (SQS)")
    if not 30 <= q.visibility_timeout_seconds <= 3600:
        problems.append(
            f"visibility_timeout_seconds: {q.visibility_timeout_seconds} must be between 30 and "
            "3600 (the heartbeat extends it for long jobs; a short one returns a crashed "
            "process's message sooner)"
        )
    if not 1 <= q.retry_backoff_base_seconds <= q.retry_backoff_max_seconds <= 43200:
        problems.append(
            f"retry_backoff_base_seconds: {q.retry_backoff_base_seconds} and "
            f"retry_backoff_max_seconds: {q.retry_backoff_max_seconds} must satisfy "
            "1 <= base <= max <= 43200"
        )
    return problems


def _check_scaling(s: ScalingConfig) -> list[str]:
    problems = []
    if s.min_tasks < 0:
        problems.append(f"min_tasks: {s.min_tasks} must be 0 or more")
    if s.max_tasks < 1:
        problems.append(f"max_tasks: {s.max_tasks} must be at least 1")
    if s.min_tasks > s.max_tasks:
        problems.append(f"min_tasks: {s.min_tasks} must not exceed max_tasks {s.max_tasks}")
    if s.max_total_processes < 1:
        problems.append(f"max_total_processes: {s.max_total_processes} must be at least 1")
    if s.target_backlog_per_process < 1:
        problems.append(
            f"target_backlog_per_process: {s.target_backlog_per_process} must be at least 1"
        )
    for name in ("scale_out_cooldown_seconds", "scale_in_cooldown_seconds"):
        if not 0 <= getattr(s, name) <= 3600:
            problems.append(f"{name}: {getattr(s, name)} must be between 0 and 3600")
    if not 1 <= s.scale_in_after_minutes <= 60:
        problems.append(f"scale_in_after_minutes: {s.scale_in_after_minutes} must be 1 to 60")
    return problems


def _check_alarms(a: AlarmsConfig) -> list[str]:
    problems = []
    if a.email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a.email):
        problems.append(f"email: {a.email!r} is not an email address")
    if a.dlq_messages_threshold < 1:
        problems.append(f"dlq_messages_threshold: {a.dlq_messages_threshold} must be at least 1")
    if not 1 <= a.worker_error_rate_percent <= 100:
        problems.append(
            f"worker_error_rate_percent: {a.worker_error_rate_percent} must be 1 to 100"
        )
    if a.oldest_message_age_minutes is not None and not 1 <= a.oldest_message_age_minutes <= 20160:
        problems.append(
            f"oldest_message_age_minutes: {a.oldest_message_age_minutes} must be 1 to 20160 "
            "(14 days, the longest SQS keeps a message)"
        )
    if not 1 <= a.tasks_missing_minutes <= 60:
        problems.append(f"tasks_missing_minutes: {a.tasks_missing_minutes} must be 1 to 60")
    return problems


ECR_REPOSITORY_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
ECR_REPOSITORY_ARN = re.compile(
    rf"arn:aws[a-z-]*:ecr:[a-z]{{2}}(?:-[a-z]+)+-\d:\d{{12}}:repository/{ECR_REPOSITORY_NAME.pattern}"
)
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _check_image(i: ImageConfig) -> list[str]:
    problems = []
    if i.directory is not None and i.repository is not None:
        problems.append(
            f"directory: {i.directory!r} and repository {i.repository!r} are both set; allowed: "
            "one of them (directory: your Dockerfile, built at deploy; repository: an image "
            "already built)"
        )
    elif i.directory is None and i.repository is None:
        problems.append(
            "directory/repository: neither is set; allowed: directory (your Dockerfile's build "
            "context) or repository with tag or digest, or no image at all (the kit's own)"
        )
    if i.directory is not None:
        if not i.directory.strip() or Path(i.directory).is_absolute():
            problems.append(
                f"directory: {i.directory!r} must be a path relative to the project directory"
            )
        problems.extend(
            f"{key}: {getattr(i, key)!r} applies to a repository image only; remove it"
            for key in ("tag", "digest")
            if getattr(i, key) is not None
        )
    if i.repository is not None:
        if not (
            ECR_REPOSITORY_NAME.fullmatch(i.repository) and 2 <= len(i.repository) <= 256
        ) and not ECR_REPOSITORY_ARN.fullmatch(i.repository):
            problems.append(
                f"repository: {i.repository!r} is neither an ECR repository name (lowercase, "
                "e.g. 'team/app') nor a repository ARN "
                "('arn:aws:ecr:REGION:ACCOUNT:repository/NAME')"
            )
        if (i.tag is None) == (i.digest is None):
            problems.append(
                f"tag: {i.tag!r} and digest {i.digest!r}: a repository image needs exactly one "
                "of tag or digest"
            )
        for key, given in (
            ("target", i.target is not None),
            ("build_args", bool(i.build_args)),
            ("dockerfile", i.dockerfile != "Dockerfile"),
        ):
            if given:
                problems.append(
                    f"{key}: {getattr(i, key)!r} applies to a directory build only; a "
                    "repository names an image already built"
                )
    if i.tag is not None and not IMAGE_TAG.fullmatch(i.tag):
        problems.append(
            f"tag: {i.tag!r} is not an image tag (letters, digits, '_', '.', '-'; at most 128; "
            "not starting with '.' or '-')"
        )
    if i.digest is not None and not IMAGE_DIGEST.fullmatch(i.digest):
        problems.append(f"digest: {i.digest!r} is not 'sha256:' + 64 lowercase hex digits")
    if i.target is not None and not IMAGE_TAG.fullmatch(i.target):
        problems.append(f"target: {i.target!r} is not a build stage name")
    if not i.dockerfile.strip():
        problems.append("dockerfile: must not be empty")
    return problems


_FIELD_CHECKS: dict[type[Any], Callable[[Any], list[str]]] = {
    ImageConfig: _check_image,
    NetworkConfig: _check_network,
    WorkerConfig: _check_worker,
    QueueConfig: _check_queue,
    ScalingConfig: _check_scaling,
    AlarmsConfig: _check_alarms,
}


def _cross_checks(c: EnvironmentConfig) -> list[str]:
    """Rules that tie sections together."""
    prefix = f"environments.{c.name}"
    problems = []
    processes, cap = c.worker.processes, c.scaling.max_total_processes
    if c.scaling.max_tasks * processes > cap:
        problems.append(
            f"{prefix}.scaling.max_tasks: {c.scaling.max_tasks} tasks x {processes} processes = "
            f"{c.scaling.max_tasks * processes} exceeds max_total_processes {cap} (the database "
            f"connection cap); at most {cap // processes} tasks"
        )
    longest = SQS_MAX_VISIBILITY_SECONDS - c.queue.visibility_timeout_seconds
    if not 1 <= c.worker.job_timeout_seconds <= longest:
        problems.append(
            f"{prefix}.worker.job_timeout_seconds: {c.worker.job_timeout_seconds} must be between "
            f"1 and {longest}: SQS keeps a message invisible for at most 12 h after it is "
            "received, heartbeat or not (minus one visibility timeout of margin)"
        )
    for index, w in enumerate(c.batch_windows):
        where = f"{prefix}.batch_windows[{index}].min_tasks"
        if w.min_tasks > c.scaling.max_tasks:
            problems.append(
                f"{where}: {w.min_tasks} exceeds scaling.max_tasks {c.scaling.max_tasks}"
            )
    return problems
