"""`local-stack`'s ready block as the user reads it, and the docs that print it (the runs
themselves, with a real fleet: tests/integration/test_local_stack.py)."""

from __future__ import annotations

from pathlib import Path

from scripts.devtools.local_stack import (
    DEFAULT_PORT,
    DEPLOYED_BY_CLOUDFORMATION,
    LocalStack,
    exports_line,
    ready_lines,
)

ROOT = Path(__file__).resolve().parents[3]


def dev_stack(port: int = DEFAULT_PORT) -> LocalStack:
    """What stand_up makes of dev (names as the synthesized templates give them)."""
    return LocalStack(
        env="dev",
        region="ap-northeast-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        queue_stack="QueueWorker-dev-Queue",
        worker_stack="QueueWorker-dev-Worker",
        queue_outputs={
            "QueueUrl": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/QueueWorker-dev-WorkQueue",
            "DeadLetterQueueUrl": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/QueueWorker-dev-DeadLetterQueue",
        },
        worker_outputs={
            "ClusterName": "QueueWorker-dev-Worker-ClusterEB0386A7",
            "ServiceName": "QueueWorker-dev-Worker-WorkerService3F60922A",
            "LogGroupName": "QueueWorker-dev-Worker-WorkerLogs4B5B6506",
        },
        queue_stack_deployed_by=DEPLOYED_BY_CLOUDFORMATION,
        task_definition="QueueWorkerdevWorkerTaskDefinitionB2B4EF77",
        alarms=("QueueWorker-dev-dlq-messages",),
        log_stream="worker/worker/0123",
    )


def test_the_ready_block_says_what_to_run_in_another_terminal() -> None:
    lines = ready_lines(dev_stack(5123), exports_line(dev_stack(5123)))
    assert lines[0] == "local stack of dev ready at http://127.0.0.1:5123"
    assert (
        "  export AWS_ENDPOINT_URL=http://127.0.0.1:5123 AWS_ACCESS_KEY_ID=testing "
        "AWS_SECRET_ACCESS_KEY=testing AWS_REGION=ap-northeast-1"
    ) in lines
    assert [line for line in lines if line.startswith("  queue-worker ")] == [
        "  queue-worker status --env dev",
        "  queue-worker logs --env dev",
        "  queue-worker dlq --env dev",
        "  queue-worker redrive --env dev",
    ]
    assert lines[-1] == "Ctrl-C here stops the fleet and the server."


def test_the_docs_print_the_lines_the_ready_block_prints_for_dev() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    section = operations.split("## Try the operator commands locally", 1)[1].split("\n## ", 1)[0]
    assert "queue-worker local-stack --env dev\n" in section
    assert "make synth ENV=dev\n" in section
    printed = ready_lines(dev_stack(), exports_line(dev_stack()))
    for line in printed[4:-1]:  # the other terminal's lines
        assert f"\n{line.strip()}\n" in section, line
