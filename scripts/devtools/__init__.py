"""Development tooling: the worker fleet on this machine against the embedded SQS (local-run),
its throughput (bench) and its memory (measure_memory)."""
