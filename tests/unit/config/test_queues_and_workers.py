"""Several queues and workers per environment (``queues``, ``workers``): what they inherit, and
every bad input named with its key, its value and what is allowed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stacks.config import ConfigError, duplicated_keys, load_config

ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"][
    "environments"
]
P = "environments.prod."

MAIL_AND_BATCH = {
    "queues": {"emails": {"max_receive_count": 3}, "default": {}},
    "workers": {
        "mail": {"queues": ["emails"], "worker": {"processes": 2}, "scaling": {"max_tasks": 2}},
        "batch": {"queues": ["default"], "batch_windows": [ENVIRONMENTS["prod"]["batch_window"]]},
    },
}


def prod(**changes: Any) -> dict[str, Any]:
    """cdk.json's environments with prod's top-level keys replaced (None removes one)."""
    envs = copy.deepcopy(ENVIRONMENTS)
    for key, value in changes.items():
        if value is None:
            envs["prod"].pop(key, None)
        else:
            envs["prod"][key] = value
    return envs


def mail_and_batch(**changes: Any) -> dict[str, Any]:
    """prod with a mail worker (2 tasks x 2 processes) and a batch worker (the rest)."""
    return prod(**{"batch_window": None} | copy.deepcopy(MAIL_AND_BATCH) | changes)


def problems(envs: dict[str, Any], **overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(envs, "prod", overrides)
    return caught.value.problems


def test_without_queues_and_workers_one_default_worker_consumes_one_default_queue() -> None:
    config = load_config(ENVIRONMENTS, "prod")
    assert list(config.work_queues) == ["default"]
    assert config.work_queues["default"] is config.queue
    (fleet,) = config.fleets.values()
    assert list(config.fleets) == ["default"]
    assert fleet.queues == ("default",)
    assert (fleet.worker, fleet.scaling) == (config.worker, config.scaling)
    assert fleet.batch_windows == config.batch_windows


def test_queues_alone_are_consumed_by_one_worker_in_the_order_written() -> None:
    config = load_config(prod(queues={"high": {}, "default": {"retention_days": 7}}), "prod")
    assert config.fleets["default"].queues == ("high", "default")
    top = ENVIRONMENTS["prod"]["queue"]
    assert config.work_queues["high"].retention_days == top["retention_days"]  # inherited
    assert config.work_queues["default"].retention_days == 7  # its own
    assert config.work_queues["high"].max_receive_count == top["max_receive_count"]


def test_each_worker_inherits_the_environments_worker_and_scaling_keys_it_does_not_set() -> None:
    config = load_config(mail_and_batch(), "prod")
    mail, batch = config.fleets["mail"], config.fleets["batch"]
    top = ENVIRONMENTS["prod"]
    assert (mail.worker.processes, mail.scaling.max_tasks) == (2, 2)
    assert mail.worker.cpu == top["worker"]["cpu"]  # inherited
    assert batch.worker.processes == top["worker"]["processes"]
    assert batch.scaling.max_tasks == top["scaling"]["max_tasks"]
    assert (mail.batch_windows, len(batch.batch_windows)) == ((), 1)
    assert config.work_queues["emails"].max_receive_count == 3


def test_the_environment_as_one_worker_sees_it() -> None:
    config = load_config(mail_and_batch(), "prod")
    mail = config.of_fleet("mail")
    assert (mail.worker, mail.scaling) == (
        config.fleets["mail"].worker,
        config.fleets["mail"].scaling,
    )
    assert (mail.queue, mail.batch_windows) == (config.work_queues["emails"], ())
    assert config.of_fleet("batch").batch_windows == config.fleets["batch"].batch_windows
    assert (mail.alarms, mail.workers, mail.container_insights) == (
        config.alarms,
        config.workers,
        config.container_insights,
    )


def test_without_workers_the_default_worker_sees_the_environment_as_it_is() -> None:
    config = load_config(ENVIRONMENTS, "prod")
    assert config.of_fleet("default") == config


def test_objects_merge_key_by_key() -> None:
    envs = mail_and_batch(worker={**ENVIRONMENTS["prod"]["worker"], "environment": {"A": "1"}})
    envs["prod"]["workers"]["mail"]["worker"]["environment"] = {"B": "2"}
    config = load_config(envs, "prod")
    assert dict(config.fleets["mail"].worker.environment) == {"A": "1", "B": "2"}
    assert dict(config.fleets["batch"].worker.environment) == {"A": "1"}


def test_a_queue_consumed_by_two_workers() -> None:
    envs = mail_and_batch()
    envs["prod"]["workers"]["batch"]["queues"] = ["emails", "default"]
    assert problems(envs) == [
        f"{P}workers.batch.queues[0]: 'emails' is already consumed by worker 'mail'; allowed: "
        "one worker a queue (two fleets on one queue cannot keep its priority or scaling)"
    ]


def test_a_priority_list_naming_an_unknown_queue() -> None:
    envs = mail_and_batch()
    envs["prod"]["workers"]["mail"]["queues"] = ["emails", "mails"]
    assert problems(envs) == [
        f"{P}workers.mail.queues[1]: 'mails' is not a queue of the environment; allowed: "
        "['emails', 'default']"
    ]


def test_a_queue_no_worker_consumes() -> None:
    envs = mail_and_batch()
    envs["prod"]["queues"]["spare"] = {}
    assert problems(envs) == [
        f"{P}queues: 'spare' is consumed by no worker; allowed: name it in a worker's queues"
    ]


@pytest.mark.parametrize(
    ("queues", "problem"),
    [
        ([], "[] names no queue; allowed: one or more of the environment's queues"),
        (["emails", "emails"], "'emails' is named 2 times; allowed: each queue once"),
    ],
)
def test_a_priority_list_that_names_no_queue_or_one_twice(queues: list[str], problem: str) -> None:
    envs = mail_and_batch()
    envs["prod"]["workers"]["mail"]["queues"] = queues
    assert problems(envs) == [f"{P}workers.mail.queues: {problem}"]


def test_more_processes_in_all_workers_than_the_connection_cap() -> None:
    envs = mail_and_batch()
    envs["prod"]["workers"]["mail"]["scaling"]["max_tasks"] = 4
    cap = ENVIRONMENTS["prod"]["scaling"]["max_total_processes"]
    batch = (
        ENVIRONMENTS["prod"]["scaling"]["max_tasks"] * ENVIRONMENTS["prod"]["worker"]["processes"]
    )
    assert 4 * 2 + batch > cap >= 2 * 2 + batch  # each worker fits alone: the sum does not
    assert problems(envs) == [
        f"{P}workers: mail 4 tasks x 2 processes + batch "
        f"{ENVIRONMENTS['prod']['scaling']['max_tasks']} tasks x "
        f"{ENVIRONMENTS['prod']['worker']['processes']} processes = {8 + batch} exceeds "
        f"scaling.max_total_processes {cap} (the database connection cap counts every worker, "
        "with its on-demand fallback tasks); lower a worker's scaling.max_tasks or "
        "worker.processes"
    ]


def test_a_worker_may_not_set_a_connection_cap_of_its_own() -> None:
    envs = mail_and_batch()
    envs["prod"]["workers"]["mail"]["scaling"]["max_total_processes"] = 4
    cap = ENVIRONMENTS["prod"]["scaling"]["max_total_processes"]
    assert problems(envs) == [
        f"{P}workers.mail.scaling.max_total_processes: 4 differs from scaling.max_total_processes "
        f"{cap}: the database connection cap counts every worker of the environment; allowed: "
        "unset here (set the environment's)"
    ]


def test_two_workers_of_the_same_name_in_cdk_json() -> None:
    text = (
        '{"context": {"environments": {"prod": {"workers": '
        '{"mail": {"queues": ["emails"]}, "mail": {"queues": ["default"]}}}}}}'
    )
    assert duplicated_keys(text) == [
        "cdk.json context.environments.prod.workers: 'mail' is written twice (JSON keeps only "
        "the last); allowed: each key once"
    ]
    assert duplicated_keys((ROOT / "cdk.json").read_text()) == []


def test_names_that_differ_only_in_separators() -> None:
    envs = mail_and_batch()
    envs["prod"]["queues"]["e-mails"] = {}
    envs["prod"]["workers"]["mail"]["queues"] = ["emails", "e-mails"]
    assert problems(envs) == [
        f"{P}queues.e-mails: 'e-mails' differs from 'emails' only in '-' and '_', which resource "
        "ids drop; allowed: names that differ in a letter or digit"
    ]


def test_a_name_that_is_not_a_resource_name() -> None:
    envs = mail_and_batch()
    envs["prod"]["workers"]["Mail"] = envs["prod"]["workers"].pop("mail")
    assert problems(envs) == [
        f"{P}workers.Mail: 'Mail' is not a name of 1 to 40 lowercase letters, digits, '_' and "
        "'-', starting with a letter"
    ]


def test_a_batch_window_outside_a_worker() -> None:
    envs = mail_and_batch(batch_window=ENVIRONMENTS["prod"]["batch_window"])
    assert problems(envs) == [
        f"{P}batch_window: with workers, a batch window belongs to the worker whose queues it "
        "drains; allowed: workers.NAME.batch_window"
    ]


def test_a_job_longer_than_a_consumed_queue_can_hide_a_message() -> None:
    envs = mail_and_batch()
    envs["prod"]["queues"]["emails"]["visibility_timeout_seconds"] = 3600
    envs["prod"]["workers"]["mail"]["worker"]["job_timeout_seconds"] = 40_000
    assert problems(envs) == [
        f"{P}workers.mail.worker.job_timeout_seconds: 40000 must be between 1 and 39600: SQS "
        "keeps a message invisible for at most 12 h after it is received, heartbeat or not "
        "(minus one visibility timeout)"
    ]


def test_an_inherited_bad_value_is_said_once_at_its_own_key() -> None:
    envs = mail_and_batch(queue={"retention_days": 30})
    assert problems(envs) == [f"{P}queue.retention_days: 30 must be 1 to 14"]


def test_a_problem_only_the_inheritor_has_names_the_key_it_inherited() -> None:
    envs = mail_and_batch()
    envs["prod"]["workers"]["mail"]["worker"]["processes"] = 16
    (problem,) = problems(envs)
    memory = ENVIRONMENTS["prod"]["worker"]["memory_mib"]
    assert problem.startswith(f"{P}workers.mail.worker.memory_mib: {memory} cannot hold 16 ")
    assert problem.endswith("(inherited from worker.memory_mib)")


def test_overrides_change_one_worker_or_queue() -> None:
    config = load_config(
        mail_and_batch(),
        "prod",
        {
            "workers.mail.worker.processes": "4",
            "workers.mail.scaling.max_tasks": "1",
            "workers.mail.queues": '["emails"]',
            "queues.emails.max_receive_count": "2",
        },
    )
    assert (config.fleets["mail"].worker.processes, config.fleets["mail"].scaling.max_tasks) == (
        4,
        1,
    )
    assert config.work_queues["emails"].max_receive_count == 2
    assert config.work_queues["default"].max_receive_count == 5


def test_overrides_never_add_a_worker_and_suggest_the_key() -> None:
    found = problems(
        mail_and_batch(),
        **{"workers.post.worker.processes": "3", "workers.mail.worker.procs": "1"},
    )
    assert found == [
        "-c workers.post.worker.processes: environments.prod has no workers.post to change; add "
        "one in cdk.json",
        "-c workers.mail.worker.procs: unknown key; did you mean workers.mail.worker.processes "
        "or workers.mail.worker.cpu or workers.mail.worker.spot?",
    ]


def test_synth_stops_at_a_key_written_twice_in_cdk_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import app  # the CDK app's entry point; it reads cdk.json where it lives

    text = (ROOT / "cdk.json").read_text()
    workers = '"workers": {"mail": {"queues": ["default"]}, "mail": {"queues": ["default"]}},'
    (tmp_path / "cdk.json").write_text(text.replace('"region"', workers + ' "region"', 1))
    monkeypatch.setattr(app, "PROJECT_DIR", tmp_path)
    monkeypatch.setenv("CDK_CONTEXT_JSON", json.dumps(json.loads(text)["context"] | {"env": "dev"}))
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "cdk.out"))
    with pytest.raises(SystemExit) as stopped:
        app.main()
    assert stopped.value.code == 1
    (problem,) = capsys.readouterr().err.splitlines()[1:]
    assert problem.endswith(
        ": 'mail' is written twice (JSON keeps only the last); allowed: each key once"
    )
    assert problem.startswith("  - cdk.json context.environments.")


def test_a_worker_named_like_another_environments_suffix_is_refused_from_both_sides() -> None:
    """prod's worker `batch` and an environment `prod-batch` would both name their queues,
    alarms and outputs QueueWorker-prod-batch-...: each side says so when it is loaded."""
    envs = mail_and_batch()
    envs["prod-batch"] = copy.deepcopy(ENVIRONMENTS["dev"])

    assert problems(envs) == [
        f"{P}workers.batch: its resources would be named like those of environment "
        "'prod-batch' (QueueWorker-prod-batch-...); allowed: a name that does not make another "
        "environment's name"
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(envs, "prod-batch")
    assert caught.value.problems == [
        "environments.prod-batch: its resources would be named like those of the queue or "
        "worker 'batch' of environment 'prod' (QueueWorker-prod-batch-...); allowed: an "
        "environment name that is not another's name and one of its queues or workers"
    ]


def test_a_queue_named_like_another_environments_suffix_is_refused() -> None:
    envs = mail_and_batch()
    envs["prod-emails"] = copy.deepcopy(ENVIRONMENTS["dev"])
    assert [p.split(":")[0] for p in problems(envs)] == [f"{P}queues.emails"]
    assert load_config(mail_and_batch(), "prod").workers  # no such environment: accepted
