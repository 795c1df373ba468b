"""Names and ids of a queue's or a worker's resources, and where a worker's job metrics go."""

from __future__ import annotations

from worker import contract

from stacks.config import DEFAULT_NAME


def scoped_id(base: str, name: str) -> str:
    """The id or name of a queue's or a worker's construct, output or resource: ``base`` for
    the ``default`` one (as before there could be several: ``WorkQueue``, ``Worker``,
    ``QueueUrl``, ``QueueWorker-prod``), ``base-NAME`` for the others."""
    return base if name == DEFAULT_NAME else f"{base}-{name}"


def job_metric_namespace(environment: str, worker: str) -> str:
    """Where the log metric filters of ``worker`` publish its job metrics: the environment's
    ``QueueWorkerKit/<env>`` for the ``default`` worker, ``QueueWorkerKit/<env>/<worker>`` for
    the others, so two workers' logs never add up in one metric."""
    namespace = contract.metric_namespace(environment)
    return namespace if worker == DEFAULT_NAME else f"{namespace}/{worker}"
