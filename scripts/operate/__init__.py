"""Operator commands: an environment's queues, fleet and logs on AWS (status, logs, enqueue, dlq,
redrive, purge)."""
