"""The SQS worker runtime: one consumer loop per process, run N times by supervisord.

Modules: settings (environment), loop (the consumer loop), heartbeat (visibility extension),
handlers (callable/command runners), protection (ECS task scale-in protection), logs (JSON
lines), supervise (the container entrypoint around supervisord), examples (a demo handler),
idempotency (an opt-in dedupe guard for handlers).
"""
