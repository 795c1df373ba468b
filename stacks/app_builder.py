"""Build environments' stacks into an app, with cdk-nag checks."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import App, DefaultStackSynthesizer, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import EnvironmentConfig
from stacks.deploy_role_stack import DeployRoleStack
from stacks.queue_stack import QueueStack
from stacks.worker_stack import WorkerStack


def build(app: App, config: EnvironmentConfig) -> tuple[QueueStack, WorkerStack]:
    """Add one environment's stacks to ``app`` and check them with cdk-nag."""
    stacks = add_environment(app, config)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks


def build_all(app: App, configs: Iterable[EnvironmentConfig]) -> None:
    """Add several environments' stacks to ``app`` (``cdk ls`` without ``-c env``), checked."""
    for config in configs:
        add_environment(app, config)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def add_environment(app: App, config: EnvironmentConfig) -> tuple[QueueStack, WorkerStack]:
    """The queue (stateful) and worker (stateless) stacks of ``config``, plus the GitHub
    Actions deploy-role stack ``QueueWorker-ENV-Deploy`` when ``config.ci`` is set."""
    env = Environment(account=config.account, region=config.region)
    qualifier = config.bootstrap.qualifier
    # The environment's own bootstrap (cdk bootstrap --qualifier): its roles, bucket, registry.
    synthesizer = DefaultStackSynthesizer(qualifier=qualifier)
    queue_stack = QueueStack(
        app, f"{config.stack_prefix}-Queue", config=config, env=env, synthesizer=synthesizer
    )
    worker_stack = WorkerStack(
        app,
        f"{config.stack_prefix}-Worker",
        config=config,
        work_queues=queue_stack.work_queues,
        idempotency_table=queue_stack.idempotency_table,
        env=env,
        synthesizer=DefaultStackSynthesizer(qualifier=qualifier),
    )
    stacks: list[Stack] = [queue_stack, worker_stack]
    if config.ci is not None:
        stacks.append(
            DeployRoleStack(
                app,
                f"{config.stack_prefix}-Deploy",
                ci=config.ci,
                environment_name=config.name,
                qualifier=qualifier,
                kit_stacks=[queue_stack, worker_stack],
                env=env,
            )
        )
    for stack in stacks:
        Tags.of(stack).add("app", "queue-worker-kit")
        Tags.of(stack).add("environment", config.name)
    return queue_stack, worker_stack
