"""`local-run` and `bench` as an operator reads them: the report's words, the exit codes and
their one error line (the runs themselves, with a real fleet: tests/integration)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from scripts.__main__ import main
from scripts.devtools import bench, local_run
from scripts.devtools.local_run import Report


def report(**changes: Any) -> Report:
    """A run of 40 good, 2 poison and 2 malformed messages on 8 processes, 1 s each."""
    fields: dict[str, Any] = {
        "enqueued": 44,
        "processed": 40,
        "dead_lettered": 4,
        "dead_lettered_by_worker": 2,
        "dead_lettered_by_sqs": 2,
        "max_receive_count": 3,
        "lost": 0,
        "duplicates": 0,
        "wall_seconds": 5.2,
        "ideal_seconds": 5.0,
        "worker_requests": 12,
        "request_breakdown": {"ReceiveMessage": 8, "DeleteMessageBatch": 4},
        "outcomes": {"done": 40, "retry": 6, "dead_letter": 2},
        "dead_letter_reasons": {"malformed body": 2},
    }
    return Report(**{**fields, **changes})


def one_error_line(capsys: Any) -> tuple[str, str]:
    """(stdout, the one error line) of a failed run: stderr's last line, after the progress."""
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 1, captured.err
    assert captured.err.endswith(f"{errors[0]}\n") and errors[0].startswith("error: ")
    return captured.out, errors[0]


def test_the_report_says_who_dead_lettered_what_and_prints_no_raw_dict() -> None:
    lines = report().lines()
    assert (
        "dead-lettered   4: 2 by the worker with a reason (malformed body 2), "
        "2 moved by SQS after 3 receives (max_receive_count)" in lines
    )
    assert "job runs        48: 40 done, 6 retry, 2 dead_letter (a retried message runs again)" in (
        lines
    )
    assert not [line for line in lines if "{" in line], lines
    assert "job runs        3: 3 done" in report(enqueued=3, outcomes={"done": 3}).lines()


def test_a_run_with_nothing_processed_reports_no_infinite_ratio() -> None:
    text = "\n".join(report(processed=0, lost=40).lines())
    assert "inf" not in text and "none processed" in text


@pytest.mark.parametrize("verb", ["local-run", "bench"])
def test_no_good_messages_is_refused_with_exit_2(verb: str, capsys: Any) -> None:
    """--messages 0 would report "0% of ideal" and "inf per message": there is nothing to run."""
    with pytest.raises(SystemExit) as exited:
        main([verb, "--messages", "0"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"python -m scripts {verb}: error: argument --messages: must be at least 1, got 0 "
        "(see --help)\n"
    )


def fake_runs(monkeypatch: pytest.MonkeyPatch, *reports: Report) -> list[argparse.Namespace]:
    """bench's runs return these reports, in turn; the arguments each run got."""
    given: list[argparse.Namespace] = []
    pending = list(reports)

    def run(args: argparse.Namespace) -> Report:
        given.append(args)
        return pending.pop(0)

    monkeypatch.setattr(bench, "run", run)
    return given


def test_bench_within_the_bars_exits_0_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fake_runs(monkeypatch, report())
    assert main(["bench"]) == 0
    assert capsys.readouterr().err == "--- PREFETCH_SECONDS=the template setting\n"


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_bench_below_a_bar_says_which_run_missed_which_bar(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, as_json: bool
) -> None:
    fake_runs(
        monkeypatch,
        report(wall_seconds=10.0),
        report(lost=1, worker_requests=30),
    )
    argv = ["bench", "--prefetch", "0", "2", *(["--json"] if as_json else [])]
    assert main(argv) == 1
    out, error = one_error_line(capsys)
    assert error == (
        "error: below the bars of docs/benchmarks.md: PREFETCH_SECONDS=0: 50% of ideal "
        "(at least 90%); PREFETCH_SECONDS=2: 1 lost (none allowed), 0.75 SQS requests per "
        "message (at most 0.5)"
    )
    if as_json:
        assert len(json.loads(out)) == 2  # stdout is the JSON document alone
    else:
        assert "| PREFETCH_SECONDS |" in out


def test_bench_json_of_a_run_that_processed_nothing_is_valid_json(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fake_runs(monkeypatch, report(processed=0, dead_lettered=0, lost=44))
    assert main(["bench", "--json"]) == 1
    out, error = one_error_line(capsys)
    (run,) = json.loads(out, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))
    assert run["requests_per_message"] is None
    assert error == (
        "error: below the bars of docs/benchmarks.md: PREFETCH_SECONDS=template: 44 lost "
        "(none allowed)"
    )


def test_local_run_that_loses_a_message_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(local_run, "run", lambda args: report(processed=39, lost=1))
    assert main(["local-run"]) == 1
    out, error = one_error_line(capsys)
    assert error == "error: 1 of 44 messages lost (neither done nor in the DLQ)"
    assert "lost            1" in out


def test_local_run_without_synthesized_templates_says_to_synth(tmp_path: Any, capsys: Any) -> None:
    assert main(["local-run", "--env", "qa", "--cdk-out", str(tmp_path)]) == 1
    _, error = one_error_line(capsys)
    assert error == (
        f"error: no synthesized templates in {tmp_path}/qa: run `make synth ENV=qa` first"
    )
