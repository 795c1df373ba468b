"""The stack tells the worker which variables are secret (docs/contract.md,
WORKER_SECRET_NAMES): what ECS puts in the container from `worker.secrets` is exactly what the
runtime masks (worker.masking; the masking itself: tests/unit/worker/test_worker_masking.py)."""

from __future__ import annotations

from typing import Any

from worker import contract
from worker.masking import secret_values

from tests.infra.conftest import Synthesized, synthesize

SECRETS = {"DB_PASSWORD": "ssm:/app/db", "API_TOKEN": "secretsmanager:app/api:token"}


def container(s: Synthesized) -> dict[str, Any]:
    (task_definition,) = s.worker.find_resources("AWS::ECS::TaskDefinition").values()
    (definition,) = task_definition["Properties"]["ContainerDefinitions"]
    return dict(definition)


def test_the_worker_masks_every_secret_ecs_gives_the_container() -> None:
    definition = container(synthesize("prod", worker={"secrets": SECRETS}))
    # The container's environment as ECS makes it: the plain variables, then each secret's value.
    environment = {e["Name"]: e["Value"] for e in definition["Environment"]}
    from_secrets = {s["Name"]: f"value-of-{s['Name']}" for s in definition["Secrets"]}
    assert sorted(from_secrets) == sorted(SECRETS)
    assert set(secret_values({**environment, **from_secrets})) == set(from_secrets.values())


def test_without_secrets_no_variable_is_named(prod: Synthesized) -> None:
    names = [e["Name"] for e in container(prod)["Environment"]]
    assert contract.SECRET_NAMES_VARIABLE not in names
