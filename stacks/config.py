"""Typed, frozen, validated per-environment settings (pydantic v2).

cdk.json context holds one block per environment under ``environments``; ``-c env=NAME`` picks
one and ``-c KEY=VALUE`` overrides one value (``-c worker.processes=6``, ``-c retain_data=false``,
``-c worker.image.tag=v2``). :func:`load_config` turns that into an :class:`EnvironmentConfig`
once, in app.py, and reports every problem at once, each with its full key path, in a
:class:`ConfigError`. Nothing below app.py reads context or the process environment.

Every model is frozen and rejects unknown keys. pydantic checks each value (type, bounds, format);
rules that tie values together are plain functions listed in a model's ``rules``: each runs on
the values that are valid on their own, so one bad value never hides an unrelated problem.
``python -m stacks.config --schema`` prints the JSON Schema of one environment block
(schema/environment.schema.json).
"""

from __future__ import annotations

import difflib
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import time
from functools import cache
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import annotated_types
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import CoreSchema, ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core import core_schema as cs

from stacks.fargate import MAX_STOP_TIMEOUT_SECONDS, VALID_MEMORY_MIB

# SQS keeps a message invisible for at most 12 hours after it was received, heartbeat or not.
SQS_MAX_VISIBILITY_SECONDS = 12 * 60 * 60
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
# Memory that supervisord and the container itself need beside the worker processes.
SUPERVISOR_OVERHEAD_MIB = 64
# Variables the kit sets in the container; the team's environment and secrets may not use them.
RESERVED_ENV = frozenset(
    {
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
)
# Context keys that belong to the CDK, not to the kit: feature flags (@aws-cdk/...), CLI and
# lookup keys (aws:cdk:..., availability-zones:...) and these.
CDK_CONTEXT_KEYS = frozenset({"env", "environments", "acknowledged-issue-numbers", "cli-telemetry"})

Architecture = Literal["x86_64", "arm64"]
HandlerMode = Literal["callable", "command", "consumer"]
Egress = Literal["public", "nat", "endpoints"]


class ConfigError(ValueError):
    """Every problem found in one environment's settings, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, eq=False)
class _Check:
    """Annotated metadata: a value for which ``ok`` is false fails as ``{value!r} is not
    {what}``; ``schema`` is merged into the JSON Schema."""

    ok: Callable[[Any], bool]
    what: str
    schema: Mapping[str, Any] | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return cs.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {**handler(schema), **(self.schema or {})}

    def _check(self, value: Any) -> Any:
        if not self.ok(value):
            raise ValueError(f"{value!r} is not {self.what}")
        return value


def _matches(regex: str, what: str) -> _Check:
    return _Check(lambda v: re.fullmatch(regex, v) is not None, what, {"pattern": f"^(?:{regex})$"})


def _one_of(allowed: tuple[int, ...], what: str) -> _Check:
    return _Check(lambda v: v in allowed, f"{what}; allowed: {list(allowed)}", {"enum": allowed})


def _clock(value: Any) -> time:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a time of day as HH:MM (24-hour)")
    return time(int(match[1]), int(match[2]))


@cache
def _timezones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones() or {"UTC"})


Region = Annotated[
    str, _matches(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region name such as 'ap-northeast-1'")
]
Account = Annotated[str, _matches(r"\d{12}", "a 12-digit account id")]
Email = Annotated[str, _matches(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address")]
Clock = Annotated[
    time, BeforeValidator(_clock), WithJsonSchema({"type": "string", "pattern": r"^\d\d:\d\d$"})
]
TimeZone = Annotated[
    str, _Check(lambda z: z in _timezones(), "an IANA time zone such as 'Asia/Tokyo'")
]
EnvName = Annotated[
    str,
    _Check(
        lambda n: re.fullmatch(r"[A-Z_][A-Z0-9_]*", n) is not None and n not in RESERVED_ENV,
        "an UPPER_CASE name not used by the kit",
    ),
]
SecretRef = Annotated[
    str,
    _matches(
        r"ssm:/[\w./-]+|secretsmanager:[\w/+=.@-]+(:[\w.-]+)?",
        "'ssm:/parameter/name' or 'secretsmanager:secret-name[:json-key]'",
    ),
]
Strings = Annotated[tuple[str, ...], Strict(False)]  # a JSON list, kept as a tuple
Problem = tuple[str, str]  # (key, relative to the model; message)


class _Invalid(Exception):
    """A rule's input is not valid on its own: the rule is skipped, the input's error says why."""


@dataclass(frozen=True)
class Values:
    """What a rule reads: ``values("worker.processes")`` is the value if it is valid on its own
    (its default when absent); reading an invalid one skips the rule. ``context`` is
    load_config's (``project_dir``)."""

    model: type[Model]
    data: Mapping[str, Any]
    context: Mapping[str, Any]

    def __call__(self, key: str) -> Any:
        name, _, rest = key.partition(".")
        field = self.model.model_fields[name]
        raw_key = field.alias or name
        if raw_key not in self.data:
            default = field.get_default(call_default_factory=True)
            return attrgetter(rest)(default) if rest else default
        raw = self.data[raw_key]
        if rest:
            if not isinstance(raw, Mapping):
                raise _Invalid
            return Values(typing.cast("type[Model]", field.annotation), raw, self.context)(rest)
        try:
            return _field_adapter(self.model, name).validate_python(raw, context=self.context)
        except ValidationError:
            raise _Invalid from None


Rule = Callable[[Values], Iterator[Problem]]


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    field = model.model_fields[name]
    annotation: Any = field.annotation
    strict = None if _model_in(annotation) is annotation else ConfigDict(strict=True)  # as Model
    return TypeAdapter(
        Annotated[(annotation, *field.metadata)] if field.metadata else annotation, config=strict
    )


class Model(BaseModel):
    """Frozen, strict (cdk.json's JSON types; -c strings are converted before), no unknown keys;
    every problem, of the values and of the ``rules``, reported at once."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, use_attribute_docstrings=True
    )
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(
        cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        errors: list[InitErrorDetails] = []
        try:
            model = handler(data)
        except ValidationError as error:
            errors = [_error(e["loc"], _explain(cls, e), e["input"]) for e in error.errors()]
        if isinstance(data, Mapping):
            values = Values(cls, data, info.context or {})
            for rule in cls.rules:
                try:
                    problems = list(rule(values))
                except _Invalid:
                    continue
                errors += [_error(_loc(key), message, None) for key, message in problems]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return model


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    return {"type": PydanticCustomError("config", message), "loc": loc, "input": value}


def _loc(key: str) -> tuple[str | int, ...]:
    return tuple(int(part) if part.isdigit() else part for part in key.split("."))


_TYPE_PROBLEMS = {
    "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
    "bool_type": "is not true or false",
    "string_type": "is not a string",
    "model_type": "is not an object",
    "model_attributes_type": "is not an object",
    "dict_type": "is not an object",
    "mapping_type": "is not an object",
    "tuple_type": "is not a list",
}


def _explain(model: type[BaseModel], error: ErrorDetails) -> str:
    """pydantic's error on one of ``model``'s values, as the kit says it: value, what is allowed."""
    kind, value, ctx = error["type"], error["input"], error.get("ctx", {})
    by_key = {field.alias or name: field for name, field in model.model_fields.items()}
    field = by_key.get(str(error["loc"][0])) if error["loc"] else None
    if kind == "config":  # a nested model's, already explained
        return error["msg"]
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(str(error["loc"][-1]), by_key, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"unknown key; allowed: {sorted(by_key)}{hint}"
    if kind == "missing":
        return f"required: {field.description}" if field and field.description else "required"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "literal_error" and field is not None:
        return f"{value!r} is not allowed; allowed: {list(typing.get_args(field.annotation))}"
    if kind in ("greater_than_equal", "less_than_equal") and field is not None:
        low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
        high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
        bounds = f"at least {low}" if high is None else f"at most {high}"
        return f"{value!r} must be " + (f"{low} to {high}" if None not in (low, high) else bounds)
    return f"{value!r} {_TYPE_PROBLEMS.get(kind, error['msg'])}"


# --- the models -------------------------------------------------------------------------------


def _existing_vpc(v: Values) -> Iterator[Problem]:
    given = (v("vpc_id") is not None, bool(v("subnet_ids")), bool(v("availability_zones")))
    if any(given) and not all(given):
        yield "vpc_id", "an existing VPC needs vpc_id, subnet_ids and availability_zones together"


class NetworkConfig(Model):
    """Where tasks run: a new VPC, or an existing one (``vpc_id`` with its ``subnet_ids`` and
    ``availability_zones``: no lookups at synth). Tasks have a security group without inbound
    rules."""

    egress: Egress = "public"
    """How tasks reach AWS and the internet. ``public`` (default): public subnets and a public
    IP, no NAT gateway (cheapest); ``nat``: private subnets behind one NAT gateway (fixed egress
    IP); ``endpoints``: isolated subnets, no NAT, VPC endpoints for SQS, ECR, CloudWatch Logs, ECS
    and S3 (AWS only, no internet)."""
    max_azs: int = Field(2, ge=2, le=6)
    """AZs of the new VPC, 2 to 6. Default 2."""
    vpc_id: (
        Annotated[str, _matches(r"vpc-[0-9a-f]{8,17}", "a VPC id such as 'vpc-0abc1234'")] | None
    ) = None
    """Use this existing VPC. Default: a new VPC."""
    subnet_ids: Strings = ()
    """Subnets of the existing VPC for the tasks. Default []."""
    availability_zones: Strings = ()
    """AZs of the existing VPC. Default []."""

    rules = (_existing_vpc,)


def _image_source(v: Values) -> Iterator[Problem]:
    directory, repository, tag, digest = v("directory"), v("repository"), v("tag"), v("digest")
    if (directory is None) == (repository is None):
        yield "directory", "set exactly one of directory (your Dockerfile) or repository"
    if repository is not None and (tag is None) == (digest is None):
        yield "repository", f"{repository!r} needs exactly one of tag or digest"
    if directory is not None and (tag, digest) != (None, None):
        yield ("tag" if tag else "digest"), "applies to repository only, not to directory"
    for key in ("dockerfile", "target", "build_args") if repository is not None else ():
        if v(key) != v.model.model_fields[key].get_default(call_default_factory=True):
            yield key, "applies to directory only, not to repository"


def _image_files(v: Values) -> Iterator[Problem]:
    project, directory, dockerfile = v.context.get("project_dir"), v("directory"), v("dockerfile")
    if project is None or directory is None:
        return
    if not (Path(project) / directory).is_dir():
        yield "directory", f"{directory!r} is not a directory under {project}"
    elif not (Path(project) / directory / dockerfile).is_file():
        yield "dockerfile", f"{dockerfile!r} is not a file in {directory!r}"


class ImageConfig(Model):
    """The worker image, when not the kit's own ``worker_image/``: exactly one of ``directory``
    (your Dockerfile, built as an asset with the build context ``queue-worker-kit`` = the kit's
    ``worker_image/``) or ``repository`` (an existing image that already contains the kit)."""

    directory: str | None = None
    """Build context, relative to the project directory (where cdk.json is)."""
    dockerfile: str = "Dockerfile"
    """Dockerfile, relative to ``directory``. Default "Dockerfile"."""
    target: str | None = None
    """Build stage. Default: the last stage."""
    build_args: Mapping[str, str] = Field(default_factory=dict)
    """Docker build arguments. Default {}."""
    repository: (
        Annotated[
            str,
            _matches(
                r"(arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository/)?"
                r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*",
                "an ECR repository name or ARN",
            ),
        ]
        | None
    ) = None
    """ECR repository (name in this account and region, or ARN) of an existing image."""
    tag: Annotated[str, _matches(r"[\w][\w.-]{0,127}", "an image tag")] | None = None
    """Image tag in ``repository``."""
    digest: Annotated[str, _matches(r"sha256:[0-9a-f]{64}", "'sha256:' + 64 hex digits")] | None = (
        None
    )
    """Image digest in ``repository`` (sha256:...)."""

    rules = (_image_source, _image_files)


def _fargate_pair(v: Values) -> Iterator[Problem]:
    cpu, memory = v("cpu"), v("memory_mib")
    if memory not in VALID_MEMORY_MIB[cpu]:
        yield (
            "memory_mib",
            (
                f"{memory} is not valid with cpu {cpu}; valid memory_mib for cpu {cpu}: "
                f"{list(VALID_MEMORY_MIB[cpu])}"
            ),
        )


def _memory_holds_processes(v: Values) -> Iterator[Problem]:
    cpu, memory, processes = v("cpu"), v("memory_mib"), v("processes")
    per_process = v("max_memory_mib_per_process")
    need = processes * per_process + SUPERVISOR_OVERHEAD_MIB
    if memory in VALID_MEMORY_MIB[cpu] and per_process and need > memory:
        yield (
            "memory_mib",
            (
                f"{memory} cannot hold {processes} processes of up to max_memory_mib_per_process "
                f"{per_process} MiB plus {SUPERVISOR_OVERHEAD_MIB} MiB for supervisord "
                f"({need} MiB); raise memory_mib or lower processes or max_memory_mib_per_process"
            ),
        )


def _spot_on_x86(v: Values) -> Iterator[Problem]:
    if v("spot") and v("architecture") != "x86_64":
        yield "spot", "Fargate Spot runs x86_64 tasks only; set architecture x86_64"


def _handler_form(v: Values) -> Iterator[Problem]:
    handler, mode = v("handler"), v("handler_mode")
    if not handler.strip():
        yield "handler", "must not be empty"
    elif mode == "callable" and not re.fullmatch(r"[\w.]+:\w+", handler):
        yield "handler", f"{handler!r} must be module:function in callable mode"


class WorkerConfig(Model):
    """One Fargate task: its shape and the supervisord fleet of worker processes it runs."""

    processes: int = Field(2, ge=1)
    """Worker processes per task (supervisord ``numprocs``), at least 1. Default 2."""
    cpu: Annotated[int, _one_of(tuple(VALID_MEMORY_MIB), "a Fargate CPU")] = 256
    """Task CPU units (1024 = 1 vCPU). Default 256."""
    memory_mib: int = 512
    """Task memory: valid for ``cpu`` on Fargate and holding every process at its recycle limit
    + 64 MiB. Default 512."""
    architecture: Architecture = "x86_64"
    """CPU architecture of the task and the image. Default x86_64."""
    spot: bool = False
    """Run on Fargate Spot (x86_64 only). Default false."""
    image: ImageConfig | None = None
    """The worker image. Default: the kit's own ``worker_image/``."""
    handler_mode: HandlerMode = "callable"
    """How a job runs: a Python function, a command per message, or your own long-running
    consumer. Default callable."""
    handler: str = "worker.examples:sleep_job"
    """``module:function``, or the command. Default worker.examples:sleep_job."""
    job_timeout_seconds: int = 900
    """A job running longer is stopped and retried (1 s to 12 h minus the visibility timeout).
    Default 900."""
    max_jobs_per_process: int = Field(200, ge=0)
    """Recycle a process after this many jobs (0 = never). Default 200."""
    max_memory_mib_per_process: int = Field(200, ge=0)
    """Recycle a process above this RSS, between jobs (0 = never). Default 200."""
    prefetch_seconds: int = Field(5, ge=0, le=3600)
    """Work a process may hold ahead of its running job, by mean duration: the receive batch
    is clamp(prefetch / mean, 1, 10), so jobs of 5 s or more come one at a time. Default 5."""
    stop_timeout_seconds: int = Field(120, ge=30, le=MAX_STOP_TIMEOUT_SECONDS)
    """ECS SIGTERM-to-SIGKILL time, 30 to 120 (the Fargate maximum). Default 120."""
    log_retention_days: Annotated[
        int, _one_of(LOG_RETENTION_DAYS, "a CloudWatch Logs retention")
    ] = 30
    """CloudWatch Logs retention of the worker logs. Default 30."""
    encrypt_logs: bool = True
    """Encrypt the worker log group with the kit's KMS key. Default true."""
    ecs_exec: bool = False
    """Allow ECS Exec (a shell in a running task). Default false."""
    environment: Mapping[EnvName, str] = Field(default_factory=dict)
    """Extra plain environment variables for the handler. Default {}."""
    secrets: Mapping[EnvName, SecretRef] = Field(default_factory=dict)
    """NAME -> ``ssm:/parameter/name`` or ``secretsmanager:secret-name[:json-key]``. Default {}."""

    rules = (_fargate_pair, _memory_holds_processes, _spot_on_x86, _handler_form)

    @property
    def supervisor_stopwait_seconds(self) -> int:
        """supervisord's SIGTERM-to-SIGKILL time: inside ECS's stop timeout."""
        return self.stop_timeout_seconds - 10

    @property
    def stop_grace_seconds(self) -> int:
        """How long a running job may finish after SIGTERM before its message is handed back."""
        return self.stop_timeout_seconds - 20


def _backoff_order(v: Values) -> Iterator[Problem]:
    base, most = v("retry_backoff_base_seconds"), v("retry_backoff_max_seconds")
    if base > most:
        yield (
            "retry_backoff_base_seconds",
            f"{base} must not exceed retry_backoff_max_seconds {most}",
        )


class QueueConfig(Model):
    """The work queue, its dead-letter queue and the worker's retry timing."""

    max_receive_count: int = Field(5, ge=1, le=1000)
    """Receives before SQS moves a message to the DLQ, 1 to 1000. Default 5."""
    retention_days: int = Field(4, ge=1, le=14)
    """Work queue retention, 1 to 14 days (the DLQ keeps 14). Default 4."""
    visibility_timeout_seconds: int = Field(120, ge=30, le=3600)
    """Base visibility, 30 to 3600: the heartbeat extends it every quarter of it while a job
    runs; a crashed process's message is back after it. Default 120."""
    retry_backoff_base_seconds: int = Field(10, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    """After a failure the message is visible again after base x 2^(receives-1) ... Default 10."""
    retry_backoff_max_seconds: int = Field(600, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    """... capped at this. Default 600."""
    idempotency_table: bool = False
    """Create the DynamoDB table of the optional dedupe guard. Default false."""

    rules = (_backoff_order,)

    @property
    def heartbeat_interval_seconds(self) -> int:
        """How often the worker extends held messages: four times per visibility timeout."""
        return max(1, self.visibility_timeout_seconds // 4)


def _min_below_max(v: Values) -> Iterator[Problem]:
    low, high = v("min_tasks"), v("max_tasks")
    if low > high:
        yield "min_tasks", f"{low} must not exceed max_tasks {high}"


class ScalingConfig(Model):
    """Task count bounds and queue-depth step scaling."""

    min_tasks: int = Field(0, ge=0)
    """Floor outside batch windows: 0 = nothing runs when there is nothing to do. Default 0."""
    max_tasks: int = Field(10, ge=1)
    """Ceiling; max_tasks x worker.processes must not exceed max_total_processes. Default 10."""
    max_total_processes: int = Field(100, ge=1)
    """The database connection cap: every process holds one connection. Default 100."""
    target_backlog_per_process: int = Field(10, ge=1)
    """Waiting messages per process that are acceptable before scaling out. Default 10."""
    scale_out_cooldown_seconds: int = Field(120, ge=0, le=3600)
    """Time between scale-outs (a task starts in about a minute). Default 120."""
    scale_in_cooldown_seconds: int = Field(60, ge=0, le=3600)
    """Time between scale-ins. Default 60."""
    scale_in_after_minutes: int = Field(3, ge=1, le=60)
    """Minutes of surplus tasks before scaling in, 1 to 60. Default 3."""

    rules = (_min_below_max,)


def _window_shape(v: Values) -> Iterator[Problem]:
    start, end, hold = v("start"), v("end"), v("hold_minutes")
    length = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if length <= 0:
        yield (
            "end",
            (
                f"'{end:%H:%M}' must be after start '{start:%H:%M}' "
                "(windows do not cross midnight; split such a window in two)"
            ),
        )
    elif not 1 <= hold <= length:
        yield "hold_minutes", f"{hold} must be between 1 and the window's length ({length} minutes)"


class BatchWindow(Model):
    """A daily window that raises the task floor at ``start`` for ``hold_minutes``.

    ``end`` is the deadline: the deadline alarm fires when the backlog cannot finish by then.
    """

    start: Clock
    """Start of the daily window, HH:MM in ``timezone``."""
    end: Clock
    """The deadline, HH:MM the same day, after ``start``."""
    timezone: TimeZone
    """IANA time zone, e.g. Asia/Tokyo."""
    min_tasks: int = Field(ge=1)
    """Floor from ``start`` for ``hold_minutes``, so work starts while queue metrics lag."""
    hold_minutes: int = 30
    """How long the floor holds; then queue scaling keeps what the backlog needs. Default 30."""

    rules = (_window_shape,)


class AlarmsConfig(Model):
    """Where alarms go (one encrypted SNS topic) and when they fire (see docs/operations.md)."""

    email: Email | None = None
    """Subscribe this address to the alarm topic. Default: no subscription."""
    dlq_messages_threshold: int = Field(1, ge=1)
    """Alarm when the DLQ holds at least this many messages. Default 1."""
    worker_error_rate_percent: int = Field(20, ge=1, le=100)
    """Alarm when more than this share of jobs fail (retry, dead_letter, timeout). Default 20."""
    oldest_message_age_minutes: int | None = Field(None, ge=1, le=20160)
    """Alarm when the oldest message has waited longer (1 to 20160, 14 days). Default: derived
    from the job timeout, the visibility timeout and the batch windows."""
    tasks_missing_minutes: int = Field(10, ge=1, le=60)
    """Alarm when fewer tasks run than desired for this many minutes in a row. Default 10."""


class CiConfig(Model):
    """The GitHub Actions deploy role (OIDC) of this environment."""

    github_repository: Annotated[
        str, _matches(r"[\w.-]+/[\w.-]+", "a GitHub repository as 'owner/name'")
    ]
    """The GitHub repository whose workflows may deploy, as owner/name."""
    branch: str = "main"
    """The branch allowed to deploy. Default main."""
    oidc_provider_arn: (
        Annotated[
            str,
            _matches(
                r"arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com",
                "the ARN of a GitHub OIDC provider",
            ),
        ]
        | None
    ) = None
    """An existing GitHub OIDC provider. Default: create one."""


def _one_window_form(v: Values) -> Iterator[Problem]:
    if v("batch_window") is not None and v("windows"):
        yield "batch_windows", "set batch_window (one) or batch_windows (a list), not both"


def _connection_cap(v: Values) -> Iterator[Problem]:
    processes, max_tasks = v("worker.processes"), v("scaling.max_tasks")
    cap = v("scaling.max_total_processes")
    if max_tasks * processes > cap:
        yield (
            "scaling.max_tasks",
            (
                f"{max_tasks} tasks x {processes} processes = {max_tasks * processes} exceeds "
                f"max_total_processes {cap} (the database connection cap); at most "
                f"{cap // processes} tasks"
            ),
        )


def _job_timeout(v: Values) -> Iterator[Problem]:
    timeout = v("worker.job_timeout_seconds")
    longest = SQS_MAX_VISIBILITY_SECONDS - v("queue.visibility_timeout_seconds")
    if not 1 <= timeout <= longest:
        yield (
            "worker.job_timeout_seconds",
            (
                f"{timeout} must be between 1 and {longest}: SQS keeps a message invisible for at "
                "most 12 h after it is received, heartbeat or not (minus one visibility timeout of "
                "margin)"
            ),
        )


def _window_floors(v: Values) -> Iterator[Problem]:
    max_tasks, single, many = v("scaling.max_tasks"), v("batch_window"), v("windows")
    windows = (
        {"batch_window": single}
        if single
        else {f"batch_windows.{i}": w for i, w in enumerate(many)}
    )
    for key, window in windows.items():
        if window.min_tasks > max_tasks:
            yield f"{key}.min_tasks", f"{window.min_tasks} exceeds scaling.max_tasks {max_tasks}"


class EnvironmentBlock(Model):
    """One environment's block in cdk.json (``context.environments.NAME``)."""

    region: Region
    """AWS region such as ap-northeast-1 (synth makes no lookups)."""
    account: Account | None = None
    """12-digit account id. Default: the deploying credentials' account."""
    retain_data: bool = False
    """Retain the queues (and table) on delete and turn on termination protection. Default
    false."""
    network: NetworkConfig = NetworkConfig()
    worker: WorkerConfig = WorkerConfig()
    queue: QueueConfig = QueueConfig()
    scaling: ScalingConfig = ScalingConfig()
    batch_window: BatchWindow | None = None
    """One daily batch window. Default: none."""
    windows: Annotated[tuple[BatchWindow, ...], Strict(False)] = Field((), alias="batch_windows")
    """Several daily windows instead of one ``batch_window``. Default []."""
    alarms: AlarmsConfig = AlarmsConfig()
    ci: CiConfig | None = None
    """The GitHub Actions deploy role. Default: none."""

    rules = (_one_window_form, _connection_cap, _job_timeout, _window_floors)

    @property
    def batch_windows(self) -> tuple[BatchWindow, ...]:
        """Every batch window: the single ``batch_window`` or the ``batch_windows`` list."""
        return (self.batch_window,) if self.batch_window else self.windows


class EnvironmentConfig(EnvironmentBlock):
    """Everything one environment's stacks need, validated."""

    name: str

    @property
    def stack_prefix(self) -> str:
        return f"QueueWorker-{self.name}"


# --- loading ----------------------------------------------------------------------------------


def load_config(
    environments: Mapping[str, Any] | None,
    env_name: str | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    project_dir: Path | None = None,
) -> EnvironmentConfig:
    """Parse and validate one environment; raise ConfigError listing every problem.

    ``overrides`` maps keys (``worker.processes``, ``retain_data``, ``worker.image.tag``) to
    values, as given with ``-c KEY=VALUE``; strings are converted to the key's type. With
    ``project_dir`` (where cdk.json is), ``worker.image.directory`` and its Dockerfile must exist.
    """
    known = sorted(environments or {})
    if not env_name:
        raise ConfigError(
            [f"env: no environment chosen; pass -c env=NAME with NAME one of {known}"]
        )
    if not environments or env_name not in environments:
        raise ConfigError([f"env: unknown environment {env_name!r}; known: {known}"])
    raw = environments[env_name]
    prefix = f"environments.{env_name}"
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{prefix}: expected an object, got {raw!r}"])
    problems: list[str] = []
    raw = _with_overrides(raw, overrides or {}, prefix, problems)
    context = {"project_dir": project_dir} if project_dir else {}
    try:
        block = EnvironmentBlock.model_validate(raw, context=context)
    except ValidationError as error:
        problems += [f"{prefix}{_path(e['loc'])}: {e['msg']}" for e in error.errors()]
    if problems:
        raise ConfigError(problems)
    return EnvironmentConfig.model_construct(name=env_name, **dict(block))


def _path(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "[key]")


def overrides_from_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The ``-c KEY=VALUE`` overrides among the CDK context: every key that is not the CDK's
    own (feature flags ``@...``, ``aws:cdk:...`` and lookup keys with a colon, CDK_CONTEXT_KEYS).
    An unknown key is kept, so that load_config rejects it instead of ignoring a typo."""
    return {
        key: value
        for key, value in context.items()
        if not key.startswith("@") and ":" not in key and key not in CDK_CONTEXT_KEYS
    }


def _with_overrides(
    raw: Mapping[str, Any], overrides: Mapping[str, Any], prefix: str, problems: list[str]
) -> dict[str, Any]:
    merged: dict[str, Any] = json.loads(json.dumps(raw))  # a deep copy of JSON data
    keys = config_keys()
    for key, value in overrides.items():
        parent = keys.get(key.rpartition(".")[0])
        if key in keys:
            annotation, section = keys[key].field.annotation, keys[key].optional_section
        elif parent and typing.get_origin(parent.field.annotation) is Mapping:
            annotation, section = str, parent.optional_section  # worker.environment.NAME
        else:
            problems.append(f"-c {key}: {_not_a_key(key, keys)}")
            continue
        if section and not isinstance(_lookup(merged, section), dict):
            problems.append(f"-c {key}: {prefix} has no {section} to change; add one in cdk.json")
            continue
        *parents, leaf = key.split(".")
        node: Any = merged
        for part in parents:  # a section that is not an object is reported by validation
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[leaf] = _converted(value, annotation)
    return merged


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, Mapping) else None
    return data


def _model_in(annotation: Any) -> type[Model] | None:
    """The model of ``M`` or ``M | None``, else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(filter(None, map(_model_in, typing.get_args(annotation))), None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, Model) else None


class Key(typing.NamedTuple):
    field: FieldInfo
    optional_section: str | None  # absent unless cdk.json has it: -c cannot create it


@cache
def config_keys(
    model: type[BaseModel] = EnvironmentBlock, prefix: str = "", optional: str | None = None
) -> dict[str, Key]:
    """Every key of an environment block below its sections, dotted (``worker.image.tag``):
    what -c can set and the README's table documents."""
    keys: dict[str, Key] = {}
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        if inner := _model_in(field.annotation):
            section = optional or (key if field.default is None else None)
            keys |= config_keys(inner, f"{key}.", section)
        else:
            keys[key] = Key(field, optional)
    return keys


def _not_a_key(key: str, leaves: Mapping[str, Any]) -> str:
    below = [leaf for leaf in leaves if leaf.startswith(f"{key}.")]
    if below:
        return f"a section; override one of its keys, e.g. {below[0]}"
    name = key.rpartition(".")[2]
    near = difflib.get_close_matches(key, leaves, n=3)
    near = near or [leaf for leaf in leaves if leaf.rpartition(".")[2] == name]
    return "unknown key" + (f"; did you mean {' or '.join(near)}?" if near else "")


def _converted(value: Any, annotation: Any) -> Any:
    """A ``-c`` string as the key's type: JSON (6, true, null) unless the key takes text."""
    if not isinstance(value, str) or (_takes_text(annotation) and value != "null"):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # validation says what is wrong with it


def _takes_text(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (Annotated, Literal):
        return _takes_text(type(typing.get_args(annotation)[0]))
    return annotation is str or any(_takes_text(a) for a in typing.get_args(annotation))


def schema() -> dict[str, Any]:
    """The JSON Schema of one environment block (schema/environment.schema.json)."""
    return EnvironmentBlock.model_json_schema()


if __name__ == "__main__":
    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m stacks.config --schema > schema/environment.schema.json")
    print(json.dumps(schema(), indent=2))
