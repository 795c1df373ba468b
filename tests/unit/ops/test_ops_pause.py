"""`queue-worker pause` and `continue` against moto: the queue's tag, the scalable target's
suspended state (moto's Application Auto Scaling keeps it) and the service's desired count
(moto's ECS keeps it; it starts no task, so no task is protected or stops here: the tasks'
side is tests/integration/test_pause_fleet.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from worker.contract import PAUSED_TAG

from scripts.__main__ import main
from tests.conftest import REGION

SUSPENDED = dict.fromkeys(
    ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended"), True
)
RESUMED = dict.fromkeys(SUSPENDED, False)


@pytest.fixture
def clients(moto_endpoint: str) -> dict[str, Any]:
    return {
        name: boto3.client(name, region_name=REGION, endpoint_url=moto_endpoint)
        for name in ("sqs", "ecs", "application-autoscaling")
    }


def register_target(clients: dict[str, Any], env: Any, low: int = 1, high: int = 10) -> None:
    """The scalable target the stack's QueueScaling creates for the service."""
    clients["application-autoscaling"].register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{env.cluster}/{env.service}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=low,
        MaxCapacity=high,
    )


def suspended_state(clients: dict[str, Any], env: Any) -> dict[str, bool]:
    [found] = clients["application-autoscaling"].describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{env.cluster}/{env.service}"]
    )["ScalableTargets"]
    return dict(found.get("SuspendedState") or RESUMED)


def desired(clients: dict[str, Any], env: Any) -> int:
    [service] = clients["ecs"].describe_services(cluster=env.cluster, services=[env.service])[
        "services"
    ]
    return int(service["desiredCount"])


def tags(clients: dict[str, Any], env: Any) -> dict[str, str]:
    return dict(clients["sqs"].list_queue_tags(QueueUrl=env.queue_url).get("Tags", {}))


def run_json(capsys: Any, *argv: str) -> Any:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_pause_tags_suspends_and_stops_then_continue_undoes_each(
    aws_args: list[str], deploy_environment: Any, env_name: str, clients: Any, capsys: Any
) -> None:
    env = deploy_environment(env_name)  # its service: desired count 2
    register_target(clients, env)
    clients["sqs"].tag_queue(QueueUrl=env.queue_url, Tags={"team": "billing"})

    paused = run_json(capsys, "pause", *aws_args, "--env", env_name, "--json")
    assert paused["already_paused"] is False
    assert paused["value"].startswith("since=") and paused["value"].endswith(" desired=2")
    assert (paused["scaling"], paused["desired_count"]) == ("suspended", {"before": 2, "after": 0})
    assert tags(clients, env) == {"team": "billing", PAUSED_TAG: paused["value"]}
    assert suspended_state(clients, env) == SUSPENDED
    assert desired(clients, env) == 0

    status = run_json(capsys, "status", *aws_args, "--env", env_name, "--json")
    assert status["paused"] == paused["value"]

    resumed = run_json(capsys, "continue", *aws_args, "--env", env_name, "--json")
    assert resumed == {
        "queue": env.queue_url.rsplit("/", 1)[-1],
        "tag": PAUSED_TAG,
        "was_paused": True,
        "scaling": "resumed",
        "desired_count": {"before": 0, "after": 2},
    }
    assert tags(clients, env) == {"team": "billing"}  # the others' tags stay
    assert suspended_state(clients, env) == RESUMED
    assert desired(clients, env) == 2
    assert run_json(capsys, "status", *aws_args, "--env", env_name, "--json")["paused"] is None


def test_each_command_twice_changes_nothing_the_second_time_and_says_so(
    aws_args: list[str], deploy_environment: Any, env_name: str, clients: Any, capsys: Any
) -> None:
    env = deploy_environment(env_name)
    register_target(clients, env)
    assert main(["pause", *aws_args, "--env", env_name]) == 0
    value = tags(clients, env)[PAUSED_TAG]
    capsys.readouterr()
    assert main(["pause", *aws_args, "--env", env_name]) == 0
    name = env.queue_url.rsplit("/", 1)[-1]
    target = f"service/{env.cluster}/{env.service}"
    assert capsys.readouterr().out.splitlines() == [
        f"{name} was already tagged {PAUSED_TAG}={value}",
        f"scaling of {target} was already suspended",
        f"desired count of {env.service} was already 0",
    ]
    assert tags(clients, env)[PAUSED_TAG] == value  # the count before the first pause kept

    status_screen = main(["status", *aws_args, "--env", env_name])
    assert status_screen == 0
    assert f"  paused  {value} (the workers take no new work" in capsys.readouterr().out

    assert main(["continue", *aws_args, "--env", env_name]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"resumed scaling of {target}: step scaling and the batch windows",
        f"desired count of {env.service} 0 -> 2 (as before the pause)",
        f"removed {PAUSED_TAG} from {name}: each worker process receives again within 30 s",
    ]
    assert main(["continue", *aws_args, "--env", env_name]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"scaling of {target} was not suspended",
        f"desired count of {env.service} left at 2",
        f"{name} has no {PAUSED_TAG} tag: the workers were not paused",
    ]


def test_continue_keeps_the_count_within_the_targets_current_min_and_max(
    aws_args: list[str], deploy_environment: Any, env_name: str, clients: Any, capsys: Any
) -> None:
    env = deploy_environment(env_name)
    register_target(clients, env)
    assert main(["pause", *aws_args, "--env", env_name]) == 0  # recorded desired=2
    register_target(clients, env, low=4, high=10)  # a batch window's min, say
    resumed = run_json(capsys, "continue", *aws_args, "--env", env_name, "--json")
    assert resumed["desired_count"] == {"before": 0, "after": 4}
    assert desired(clients, env) == 4


def test_without_a_scalable_target_pause_still_flags_and_stops(
    aws_args: list[str], deploy_environment: Any, env_name: str, clients: Any, capsys: Any
) -> None:
    env = deploy_environment(env_name)
    paused = run_json(capsys, "pause", *aws_args, "--env", env_name, "--json")
    assert (paused["scaling"], desired(clients, env)) == ("none", 0)
    assert PAUSED_TAG in tags(clients, env)
    resumed = run_json(capsys, "continue", *aws_args, "--env", env_name, "--json")
    assert (resumed["scaling"], desired(clients, env)) == ("none", 2)


def test_queue_option_sets_and_removes_the_flag_only(
    moto_endpoint: str, sqs_client: Any, capsys: Any
) -> None:
    name = f"pause-only-flag-{uuid.uuid4().hex[:8]}"
    url = sqs_client.create_queue(QueueName=name)["QueueUrl"]
    where = ["--queue", name, "--region", REGION, "--endpoint-url", moto_endpoint]
    assert main(["pause", *where]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"tagged {name} {PAUSED_TAG}=since=")
    assert " desired=" not in lines[0]  # no service: no count to record
    assert lines[1] == "--queue: the flag only (--env also suspends scaling and stops the tasks)"
    assert PAUSED_TAG in sqs_client.list_queue_tags(QueueUrl=url).get("Tags", {})
    assert main(["continue", *where]) == 0
    assert PAUSED_TAG not in sqs_client.list_queue_tags(QueueUrl=url).get("Tags", {})


def test_pause_and_continue_work_in_consumer_mode(
    deploy_environment: Any,
    env_name: str,
    moto_endpoint: str,
    clients: Any,
    tmp_path: Path,
    capsys: Any,
) -> None:
    """The consumer's watcher reads the same tag (tests/unit/worker/test_worker_consumer_pause.py,
    tests/integration/test_pause_fleet.py): pause tags, suspends and stops as in the loop modes."""
    env = deploy_environment(env_name)
    register_target(clients, env)
    cdk_json = tmp_path / "consumer-cdk.json"
    worker = {"handler_mode": "consumer", "handler": "php artisan queue:work sqs"}
    environment = {"region": REGION, "worker": worker}
    cdk_json.write_text(json.dumps({"context": {"environments": {env_name: environment}}}))
    argv = ["--env", env_name, "--endpoint-url", moto_endpoint, "--cdk-json", str(cdk_json)]
    paused = run_json(capsys, "pause", *argv, "--json")
    assert (paused["scaling"], paused["desired_count"]) == ("suspended", {"before": 2, "after": 0})
    assert tags(clients, env)[PAUSED_TAG] == paused["value"]
    assert (suspended_state(clients, env), desired(clients, env)) == (SUSPENDED, 0)
    resumed = run_json(capsys, "continue", *argv, "--json")
    assert (resumed["was_paused"], resumed["desired_count"]["after"]) == (True, 2)
    assert PAUSED_TAG not in tags(clients, env)
    assert (suspended_state(clients, env), desired(clients, env)) == (RESUMED, 2)
