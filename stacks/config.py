"""Typed, frozen, validated per-environment settings (pydantic v2).

cdk.json context holds one block per environment under ``environments``; ``-c env=NAME`` picks
one and ``-c KEY=VALUE`` overrides any key (``-c worker.processes=6``, ``-c retain_data=false``).
:func:`load_config` parses it once, in app.py, and reports every problem at once with its full
key path. pydantic checks each value; rules that tie values together are functions in a model's
``rules``, run on every value that is valid on its own, so one bad value hides no other problem.
``python -m stacks.config --schema`` prints the JSON Schema of an environment block.
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
from itertools import pairwise
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import available_timezones

import annotated_types
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, core_schema

from stacks.fargate import MAX_STOP_TIMEOUT_SECONDS, VALID_MEMORY_MIB
from stacks.sizing import kit_memory_mib, task_memory_need_mib

# SQS keeps a message invisible for at most 12 hours after it was received, heartbeat or not.
SQS_MAX_VISIBILITY_SECONDS = 12 * 60 * 60
# CloudWatch Logs accepts only these retention periods.
# Each window adds an expression to the fleet-size alarm; CloudWatch allows 10 an alarm.
MAX_BATCH_WINDOWS = 5
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
# Variables the kit sets in the container; the team's environment and secrets may not use them.
RESERVED_ENV = frozenset(
    "QUEUE_URL DEAD_LETTER_QUEUE_URL WORKER_PROCESSES WORKER_HANDLER_MODE WORKER_HANDLER "  # noqa: SIM905
    "JOB_TIMEOUT_SECONDS VISIBILITY_TIMEOUT_SECONDS HEARTBEAT_INTERVAL_SECONDS "
    "RETRY_BACKOFF_BASE_SECONDS RETRY_BACKOFF_MAX_SECONDS PREFETCH_SECONDS MAX_JOBS_PER_PROCESS "
    "MAX_MEMORY_MIB_PER_PROCESS WORKER_STOP_GRACE_SECONDS SUPERVISOR_STOPWAITSECS "
    "TASK_PROTECTION IDEMPOTENCY_TABLE_NAME WORKER_MAX_RECEIVE_COUNT WORKER_QUEUES".split()
)
# Context keys of the CDK, not overrides; so are feature flags (@...) and keys with a colon.
CDK_CONTEXT_KEYS = frozenset({"env", "environments", "acknowledged-issue-numbers", "cli-telemetry"})

Architecture = Literal["x86_64", "arm64"]
HandlerMode = Literal["callable", "command", "consumer"]
Egress = Literal["public", "nat", "endpoints"]
MonitoringLevel = Literal["essential", "full"]


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

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
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
    if isinstance(value, time):  # a model built in Python, not read from cdk.json
        return value
    match = re.fullmatch(CLOCK, value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a time of day as HH:MM (24-hour)")
    return time(int(match[1]), int(match[2]))


Region = Annotated[str, _matches(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region such as 'us-east-1'")]
Account = Annotated[str, _matches(r"\d{12}", "a 12-digit account id")]
Email = Annotated[str, _matches(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address")]
CLOCK = r"([01]\d|2[0-3]):([0-5]\d)"
Clock = Annotated[
    time, BeforeValidator(_clock), WithJsonSchema({"type": "string", "pattern": f"^{CLOCK}$"})
]
TimeZone = Annotated[str, _Check(lambda z: z in available_timezones(), "an IANA time zone")]
VpcId = Annotated[str, _matches(r"vpc-[0-9a-f]{8,17}", "a VPC id such as 'vpc-0abc1234'")]
Repository = Annotated[
    str,
    _matches(
        r"(arn:aws[\w-]*:ecr:[\w-]+:\d{12}:repository/)?[a-z0-9]+([._/-][a-z0-9]+)*",
        "an ECR repository name or ARN",
    ),
]
Tag = Annotated[str, _matches(r"\w[\w.-]{0,127}", "an image tag")]
Digest = Annotated[str, _matches(r"sha256:[0-9a-f]{64}", "'sha256:' + 64 hex digits")]
_ID = r"([a-z_][a-z0-9_-]*|\d+)"
ImageUser = Annotated[
    str,
    _matches(
        rf"(?!(0|root)(:|$)){_ID}(:{_ID})?",
        "a user other than root, as 'name', 'uid' or 'uid:gid' (e.g. 'www-data', '33:33')",
    ),
]
GitHubRepository = Annotated[
    str,
    _matches(
        r"[A-Za-z0-9-]+(@\d+)?/[A-Za-z0-9._-]+(@\d+)?",
        "a GitHub 'owner/name' (or 'owner@ID/name@ID', the immutable OIDC subject form)",
    ),
]
GitBranch = Annotated[
    str,
    _matches(
        r"(?!/)(?!.*//)(?!.*\.\.)[A-Za-z0-9._/-]+(?<![/.])",
        "one branch name such as 'main' (no wildcards)",
    ),
]
OidcProviderArn = Annotated[
    str,
    _matches(
        r"arn:aws[\w-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com",
        "the ARN of a GitHub OIDC provider",
    ),
]
NOT_RESERVED = "".join(f"(?!{name}$)" for name in sorted(RESERVED_ENV))
EnvName = Annotated[
    str, _matches(NOT_RESERVED + "[A-Z_][A-Z0-9_]*", "an UPPER_CASE name not used by the kit")
]
SecretRef = Annotated[
    str,
    _matches(
        r"ssm:/[\w./-]+|secretsmanager:[\w/+=.@-]+(:[\w.-]+)?",
        "'ssm:/parameter/name' or 'secretsmanager:secret-name[:json-key]'",
    ),
]
Strings = Annotated[tuple[str, ...], Strict(False)]  # a JSON list, kept as a tuple
# The one queue and worker of an environment without ``queues`` and ``workers``; a queue or
# worker of this name keeps the resource names and construct ids they had before there could be
# several (no replacement of a queue holding messages).
DEFAULT_NAME = "default"
Name = Annotated[
    str,
    _matches(
        r"[a-z][a-z0-9_-]{0,39}",
        "a name of 1 to 40 lowercase letters, digits, '_' and '-', starting with a letter",
    ),
]
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
        if (field.alias or name) not in self.data:
            if field.is_required():  # its own problem says so
                raise _Invalid
            default = field.get_default(call_default_factory=True)
            return attrgetter(rest)(default) if rest else default
        raw = self.data[field.alias or name]
        if rest and isinstance(raw, Mapping):
            return Values(typing.cast("type[Model]", field.annotation), raw, self.context)(rest)
        try:
            return _field_adapter(self.model, name).validate_python(raw, context=self.context)
        except ValidationError:
            raise _Invalid from None


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

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    rules: ClassVar[tuple[Callable[[Values], Iterator[Problem]], ...]] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        errors: list[InitErrorDetails] = []
        try:
            model = handler(data)
        except ValidationError as error:
            errors = [_error(e["loc"], _explain(cls, e), e["input"]) for e in error.errors()]
        for rule in cls.rules if isinstance(data, Mapping) else ():
            try:
                problems = list(rule(Values(cls, data, info.context or {})))
            except _Invalid:
                continue
            errors += [_error(tuple(map(_index, key.split("."))), m, None) for key, m in problems]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return model


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    return {"type": PydanticCustomError("config", message), "loc": loc, "input": value}


def _index(part: str) -> str | int:
    return int(part) if part.isdigit() else part


_TYPES = {"int": "a whole number", "bool": "true or false", "string": "a string"}
_TYPES |= {"tuple": "a list", "list": "a list"}  # else *_type: an object


def _explain(model: type[BaseModel], error: ErrorDetails) -> str:
    """pydantic's error on a value of ``model``, as the kit says it: value, what is allowed."""
    kind, value, ctx, loc = error["type"], error["input"], error.get("ctx", {}), error["loc"]
    by_key = {field.alias or name: field for name, field in model.model_fields.items()}
    field = by_key.get(str(loc[0])) if loc else None
    if kind == "config":  # a nested model's, already explained
        return error["msg"]
    if kind == "extra_forbidden":
        near = "".join(
            f"; did you mean {k!r}?" for k in difflib.get_close_matches(str(loc[-1]), by_key, n=1)
        )
        return f"unknown key; allowed: {sorted(by_key)}{near}"
    if kind == "missing":
        whats = [m.what for m in field.metadata if isinstance(m, _Check)] if field else []
        return ": ".join(["required", *whats])
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "literal_error" and field:
        return f"{value!r} is not allowed; allowed: {list(typing.get_args(field.annotation))}"
    if kind in ("greater_than_equal", "less_than_equal") and field:
        low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
        high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
        bound = f"at least {low}" if high is None else f"at most {high}"
        return f"{value!r} must be " + (bound if None in (low, high) else f"{low} to {high}")
    what = _TYPES.get(kind.split("_")[0], "an object" if kind.endswith("type") else None)
    return f"{value!r} is not {what}" if what else f"{value!r}: {error['msg']}"


def _existing_vpc(v: Values) -> Iterator[Problem]:
    given = (v("vpc_id") is not None, bool(v("subnet_ids")), bool(v("availability_zones")))
    if any(given) and not all(given):
        yield "vpc_id", "an existing VPC needs vpc_id, subnet_ids and availability_zones together"


class NetworkConfig(Model):
    """Where tasks run: a new VPC, or an existing one (no lookups at synth); no inbound rules."""

    egress: Egress = "public"
    max_azs: int = Field(2, ge=2, le=6)
    vpc_id: VpcId | None = None
    subnet_ids: Strings = ()
    availability_zones: Strings = ()

    rules = (_existing_vpc,)


def _image_source(v: Values) -> Iterator[Problem]:
    directory, repository, tag, digest = v("directory"), v("repository"), v("tag"), v("digest")
    if directory is not None and repository is not None:
        yield (
            "directory",
            (
                f"{directory!r} and repository {repository!r} are both set; allowed: one of them "
                "(directory: your Dockerfile, built at deploy; repository: an image already built)"
            ),
        )
    elif directory is None and repository is None:
        yield (
            "directory/repository",
            (
                "neither is set; allowed: directory (your Dockerfile's build context) or "
                "repository with tag or digest, or no image at all (the kit's own)"
            ),
        )
    if repository is not None and (tag is None) == (digest is None):
        yield "tag", f"{tag!r} and digest {digest!r}: a repository image needs exactly one"
    for key, value in (("tag", tag), ("digest", digest)) if directory is not None else ():
        if value is not None:
            yield key, f"{value!r} applies to a repository image only; remove it"
    for key in ("dockerfile", "target", "build_args") if repository is not None else ():
        value = v(key)
        if value != v.model.model_fields[key].get_default(call_default_factory=True):
            yield key, f"{value!r} applies to a directory (your Dockerfile) only; remove it"


def _image_files(v: Values) -> Iterator[Problem]:
    """Checked when loading cdk.json (load_config passes ``project_dir``, maybe None)."""
    if "project_dir" not in v.context or v("directory") is None:
        return
    project, directory, dockerfile = v.context["project_dir"], v("directory"), v("dockerfile")
    if not directory.strip() or Path(directory).is_absolute():
        yield "directory", f"{directory!r} must be a path relative to the project directory"
    elif project is not None and not (path := (Path(project) / directory).resolve()).is_dir():
        yield (
            "directory",
            (
                f"{directory!r} is not a directory ({path}); allowed: a directory relative to the "
                "project directory, where cdk.json is"
            ),
        )
    elif project is not None and not (path / dockerfile).is_file():
        yield (
            "dockerfile",
            (
                f"{dockerfile!r} is not a file in {path}; allowed: the Dockerfile's path relative "
                "to directory (default 'Dockerfile')"
            ),
        )


class ImageConfig(Model):
    """The worker image, instead of the kit's ``worker_image/``: your Dockerfile (``directory``,
    built with the kit's ``worker_image/`` as the build context ``queue-worker-kit``) or an
    existing image that contains the kit (``repository``)."""

    directory: str | None = None
    dockerfile: str = "Dockerfile"
    target: str | None = None
    build_args: Mapping[str, str] = Field(default_factory=dict)
    repository: Repository | None = None
    tag: Tag | None = None
    digest: Digest | None = None
    user: ImageUser | None = None

    rules = (_image_source, _image_files)


def _fargate_pair(v: Values) -> Iterator[Problem]:
    cpu, memory = v("cpu"), v("memory_mib")
    if memory not in VALID_MEMORY_MIB[cpu]:
        valid = f"valid memory_mib for cpu {cpu}: {list(VALID_MEMORY_MIB[cpu])}"
        yield "memory_mib", f"{memory} is not valid with cpu {cpu}; {valid}"


def _memory_holds_processes(v: Values) -> Iterator[Problem]:
    cpu, memory, processes = v("cpu"), v("memory_mib"), v("processes")
    per_process, mode = v("max_memory_mib_per_process"), v("handler_mode")
    need = task_memory_need_mib(processes, per_process, mode)
    if memory in VALID_MEMORY_MIB[cpu] and per_process and need > memory:
        problem = (
            f"{memory} cannot hold {processes} processes of up to max_memory_mib_per_process "
            f"{per_process} MiB plus the kit's own {kit_memory_mib(processes, mode)} MiB in "
            f"{mode} mode (supervisord and the worker loops, docs/benchmarks.md): {need} MiB; "
            "raise memory_mib or lower processes or max_memory_mib_per_process"
        )
        yield "memory_mib", problem


SPOT_REPLACED = (
    'true is replaced by worker.capacity; write "capacity": {"spot_weight": 1, '
    '"on_demand_weight": 0} (all Spot, with the on-demand fallback) or a mix such as '
    '{"on_demand_base": 1, "spot_weight": 3, "on_demand_weight": 1}, and remove spot'
)


def _spot_replaced(v: Values) -> Iterator[Problem]:
    if v("spot"):
        yield "spot", SPOT_REPLACED


def _some_weight(v: Values) -> Iterator[Problem]:
    if v("on_demand_weight") == 0 and v("spot_weight") == 0:
        yield (
            "spot_weight",
            "0 with on_demand_weight 0: ECS places tasks by weight, at least one must be above 0",
        )


class CapacityConfig(Model):
    """ECS's capacity provider strategy over FARGATE (on-demand) and FARGATE_SPOT: the first
    ``on_demand_base`` tasks run on-demand, the tasks above it are split ``on_demand_weight`` :
    ``spot_weight``. ECS does not fall back to on-demand when Spot has no capacity: with Spot,
    an on-demand fallback service runs as many tasks as the worker service could not place for
    ``fallback_after_minutes`` (``null``: no fallback). Fargate Spot runs x86_64 and arm64."""

    on_demand_base: int = Field(0, ge=0, le=100000)
    on_demand_weight: int = Field(1, ge=0, le=1000)
    spot_weight: int = Field(0, ge=0, le=1000)
    fallback_after_minutes: int | None = Field(3, ge=1, le=60)

    rules = (_some_weight,)

    @property
    def spot(self) -> bool:
        """Some tasks run on Fargate Spot."""
        return self.spot_weight > 0

    @property
    def fallback(self) -> bool:
        """The on-demand fallback service exists."""
        return self.spot and self.fallback_after_minutes is not None

    def fallback_max_tasks(self, max_tasks: int) -> int:
        """The most tasks the fallback runs: Spot can leave unplaced all but the base."""
        return max(0, max_tasks - self.on_demand_base) if self.fallback else 0


def _handler_form(v: Values) -> Iterator[Problem]:
    handler, mode = v("handler"), v("handler_mode")
    if not handler.strip():
        yield "handler", "must not be empty"
    elif mode == "callable" and not re.fullmatch(r"[\w.]+:\w+", handler):
        yield "handler", f"{handler!r} must be module:function in callable mode"


# Whole words (``_``-separated) of a variable name that say it holds a secret: one word, or
# two in a row. A name of the team's that is not a secret goes in worker.environment_not_secret.
SECRET_WORDS = frozenset(
    "PASSWORD PASSWD PASS PASSPHRASE SECRET SECRETS TOKEN TOKENS CREDENTIAL CREDENTIALS "  # noqa: SIM905
    "APIKEY PRIVATEKEY".split()
)
SECRET_WORD_PAIRS = frozenset(
    {
        ("API", "KEY"),
        ("PRIVATE", "KEY"),
        ("ACCESS", "KEY"),
        ("SIGNING", "KEY"),
        ("ENCRYPTION", "KEY"),
        ("MASTER", "KEY"),
        ("CLIENT", "KEY"),
        ("APP", "KEY"),  # Laravel's encryption key
    }
)
# AWS credentials never go in the task's variables (the task role gives the worker its own).
AWS_CREDENTIAL_NAMES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "ECS_ENGINE_AUTH_DATA"}
)
AWS_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
# 40 characters of base64 in both cases (not a 40-hex-digit hash).
AWS_SECRET_KEY = re.compile(r"(?=.*[a-z])(?=.*[A-Z])[A-Za-z0-9/+]{40}")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
KmsKeyArn = Annotated[
    str,
    _matches(
        r"arn:aws[\w-]*:kms:[a-z0-9-]+:\d{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f-]{36})",
        "a KMS key ARN such as 'arn:aws:kms:REGION:ACCOUNT:key/KEY-ID' (not an alias: IAM "
        "grants kms:Decrypt on the key itself)",
    ),
]


def secret_words(name: str) -> list[str]:
    """The words of ``name`` that say it holds a secret (``DB_PASSWORD`` -> ``['PASSWORD']``,
    ``STRIPE_API_KEY`` -> ``['API_KEY']``); none for ``TOKENIZER`` or ``KEY_PREFIX``."""
    words = name.split("_")
    found = [w for w in words if w in SECRET_WORDS]
    found += [f"{a}_{b}" for a, b in pairwise(words) if (a, b) in SECRET_WORD_PAIRS]
    return found


def _masked(value: str) -> str:
    return f"(value masked, {len(value)} characters)"


def _aws_credential(name: str, value: str, others: Mapping[str, str]) -> str | None:
    """What AWS credential ``name``=``value`` looks like, or None."""
    if name in AWS_CREDENTIAL_NAMES:
        return f"{name} is an AWS credential variable"
    if AWS_ACCESS_KEY_ID.search(value):
        return "the value holds an AWS access key id (AKIA... or ASIA...)"
    keyish = {"AWS", "KEY", "ACCESS", "SECRET", "CREDENTIAL", "CREDENTIALS"} & set(name.split("_"))
    near_key_id = any(AWS_ACCESS_KEY_ID.search(other) for other in others.values())
    if AWS_SECRET_KEY.fullmatch(value) and (keyish or near_key_id):
        return "the value has the shape of an AWS secret access key (40 characters)"
    return None


def _no_secrets_in_environment(v: Values) -> Iterator[Problem]:
    """Plain variables are readable by anyone who may describe the task definition and are in
    every synthesized template: secrets go in ``secrets`` (SSM / Secrets Manager)."""
    environment, exempt = v("environment"), set(v("environment_not_secret"))
    for name in sorted(exempt - set(environment)):
        yield (
            "environment_not_secret",
            f"{name!r} is not a key of worker.environment; allowed: names of worker.environment",
        )
    for name, value in environment.items():
        key = f"environment.{name}"
        instead = (
            f'write it in worker.secrets instead: "{name}": "ssm:/PARAMETER/NAME" or '
            f'"{name}": "secretsmanager:SECRET-NAME[:json-key]"'
        )
        if credential := _aws_credential(name, value, environment):
            yield (
                key,
                f"{_masked(value)} refused: {credential}. The worker gets AWS credentials from "
                "its task role; grant the task role what the handler needs (or, for another "
                f"account's keys, {instead})",
            )
        elif name in exempt:
            continue
        elif words := secret_words(name):
            yield (
                key,
                f"{_masked(value)} refused: the name says it is a secret ({', '.join(words)}); "
                f"{instead}. Not a secret? List {name!r} in worker.environment_not_secret",
            )
        elif URL_PASSWORD.search(value):
            yield (
                key,
                f"{_masked(value)} refused: a URL with a password (scheme://user:password@); "
                f"{instead}. Not a secret? List {name!r} in worker.environment_not_secret",
            )


def _secrets_keys_need_secrets(v: Values) -> Iterator[Problem]:
    if v("secrets_kms_key_arns") and not v("secrets"):
        yield (
            "secrets_kms_key_arns",
            "set, but worker.secrets is empty: there is nothing to decrypt; remove it",
        )


class WorkerConfig(Model):
    """One Fargate task: its shape and the supervisord fleet of worker processes it runs.

    ``environment`` holds plain variables: synth refuses secret-looking names (whole words such
    as PASSWORD, SECRET, TOKEN, API_KEY: ``SECRET_WORDS``), URLs with a password and AWS
    credentials, and says to use ``secrets`` instead; ``environment_not_secret`` (default
    empty) lists names that only look secret (never AWS credentials). ``secrets_kms_key_arns``
    (default empty: AWS managed keys) are the customer-managed keys that encrypt ``secrets``:
    the execution role may ``kms:Decrypt`` with them, through SSM or Secrets Manager only.
    """

    processes: int = Field(2, ge=1)
    cpu: Annotated[int, _one_of(tuple(VALID_MEMORY_MIB), "a Fargate CPU")] = 256
    memory_mib: int = 512
    architecture: Architecture = "x86_64"
    spot: bool = False
    capacity: CapacityConfig = CapacityConfig()
    image: ImageConfig | None = None
    handler_mode: HandlerMode = "callable"
    handler: str = "worker.examples:sleep_job"
    job_timeout_seconds: int = 900
    max_jobs_per_process: int = Field(200, ge=0)
    max_memory_mib_per_process: int = Field(200, ge=0)
    prefetch_seconds: int = Field(5, ge=0, le=3600)
    stop_timeout_seconds: int = Field(120, ge=30, le=MAX_STOP_TIMEOUT_SECONDS)
    log_retention_days: Annotated[int, _one_of(LOG_RETENTION_DAYS, "a CloudWatch retention")] = 30
    encrypt_logs: bool = True
    ecs_exec: bool = False
    environment: Mapping[EnvName, str] = Field(default_factory=dict)
    secrets: Mapping[EnvName, SecretRef] = Field(default_factory=dict)
    environment_not_secret: Strings = ()
    secrets_kms_key_arns: Annotated[tuple[KmsKeyArn, ...], Strict(False)] = ()

    rules = (
        _fargate_pair,
        _memory_holds_processes,
        _spot_replaced,
        _handler_form,
        _no_secrets_in_environment,
        _secrets_keys_need_secrets,
    )

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
        yield "retry_backoff_base_seconds", f"{base} must not exceed retry_backoff_max_seconds"


SqsArn = Annotated[
    str,
    _matches(
        r"arn:aws[\w-]*:sqs:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?",
        "an SQS queue ARN such as 'arn:aws:sqs:REGION:ACCOUNT:NAME'",
    ),
]
TopicArn = Annotated[
    str,
    _matches(
        r"arn:aws[\w-]*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?",
        "an SNS topic ARN such as 'arn:aws:sns:REGION:ACCOUNT:NAME'",
    ),
]


class Subscription(Model):
    """An existing SNS topic the queue subscribes to. ``raw_message_delivery`` (default true):
    the queue gets the published body as is, not SNS's JSON envelope, so the job runs on what
    the producer published. ``filter_policy`` (default none: every message) and
    ``filter_policy_scope`` (default ``MessageAttributes``) are SNS's own."""

    topic_arn: TopicArn
    raw_message_delivery: bool = True
    filter_policy: Mapping[str, Any] | None = None
    filter_policy_scope: Literal["MessageAttributes", "MessageBody"] = "MessageAttributes"


def _existing_needs_its_dlq(v: Values) -> Iterator[Problem]:
    arn, dlq, kit_dlq = v("arn"), v("dead_letter_queue_arn"), v("kit_dead_letter_queue")
    if arn and not dlq and not kit_dlq:
        yield (
            "dead_letter_queue_arn",
            "required with arn: the DLQ the existing queue's redrive policy names (the kit "
            "leaves that policy as it is; its DLQ alarm and dlq, redrive and retry read it), "
            "unless kit_dead_letter_queue is true",
        )
    if arn and dlq and kit_dlq:
        yield "kit_dead_letter_queue", "true with dead_letter_queue_arn; allowed: one of them"
    if not arn:
        for key in ("dead_letter_queue_arn", "kms_key_arn", "kit_dead_letter_queue"):
            if v(key):
                yield key, f"{v(key)!r} is only read with arn (an existing queue); allowed: unset"
    if arn and v("subscriptions"):
        yield (
            "subscriptions",
            "a subscription needs a kit queue, whose policy the kit writes to let the topic send; "
            "allowed: none with arn (subscribe the existing queue where it is managed)",
        )
    if arn and v("idempotency_table"):
        yield "idempotency_table", "true is allowed only on a kit queue"


def _fifo_keys_need_fifo(v: Values) -> Iterator[Problem]:
    for key in ("content_based_deduplication", "high_throughput"):
        if v(key) and not v("fifo"):
            yield key, "true is only read with fifo true; allowed: false"


def _fifo_pairs(v: Values) -> Iterator[Problem]:
    """An existing queue, its DLQ and a subscribed topic are FIFO exactly when the queue is
    (SQS moves a FIFO queue's messages only to a FIFO DLQ; SNS FIFO topics deliver only to FIFO
    queues, standard topics only to standard ones)."""
    fifo = v("fifo")
    kind, queue_kind = ("a FIFO", "FIFO") if fifo else ("a standard", "standard")
    named = {"arn": v("arn"), "dead_letter_queue_arn": v("dead_letter_queue_arn")} | {
        f"subscriptions.{i}.topic_arn": s.topic_arn for i, s in enumerate(v("subscriptions"))
    }
    for key, arn in named.items():
        if arn is not None and arn.endswith(".fifo") != fifo:
            what = "FIFO" if arn.endswith(".fifo") else "standard"
            yield (
                key,
                f"{arn!r} is {what} (by its name's '.fifo'), the queue {queue_kind} (fifo "
                f"{str(fifo).lower()}); allowed: {kind} one",
            )


class QueueConfig(Model):
    """The work queue, its dead-letter queue and the worker's retry timing.

    ``arn`` (default unset: the kit creates the queue) consumes an existing queue instead, with
    ``dead_letter_queue_arn``, the DLQ its own redrive policy names, which the kit leaves as it
    is, or ``kit_dead_letter_queue`` (default false): the kit creates a DLQ that admits it, and
    the team points the queue's redrive policy at it. ``kms_key_arn`` (default unset) is the
    customer-managed key that encrypts the existing queues, if one does. Of the other keys, an
    existing queue must match ``max_receive_count`` and ``visibility_timeout_seconds`` (the
    worker reads them; synth cannot look); ``retention_days`` is its own. ``subscriptions``
    (default none): existing SNS topics a kit queue subscribes to. None of these is inherited
    by ``queues``. ``fifo`` (default false): a FIFO queue and DLQ (names end in ``.fifo``);
    ``content_based_deduplication`` (default false: producers send a deduplication id) and
    ``high_throughput`` (default false: deduplication and the throughput limit per message
    group) are SQS's FIFO settings."""

    max_receive_count: int = Field(5, ge=1, le=1000)
    retention_days: int = Field(4, ge=1, le=14)
    visibility_timeout_seconds: int = Field(120, ge=30, le=3600)
    retry_backoff_base_seconds: int = Field(10, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    retry_backoff_max_seconds: int = Field(600, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    idempotency_table: bool = False
    arn: SqsArn | None = None
    dead_letter_queue_arn: SqsArn | None = None
    kms_key_arn: KmsKeyArn | None = None
    kit_dead_letter_queue: bool = False
    subscriptions: Annotated[tuple[Subscription, ...], Strict(False)] = ()
    fifo: bool = False
    content_based_deduplication: bool = False
    high_throughput: bool = False

    rules = (_backoff_order, _existing_needs_its_dlq, _fifo_keys_need_fifo, _fifo_pairs)

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
    max_tasks: int = Field(10, ge=1)
    max_total_processes: int = Field(100, ge=1)
    target_backlog_per_process: int = Field(10, ge=1)
    scale_out_cooldown_seconds: int = Field(120, ge=0, le=3600)
    scale_in_cooldown_seconds: int = Field(60, ge=0, le=3600)
    scale_in_after_minutes: int = Field(3, ge=1, le=60)
    mean_job_seconds: int = Field(165, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    deadline_headroom_percent: int = Field(50, ge=0, le=90)

    rules = (_min_below_max,)


def _window_shape(v: Values) -> Iterator[Problem]:
    start, end, hold = v("start"), v("end"), v("hold_minutes")
    length = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if length <= 0:
        midnight = "windows do not cross midnight; split such a window in two"
        yield "end", f"'{end:%H:%M}' must be after start '{start:%H:%M}' ({midnight})"
    elif not 1 <= hold <= length:
        yield "hold_minutes", f"{hold} must be between 1 and the window's length ({length} minutes)"
    margin = v("deadline_margin_minutes")
    if length > 0 and not 0 <= margin < length:
        yield (
            "deadline_margin_minutes",
            (f"{margin} must be at least 0 and less than the window's length ({length} minutes)"),
        )


class BatchWindow(Model):
    """A daily window that raises the task floor at ``start`` for ``hold_minutes``. The deadline
    is ``end`` minus ``deadline_margin_minutes``: inside the window the fleet is sized to finish
    the work left by then, and the deadline alarm fires when it cannot."""

    start: Clock
    end: Clock
    timezone: TimeZone
    min_tasks: int = Field(ge=1)
    hold_minutes: int = 30
    deadline_margin_minutes: int = 30

    rules = (_window_shape,)

    @property
    def length_minutes(self) -> int:
        return (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)

    @property
    def deadline(self) -> time:
        """``end`` minus the margin, as a time of day."""
        minutes = self.end.hour * 60 + self.end.minute - self.deadline_margin_minutes
        return time(minutes // 60, minutes % 60)


class AlarmsConfig(Model):
    """Where alarms go (one encrypted SNS topic) and when they fire (see docs/operations.md)."""

    email: Email | None = None
    dlq_messages_threshold: int = Field(1, ge=1)
    worker_error_rate_percent: int = Field(20, ge=1, le=100)
    oldest_message_age_minutes: int | None = Field(None, ge=1, le=20160)
    tasks_missing_minutes: int = Field(10, ge=1, le=60)


class MonitoringConfig(Model):
    """What the environment pays to be watched (docs/operations.md, "Monitoring levels").

    ``level`` (default ``essential``): ``essential`` keeps every alarm an operator must act on
    (DLQ depth, oldest message age, job error rate, the deadline and backlog alarms, and the
    EventBridge rules for deployments rolled back and tasks that cannot start); ``full`` adds
    the memory alarm and, with Container Insights, the running-below-desired alarm.
    ``dashboard`` (default false): the CloudWatch dashboard, 3 USD a month. ``container_insights``
    (default false): Container Insights on the cluster (about 3-5 USD a month,
    scripts/capacity/bill.py); it is on anyway when Spot has its on-demand fallback, which reads
    its task counts, and Control Tower's CT.ECS.PR.2 asks for it."""

    level: MonitoringLevel = "essential"
    dashboard: bool = False
    container_insights: bool = False


BRANCH_REPLACED = (
    "is no longer read: the deploy role trusts only its GitHub environment's subject, and the "
    "environment's deployment branch rule names the branch (docs/ci-cd.md); set the rule to "
    "this branch and remove branch"
)


def _branch_replaced(v: Values) -> Iterator[Problem]:
    if v("branch") is not None:
        yield "branch", f"{v('branch')!r} {BRANCH_REPLACED}"


def _ids_with_ids_subject(v: Values) -> Iterator[Problem]:
    ids = {"owner_id": v("owner_id"), "repository_id": v("repository_id")}
    for key, value in ids.items():
        if v("subject") == "ids" and value is None:
            yield (
                key,
                "required with subject 'ids': the number GitHub puts in the token (docs/ci-cd.md)",
            )
        if v("subject") == "repo" and value is not None:
            yield key, f"{value!r} is only read with subject 'ids'; allowed: unset"


class CiConfig(Model):
    """The GitHub Actions deploy role (OIDC) of this environment."""

    github_repository: GitHubRepository
    branch: GitBranch | None = None
    oidc_provider_arn: OidcProviderArn | None = None
    subject: Literal["repo", "ids"] = "repo"
    owner_id: int | None = Field(None, ge=1)
    repository_id: int | None = Field(None, ge=1)

    rules = (_branch_replaced, _ids_with_ids_subject)

    def subject_of(self, context: str) -> str:
        """The token's ``sub`` for ``context`` (``environment:prod``, ``pull_request``)."""
        if self.subject == "ids":
            return (
                f"repository_owner_id:{self.owner_id}:repository_id:{self.repository_id}:{context}"
            )
        return f"repo:{self.github_repository}:{context}"


# CDK: a qualifier is at most 10 lowercase letters and digits (cdk bootstrap --qualifier).
Qualifier = Annotated[str, _matches(r"[a-z0-9]{1,10}", "1 to 10 lowercase letters and digits")]
DEFAULT_QUALIFIER = "hnb659fds"  # the CDK's own (DefaultStackSynthesizer.DEFAULT_QUALIFIER)


class BootstrapConfig(Model):
    """Which CDK bootstrap (`cdk bootstrap --qualifier`) deploys this environment."""

    qualifier: Qualifier = DEFAULT_QUALIFIER

    @property
    def toolkit_stack_name(self) -> str:
        """One bootstrap stack a qualifier: the CDK's own name for its default qualifier."""
        return (
            "CDKToolkit" if self.qualifier == DEFAULT_QUALIFIER else f"CDKToolkit-{self.qualifier}"
        )


def _one_window_form(v: Values) -> Iterator[Problem]:
    if v("batch_window") is not None and v("windows"):
        yield "batch_windows", "set batch_window (one) or batch_windows (a list), not both"
    if len(v("windows")) > MAX_BATCH_WINDOWS:
        yield (
            "batch_windows",
            (
                f"{len(v('windows'))} windows; at most {MAX_BATCH_WINDOWS} (each adds an "
                "expression to the fleet-size alarm, which CloudWatch limits to 10)"
            ),
        )


def _connection_cap(v: Values) -> Iterator[Problem]:
    processes, max_tasks = v("worker.processes"), v("scaling.max_tasks")
    cap, capacity = v("scaling.max_total_processes"), v("worker.capacity")
    fallback = capacity.fallback_max_tasks(max_tasks)
    peak = max_tasks + fallback
    if peak * processes > cap:
        tasks, advice = f"{max_tasks} tasks", ""
        if fallback:
            tasks = (
                f"({max_tasks} tasks + {fallback} on-demand fallback tasks, which finish their "
                "jobs while Spot capacity returns)"
            )
            advice = (
                " in all: lower max_tasks, raise worker.capacity.on_demand_base, or set "
                "worker.capacity.fallback_after_minutes null"
            )
        problem = (
            f"{tasks} x {processes} processes = {peak * processes} exceeds max_total_processes "
            f"{cap} (the database connection cap); at most {cap // processes} tasks{advice}"
        )
        yield "scaling.max_tasks", problem


def _on_demand_base(v: Values) -> Iterator[Problem]:
    base, max_tasks = v("worker.capacity.on_demand_base"), v("scaling.max_tasks")
    processes, cap = v("worker.processes"), v("scaling.max_total_processes")
    key = "worker.capacity.on_demand_base"
    if base > max_tasks:
        yield key, f"{base} exceeds scaling.max_tasks {max_tasks}; allowed: 0 to {max_tasks}"
    elif base * processes > cap:
        yield (
            key,
            (
                f"{base} tasks x {processes} processes = {base * processes} exceeds "
                f"scaling.max_total_processes {cap}; allowed: 0 to {cap // processes}"
            ),
        )


def _job_timeout(v: Values) -> Iterator[Problem]:
    """Every worker's jobs fit the visibility limit of every queue it consumes."""
    if workers := v("workers"):
        queues = v("queues") or {DEFAULT_NAME: v("queue")}
        keyed = {
            f"workers.{name}.worker": (
                entry.worker.job_timeout_seconds,
                [queues[q].visibility_timeout_seconds for q in entry.queues if q in queues],
            )
            for name, entry in workers.items()
        }
    else:
        visibility = [q.visibility_timeout_seconds for q in v("queues").values()]
        visibility = visibility or [v("queue.visibility_timeout_seconds")]
        keyed = {"worker": (v("worker.job_timeout_seconds"), visibility)}
    for key, (timeout, visibilities) in keyed.items():
        longest = SQS_MAX_VISIBILITY_SECONDS - max(visibilities, default=0)
        if not 1 <= timeout <= longest:
            problem = (
                f"{timeout} must be between 1 and {longest}: SQS keeps a message invisible for "
                "at most 12 h after it is received, heartbeat or not (minus one visibility "
                "timeout)"
            )
            yield f"{key}.job_timeout_seconds", problem


def _of_the_default_worker(
    rule: Callable[[Values], Iterator[Problem]],
) -> Callable[[Values], Iterator[Problem]]:
    """``rule`` on the environment's ``worker`` and ``scaling`` when they are its one worker;
    with ``workers`` they are defaults, and each worker's entry runs the rule on its own."""

    def checked(v: Values) -> Iterator[Problem]:
        if not v("workers"):
            yield from rule(v)

    return checked


def _window_floors(v: Values) -> Iterator[Problem]:
    max_tasks, single, many = v("scaling.max_tasks"), v("batch_window"), v("windows")
    keyed = (
        {"batch_window": single}
        if single
        else {f"batch_windows.{i}": w for i, w in enumerate(many)}
    )
    for key, window in keyed.items():
        if window.min_tasks > max_tasks:
            yield f"{key}.min_tasks", f"{window.min_tasks} exceeds scaling.max_tasks {max_tasks}"


def _secrets_keys_in_region(v: Values) -> Iterator[Problem]:
    region = v("region")
    for index, arn in enumerate(v("worker.secrets_kms_key_arns")):
        if arn.split(":")[3] != region:
            yield (
                f"worker.secrets_kms_key_arns.{index}",
                f"{arn!r} is in region {arn.split(':')[3]!r}; allowed: a key of region {region!r}, "
                "where the secrets it encrypts are",
            )


def _provider_in_account(v: Values) -> Iterator[Problem]:
    ci, account = v("ci"), v("account")
    provider = ci.oidc_provider_arn if ci else None
    if provider and account and provider.split(":")[4] != account:
        yield (
            "ci.oidc_provider_arn",
            (
                f"{provider!r} is in another account than account {account!r}; a role trusts the "
                "provider of its own account"
            ),
        )


def _some_queue(v: Values) -> Iterator[Problem]:
    queues = v("queues")
    if not queues:
        yield "queues", "[] names no queue; allowed: one or more of the environment's queues"
    for name in {n for n in queues if queues.count(n) > 1}:
        yield "queues", f"{name!r} is named {queues.count(name)} times; allowed: each queue once"


class WorkerEntry(Model):
    """A worker of ``workers``: a fleet of its own that consumes ``queues`` in priority order
    (every visible message of the first before any of the second, as Laravel's
    ``queue:work --queue=high,default``). Its ``worker`` and ``scaling`` keys override the
    environment's ``worker`` and ``scaling``, which every worker inherits; its batch windows
    (``batch_window`` or ``batch_windows``, default none) are its own."""

    queues: Annotated[tuple[Name, ...], Strict(False)]
    worker: WorkerConfig = WorkerConfig()
    scaling: ScalingConfig = ScalingConfig()
    batch_window: BatchWindow | None = None
    windows: Annotated[tuple[BatchWindow, ...], Strict(False)] = Field((), alias="batch_windows")

    rules = (_some_queue, _one_window_form, _on_demand_base, _window_floors)

    @property
    def batch_windows(self) -> tuple[BatchWindow, ...]:
        """Every batch window: the single ``batch_window`` or the ``batch_windows`` list."""
        return (self.batch_window,) if self.batch_window else self.windows


def _queue_names(v: Values) -> tuple[str, ...]:
    return tuple(v("queues")) or (DEFAULT_NAME,)


def _consumed_queues(v: Values) -> Iterator[Problem]:
    workers, names = v("workers"), _queue_names(v)
    consumer: dict[str, str] = {}
    for worker, entry in workers.items():
        for index, queue in enumerate(entry.queues):
            key = f"workers.{worker}.queues.{index}"
            if queue not in names:
                yield key, f"{queue!r} is not a queue of the environment; allowed: {list(names)}"
            elif consumer.setdefault(queue, worker) != worker:
                yield (
                    key,
                    f"{queue!r} is already consumed by worker {consumer[queue]!r}; allowed: one "
                    "worker a queue (two fleets on one queue cannot keep its priority or scaling)",
                )
    for queue in names:
        if workers and queue not in consumer:
            where = "queues" if v("queues") else "workers"
            yield (
                where,
                f"{queue!r} is consumed by no worker; allowed: name it in a worker's queues",
            )


def _distinct_names(v: Values) -> Iterator[Problem]:
    """Resource ids drop '-' and '_' (CloudFormation's logical ids are alphanumeric)."""
    for section in ("queues", "workers"):
        seen: dict[str, str] = {}
        for name in v(section):
            other = seen.setdefault(re.sub(r"[-_]", "", name), name)
            if other != name:
                yield (
                    f"{section}.{name}",
                    f"{name!r} differs from {other!r} only in '-' and '_', which resource ids "
                    "drop; allowed: names that differ in a letter or digit",
                )


# A queue's own identity: never inherited by ``queues`` from ``queue``.
QUEUE_IDENTITY_KEYS = (
    "arn",
    "dead_letter_queue_arn",
    "kms_key_arn",
    "kit_dead_letter_queue",
    "subscriptions",
)


def partition_of(region: str) -> str:
    """The AWS partition of ``region`` (``aws-cn`` for cn-*, ``aws-us-gov`` for us-gov-*)."""
    prefixes = {"cn-": "aws-cn", "us-gov-": "aws-us-gov"}
    return next((p for prefix, p in prefixes.items() if region.startswith(prefix)), "aws")


def _arns_of_the_environment(v: Values) -> Iterator[Problem]:
    """Existing queues, their keys and subscribed topics are in the environment's region and
    partition (the kit's alarms and metrics are regional; a topic elsewhere cannot be read)."""
    region, queues = v("region"), v("queues")
    partition = partition_of(region)
    keyed = {f"queues.{n}": q for n, q in queues.items()} or {"queue": v("queue")}
    if queues and any(v(f"queue.{key}") for key in QUEUE_IDENTITY_KEYS):
        key = next(k for k in QUEUE_IDENTITY_KEYS if v(f"queue.{k}"))
        yield (
            f"queue.{key}",
            "names one queue's own resource, which queues do not inherit; allowed: unset here, "
            "set on queues.NAME",
        )
    arns: dict[str, str] = {}
    for at, queue in keyed.items():
        given = {
            "arn": queue.arn,
            "dead_letter_queue_arn": queue.dead_letter_queue_arn,
            "kms_key_arn": queue.kms_key_arn,
        } | {f"subscriptions.{i}.topic_arn": s.topic_arn for i, s in enumerate(queue.subscriptions)}
        for key, arn in given.items():
            if arn is None:
                continue
            arn_partition, arn_region = arn.split(":")[1], arn.split(":")[3]
            if (arn_partition, arn_region) != (partition, region):
                yield (
                    f"{at}.{key}",
                    f"{arn!r} is in partition {arn_partition!r}, region {arn_region!r}; allowed: "
                    f"the environment's partition {partition!r} and region {region!r}",
                )
        for key in ("arn", "dead_letter_queue_arn"):
            arn = given[key]
            if arn is not None and arns.setdefault(arn, f"{at}.{key}") != f"{at}.{key}":
                yield f"{at}.{key}", f"{arn!r} is also {arns[arn]}; allowed: a queue of its own"


def _windows_belong_to_workers(v: Values) -> Iterator[Problem]:
    if v("workers") and (v("batch_window") is not None or v("windows")):
        key = "batch_window" if v("batch_window") is not None else "batch_windows"
        yield (
            key,
            "with workers, a batch window belongs to the worker whose queues it drains; allowed: "
            f"workers.NAME.{key}",
        )


def _total_connections(v: Values) -> Iterator[Problem]:
    workers, cap = v("workers"), v("scaling.max_total_processes")
    for name, entry in workers.items():
        if entry.scaling.max_total_processes != cap:
            yield (
                f"workers.{name}.scaling.max_total_processes",
                f"{entry.scaling.max_total_processes} differs from scaling.max_total_processes "
                f"{cap}: the database connection cap counts every worker of the environment; "
                "allowed: unset here (set the environment's)",
            )
    peaks = {
        name: (
            entry.scaling.max_tasks
            + entry.worker.capacity.fallback_max_tasks(entry.scaling.max_tasks),
            entry.worker.processes,
        )
        for name, entry in workers.items()
    }
    total = sum(tasks * processes for tasks, processes in peaks.values())
    if total > cap:
        terms = " + ".join(f"{n} {t} tasks x {p} processes" for n, (t, p) in peaks.items())
        yield (
            "workers",
            f"{terms} = {total} exceeds scaling.max_total_processes {cap} (the database "
            "connection cap counts every worker, with its on-demand fallback tasks); lower a "
            "worker's scaling.max_tasks or worker.processes",
        )


class EnvironmentBlock(Model):
    """One environment's block in cdk.json (``context.environments.NAME``).

    Without ``queues`` and ``workers`` the environment has one queue and one worker, both
    named ``default`` and set by ``queue``, ``worker``, ``scaling`` and the batch windows.
    ``queues`` (default none) names several queues; each inherits ``queue``'s keys and
    overrides some. ``workers`` (default none: one worker consumes every queue, in the order
    ``queues`` lists them) names several fleets (WorkerEntry).
    """

    region: Region
    account: Account | None = None
    retain_data: bool = False
    network: NetworkConfig = NetworkConfig()
    worker: WorkerConfig = WorkerConfig()
    queue: QueueConfig = QueueConfig()
    scaling: ScalingConfig = ScalingConfig()
    batch_window: BatchWindow | None = None
    windows: Annotated[tuple[BatchWindow, ...], Strict(False)] = Field((), alias="batch_windows")
    alarms: AlarmsConfig = AlarmsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    ci: CiConfig | None = None
    bootstrap: BootstrapConfig = BootstrapConfig()
    queues: Mapping[Name, QueueConfig] = Field(default_factory=dict)
    workers: Mapping[Name, WorkerEntry] = Field(default_factory=dict)

    rules = (
        _one_window_form,
        _of_the_default_worker(_connection_cap),
        _of_the_default_worker(_on_demand_base),
        _job_timeout,
        _window_floors,
        _provider_in_account,
        _secrets_keys_in_region,
        _consumed_queues,
        _distinct_names,
        _arns_of_the_environment,
        _windows_belong_to_workers,
        _total_connections,
    )

    @property
    def batch_windows(self) -> tuple[BatchWindow, ...]:
        """Every batch window: the single ``batch_window`` or the ``batch_windows`` list."""
        return (self.batch_window,) if self.batch_window else self.windows

    @property
    def container_insights(self) -> bool:
        """Container Insights is on: chosen (``monitoring.container_insights``) or needed by
        a Spot fallback, which reads its worker service's task counts from it."""
        return self.monitoring.container_insights or any(
            fleet.worker.capacity.fallback for fleet in self.fleets.values()
        )

    @property
    def work_queues(self) -> Mapping[str, QueueConfig]:
        """Every queue by name, in the order cdk.json lists them: ``queues``, or ``queue``
        alone as ``default``."""
        return self.queues or {DEFAULT_NAME: self.queue}

    @property
    def fleets(self) -> Mapping[str, WorkerEntry]:
        """Every worker by name: ``workers``, or one ``default`` worker of ``worker``,
        ``scaling`` and the batch windows that consumes every queue in their order."""
        if self.workers:
            return self.workers
        default = WorkerEntry.model_construct(
            queues=tuple(self.work_queues),
            worker=self.worker,
            scaling=self.scaling,
            batch_window=self.batch_window,
            windows=self.windows,
        )
        return {DEFAULT_NAME: default}


class EnvironmentConfig(EnvironmentBlock):
    """Everything one environment's stacks need, validated."""

    name: str

    @property
    def stack_prefix(self) -> str:
        return f"QueueWorker-{self.name}"

    def of_fleet(self, name: str) -> EnvironmentConfig:
        """The environment as its worker ``name`` sees it: that worker's ``worker``,
        ``scaling`` and batch windows, and the first queue it consumes as ``queue``; every
        environment-wide key (alarms, monitoring, network, ``queues``, ``workers``) as is. For
        an environment without ``workers``, ``of_fleet("default")`` equals the environment."""
        fleet = self.fleets[name]
        return self.model_copy(
            update={
                "worker": fleet.worker,
                "scaling": fleet.scaling,
                "batch_window": fleet.batch_window,
                "windows": fleet.windows,
                "queue": self.work_queues[fleet.queues[0]],
            }
        )


def load_config(
    environments: Mapping[str, Any] | None,
    env_name: str | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    project_dir: Path | None = None,
) -> EnvironmentConfig:
    """Parse and validate one environment; raise ConfigError listing every problem.

    ``overrides`` maps keys (``worker.processes``, ``retain_data``) to values, as given with
    ``-c KEY=VALUE``; strings are converted to the key's type. With ``project_dir`` (where
    cdk.json is), ``worker.image.directory`` and its Dockerfile must exist.
    """
    known = sorted(environments or {})
    if not env_name:
        raise ConfigError([f"env: none chosen; pass -c env=NAME with NAME one of {known}"])
    if not environments or env_name not in environments:
        raise ConfigError([f"env: unknown environment {env_name!r}; known: {known}"])
    prefix, raw = f"environments.{env_name}", environments[env_name]
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{prefix}: expected an object, got {raw!r}"])
    problems: list[str] = []
    raw = _with_overrides(raw, overrides or {}, prefix, problems)
    raw, inherited = _with_inheritance(raw)
    try:
        block = EnvironmentBlock.model_validate(raw, context={"project_dir": project_dir})
    except ValidationError as error:
        problems += _located(error, inherited, prefix)
    if problems:
        raise ConfigError(problems)
    problems += _shared_bootstrap(environments, env_name, block)
    problems += _shared_names(environments, env_name, block)
    if problems:
        raise ConfigError(problems)
    config = EnvironmentConfig.model_construct(name=env_name, **dict(block))
    return _with_absolute_image_directory(config, project_dir)


Location = tuple[str | int, ...]


def _with_inheritance(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[Location, Location]]:
    """Each of ``queues`` with ``queue``'s keys it does not set, each of ``workers`` with the
    ``worker`` and ``scaling`` keys it does not set (objects merged key by key, as
    ``worker.environment``); and where each inherited key came from."""
    inherited: dict[Location, Location] = {}

    def merged(base: Any, own: Any, at: Location, source: Location) -> Any:
        if not isinstance(own, dict) or not isinstance(base, dict):
            return own
        for key in base.keys() - own.keys():
            inherited[(*at, key)] = (*source, key)
        keys = [*base, *(k for k in own if k not in base)]
        return {
            k: merged(base.get(k), own[k], (*at, k), (*source, k)) if k in own else base[k]
            for k in keys
        }

    raw = dict(raw)
    if isinstance(raw.get("queues"), dict):
        base = raw.get("queue", {})
        if isinstance(base, dict):
            base = {k: v for k, v in base.items() if k not in QUEUE_IDENTITY_KEYS}
        raw["queues"] = {
            name: merged(base, own, ("queues", name), ("queue",))
            for name, own in raw["queues"].items()
        }
    if isinstance(raw.get("workers"), dict):
        workers = {}
        for name, own in raw["workers"].items():
            if isinstance(own, dict):
                own = dict(own)
                for section in ("worker", "scaling"):
                    at = ("workers", name, section)
                    own[section] = merged(raw.get(section, {}), own.get(section, {}), at, at[2:])
            workers[name] = own
        raw["workers"] = workers
    return raw, inherited


def _located(
    error: ValidationError, inherited: Mapping[Location, Location], prefix: str
) -> list[str]:
    """Each problem at its key; one at a key a worker or queue inherited is said once, at the
    key it came from, or (when only the inheritor has it) with that key named."""
    found = [(tuple(p for p in e["loc"] if p != "[key]"), e["msg"]) for e in error.errors()]
    problems = []
    for loc, message in found:
        head = next((loc[:n] for n in range(len(loc), 0, -1) if loc[:n] in inherited), None)
        if head is not None:
            source = (*inherited[head], *loc[len(head) :])
            if (source, message) in found:
                continue
            message += f" (inherited from {_path(source)[1:]})"
        problems.append(f"{prefix}{_path(loc)}: {message}")
    return problems


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as read, every key kept (json.loads' ``object_pairs_hook``)."""


def duplicated_keys(cdk_json: str) -> list[str]:
    """Every key written twice in one object of cdk.json's text: JSON keeps only the last, so a
    second worker or queue of one name would silently replace the first."""
    problems: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for key, value in node:
                if key in seen:
                    problems.append(
                        f"cdk.json {path or '(top)'}: {key!r} is written twice (JSON keeps only "
                        "the last); allowed: each key once"
                    )
                seen.add(key)
                walk(value, f"{path}.{key}".lstrip("."))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")

    walk(json.loads(cdk_json, object_pairs_hook=_Pairs), "")
    return problems


def _shared_bootstrap(
    environments: Mapping[str, Any], env_name: str, block: EnvironmentBlock
) -> list[str]:
    """With ``ci``, no other environment that may share this one's account and region (the same
    account, or either unset) may use its bootstrap qualifier: they would share the bootstrap
    roles, and either pipeline could deploy the other's stacks (docs/ci-cd.md)."""
    problems = []
    for other, raw in environments.items():
        if other == env_name or not isinstance(raw, Mapping):
            continue
        bootstrap = raw.get("bootstrap")
        qualifier = bootstrap.get("qualifier") if isinstance(bootstrap, Mapping) else None
        account = raw.get("account")
        same_account = account is None or block.account is None or account == block.account
        if (
            (block.ci is not None or raw.get("ci") is not None)
            and raw.get("region") == block.region
            and same_account
            and (qualifier or DEFAULT_QUALIFIER) == block.bootstrap.qualifier
        ):
            problems.append(
                f"environments.{env_name}.bootstrap.qualifier: {block.bootstrap.qualifier!r} is "
                f"also the qualifier of {other!r}, which may share account and region "
                f"{block.region!r}; with ci, allowed: a qualifier of its own, e.g. "
                f"{re.sub(r'[^a-z0-9]', '', 'qw' + env_name.lower())[:10]!r}"
            )
    return problems


def _scoped_names(raw: Mapping[str, Any]) -> set[str]:
    """The names an environment's block gives its queues and workers (``queues``, ``workers``
    keys), which name their resources ``QueueWorker-ENV-NAME-...``."""
    names: set[str] = set()
    for key in ("queues", "workers"):
        section = raw.get(key)
        names.update(section if isinstance(section, Mapping) else ())
    return names - {DEFAULT_NAME}


def _shared_names(
    environments: Mapping[str, Any], env_name: str, block: EnvironmentBlock
) -> list[str]:
    """No queue or worker ``NAME`` of an environment ``ENV`` while cdk.json has an environment
    ``ENV-NAME``: both would name queues, alarms and outputs ``QueueWorker-ENV-NAME-...``."""
    problems = []
    own = {*block.queues, *block.workers} - {DEFAULT_NAME}
    for other, raw in environments.items():
        if other.startswith(f"{env_name}-") and other.removeprefix(f"{env_name}-") in own:
            name = other.removeprefix(f"{env_name}-")
            where = "queues" if name in block.queues else "workers"
            problems.append(
                f"environments.{env_name}.{where}.{name}: its resources would be named like "
                f"those of environment {other!r} (QueueWorker-{other}-...); allowed: a name "
                "that does not make another environment's name"
            )
        name = env_name.removeprefix(f"{other}-")
        if name != env_name and isinstance(raw, Mapping) and name in _scoped_names(raw):
            problems.append(
                f"environments.{env_name}: its resources would be named like those of the "
                f"queue or worker {name!r} of environment {other!r} (QueueWorker-{env_name}-...); "
                "allowed: an environment name that is not another's name and one of its queues "
                "or workers"
            )
    return problems


def _with_absolute_image_directory(
    config: EnvironmentConfig, project_dir: Path | None
) -> EnvironmentConfig:
    """``worker.image.directory`` resolved against ``project_dir`` (the stacks build from it
    wherever the CDK app runs)."""
    image = config.worker.image
    if project_dir is None or image is None or image.directory is None:
        return config
    image = image.model_copy(update={"directory": str((project_dir / image.directory).resolve())})
    worker = config.worker.model_copy(update={"image": image})
    return config.model_copy(update={"worker": worker})


def _path(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "[key]")


def overrides_from_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The ``-c KEY=VALUE`` overrides among the CDK context: every key that is not the CDK's.
    Unknown keys stay, so that load_config rejects a typo instead of ignoring it."""
    cdk_own = {k for k in context if k.startswith("@") or ":" in k or k in CDK_CONTEXT_KEYS}
    return {key: value for key, value in context.items() if key not in cdk_own}


class Key(typing.NamedTuple):
    field: FieldInfo
    optional_section: str | None  # absent unless cdk.json has it: -c cannot create it


def _model_in(annotation: Any) -> type[Model] | None:
    """The model of ``M`` or ``M | None``, else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(filter(None, map(_model_in, typing.get_args(annotation))), None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, Model) else None


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


def _with_overrides(
    raw: Mapping[str, Any], overrides: Mapping[str, Any], prefix: str, problems: list[str]
) -> dict[str, Any]:
    merged: dict[str, Any] = json.loads(json.dumps(raw))  # a deep copy of JSON data
    for key, value in overrides.items():
        keys = config_keys() | _entry_keys(key)
        parent = keys.get(key.rpartition(".")[0])
        if key in keys:
            annotation, section = keys[key].field.annotation, keys[key].optional_section
        elif parent and typing.get_origin(parent.field.annotation) is Mapping:
            annotation, section = str, parent.optional_section  # worker.environment.NAME
        else:
            problems.append(f"-c {key}: {_not_a_key(key, keys)}")
            continue
        node: Any = merged
        for part in section.split(".") if section else ():
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            problems.append(f"-c {key}: {prefix} has no {section} to change; add one in cdk.json")
            continue
        *parents, leaf = key.split(".")
        node = merged
        for part in parents:  # a section that is not an object is reported by validation
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[leaf] = _converted(value, annotation)
    return merged


def _entry_keys(key: str) -> dict[str, Key]:
    """The keys of the queue or worker ``key`` names (``workers.mail.worker.processes``), each
    under its entry, which cdk.json must have: -c changes a queue or worker, never adds one."""
    match = re.fullmatch(r"(queues|workers)\.([^.]+)\..+", key)
    if not match:
        return {}
    section = f"{match[1]}.{match[2]}"
    return config_keys(QueueConfig if match[1] == "queues" else WorkerEntry, f"{section}.", section)


def _not_a_key(key: str, keys: Mapping[str, Key]) -> str:
    below = [k for k in keys if k.startswith(f"{key}.")]
    if below:
        return f"a section; override one of its keys, e.g. {below[0]}"
    near = difflib.get_close_matches(key, keys, n=3)
    near = near or [k for k in keys if k.rpartition(".")[2] == key.rpartition(".")[2]]
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
    """``str``, ``Annotated[str, ...]``, a Literal of strings, or a union with one of them."""
    if typing.get_origin(annotation) is Literal:
        return isinstance(typing.get_args(annotation)[0], str)
    if typing.get_origin(annotation) in (tuple, list, Mapping):  # given as JSON
        return False
    if typing.get_origin(annotation) is Annotated:
        return _takes_text(typing.get_args(annotation)[0])
    return annotation is str or any(_takes_text(a) for a in typing.get_args(annotation))


def readme_rows(readme: str) -> dict[str, tuple[str, str]]:
    """The README's configuration table (``| `key` | type | default | meaning |``), by key:
    (default, meaning). The table is where keys are explained; tests hold it to the models."""
    rows = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]  # not at escaped \|
        if len(cells) == 6 and cells[1].startswith("`"):
            rows[cells[1].strip("`")] = (cells[3], cells[4])
    return rows


def json_schema(readme: str) -> dict[str, Any]:
    """The JSON Schema of an environment block, each key described by its README row."""
    schema = EnvironmentBlock.model_json_schema()
    rows = readme_rows(readme)

    def describe(model: type[BaseModel], node: dict[str, Any], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key = prefix + (field.alias or name)
            if key in rows:
                node["properties"][field.alias or name]["description"] = rows[key][1]
            if inner := _model_in(field.annotation):
                describe(inner, schema["$defs"][inner.__name__], f"{key}.")

    describe(EnvironmentBlock, schema, "")
    return schema


if __name__ == "__main__":
    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m stacks.config --schema > schema/environment.schema.json")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    print(json.dumps(json_schema(readme), indent=2))
