"""Build one environment's stacks into an app, with cdk-nag checks."""

from __future__ import annotations

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import EnvironmentConfig
from stacks.queue_stack import QueueStack
from stacks.worker_stack import WorkerStack


def build(app: App, config: EnvironmentConfig) -> tuple[QueueStack, WorkerStack]:
    """Add the queue (stateful) and worker (stateless) stacks of ``config`` to ``app``."""
    env = Environment(account=config.account, region=config.region)
    queue_stack = QueueStack(app, f"{config.stack_prefix}-Queue", config=config, env=env)
    worker_stack = WorkerStack(
        app,
        f"{config.stack_prefix}-Worker",
        config=config,
        queue=queue_stack.queue,
        dead_letter_queue=queue_stack.dead_letter_queue,
        idempotency_table=queue_stack.idempotency_table,
        env=env,
    )
    Tags.of(app).add("app", "queue-worker-kit")
    Tags.of(app).add("environment", config.name)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return queue_stack, worker_stack
