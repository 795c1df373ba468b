"""The real supervisord running N real worker processes against moto's server."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from worker import contract
from worker.masking import MASK

from tests.integration.fleet import PROD_PROCESSES, WORKER_IMAGE, Fleet, queue_depth, send_jobs
from tests.unit.worker.recording_handlers import runs

MakeFleet = Callable[..., Fleet]


def test_a_fleet_consumes_every_message_exactly_once(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    record = tmp_path / "record"
    ids = send_jobs(sqs_client, pair.url, record, 30, duration_seconds=0.2)
    fleet = make_fleet(QUEUE_URL=pair.url, DEAD_LETTER_QUEUE_URL=pair.dlq_url, WORKER_PROCESSES=3)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 30 and len(fleet.worker_pids()) == 3)
    assert fleet.stop() == 0
    assert runs(record) == {i: {"start": 1, "done": 1} for i in ids}
    assert queue_depth(sqs_client, pair.url) == 0
    names = {e["process"] for e in fleet.jobs()}
    assert names <= {"worker_00", "worker_01", "worker_02"} and len(names) >= 2
    assert len(fleet.worker_pids()) == 3
    stopped = fleet.events("worker_stopped")
    assert len(stopped) == 3 and {e["reason"] for e in stopped} == {"sigterm"}


def test_a_worker_that_missed_the_stop_signal_stops_as_soon_as_it_starts(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    """supervisord loses a stop signal that reaches a process it has forked but not yet
    exec'd (its own handler is still installed there): the worker would then take work until
    the stop wait's SIGKILL. Here each of the 8 programs ignores SIGTERM for its first 3 s (the
    lost signal) before it execs the worker, and the fleet is stopped in those seconds. Every
    worker must stop as it starts, receive nothing, and the fleet exit long before its stop
    wait (60 s here)."""
    conf = tmp_path / "supervisord.conf"
    text = (WORKER_IMAGE / "supervisord.conf").read_text()
    lost_signal = (
        'command=sh -c \'trap "" TERM; touch $WORKER_RUN_DIR/spawned-$SUPERVISOR_PROCESS_NAME;'
        " sleep 3; exec python -m worker'"
    )
    conf.write_text(
        text.replace("command=python -m worker\n", lost_signal + "\n").replace(
            "directory=%(here)s", f"directory={WORKER_IMAGE}"
        )
    )
    pair = make_queue_pair()
    send_jobs(sqs_client, pair.url, tmp_path / "record", 5)
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        WORKER_PROCESSES=PROD_PROCESSES,
        SUPERVISOR_CONF=conf,
        SUPERVISOR_STOPWAITSECS=60,
    )
    run_dir = Path(fleet.env["WORKER_RUN_DIR"])
    fleet.wait_for(lambda: len(list(run_dir.glob("spawned-*"))) == PROD_PROCESSES, timeout=30)
    assert fleet.stop(timeout=30) == 0
    stopped = fleet.events("worker_stopped")
    assert len(stopped) == PROD_PROCESSES
    assert {(e["reason"], e["jobs"]) for e in stopped} == {("sigterm", 0)}
    assert fleet.jobs() == []
    attributes = sqs_client.get_queue_attributes(QueueUrl=pair.url, AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "5"  # none received


def test_a_recycled_process_is_restarted_by_supervisord(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    pair = make_queue_pair()
    record = tmp_path / "record"
    ids = send_jobs(sqs_client, pair.url, record, 7, duration_seconds=0.05)
    fleet = make_fleet(QUEUE_URL=pair.url, WORKER_PROCESSES=1, MAX_JOBS_PER_PROCESS=3)
    fleet.wait_for(lambda: len(fleet.jobs("done")) == 7)
    assert fleet.stop() == 0
    assert runs(record) == {i: {"start": 1, "done": 1} for i in ids}
    recycles = [e for e in fleet.events("worker_stopped") if e["reason"] == "recycle_jobs"]
    assert len(recycles) == 2
    assert len(fleet.worker_pids()) == 3  # two clean exits, two fresh processes


def test_a_process_that_cannot_start_makes_the_fleet_exit_non_zero(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any]
) -> None:
    pair = make_queue_pair()
    fleet = make_fleet(QUEUE_URL=pair.url, WORKER_PROCESSES=2, WORKER_HANDLER="no_such:job")
    assert fleet.wait(timeout=60) == 1  # FATAL after startretries -> container exit 1
    text = fleet.log_path.read_text()
    assert "WORKER_HANDLER='no_such:job'" in text
    assert [e["program"] for e in fleet.events("process_fatal")][:1] in (
        ["worker_00"],
        ["worker_01"],
    )


def test_task_protection_spans_the_processes_of_the_task(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any, tmp_path: Path
) -> None:
    enabled: list[bool] = []

    class Agent(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            enabled.append(body["ProtectionEnabled"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pair = make_queue_pair()
        record = tmp_path / "record"
        send_jobs(sqs_client, pair.url, record, 6, duration_seconds=1)
        fleet = make_fleet(
            QUEUE_URL=pair.url,
            WORKER_PROCESSES=3,
            ECS_AGENT_URI=f"http://127.0.0.1:{server.server_address[1]}/v1",
        )
        fleet.wait_for(lambda: len(fleet.jobs("done")) == 6)
        fleet.wait_for(lambda: enabled[-1:] == [False], timeout=10)  # all idle again
        busy_at_once = len({e["process"] for e in fleet.jobs()})
        assert fleet.stop() == 0
    finally:
        server.shutdown()
    assert busy_at_once >= 2
    # Starting protected and ending released; far fewer calls than jobs. Never two releases in
    # a row; a protect may be sent twice: a process whose call landed before a newer decision
    # of another process cannot know that and sends what the task needs again (protection.py).
    assert enabled[0] is True and enabled[-1] is False
    assert all(a or b for a, b in itertools.pairwise(enabled))
    assert len(enabled) < 2 * 6
    lines = fleet.events("task_protection")
    assert {line["protected"] for line in lines} == {True, False}


def test_consumer_mode_runs_the_teams_consumer_and_restarts_it(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any]
) -> None:
    pair = make_queue_pair()
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        WORKER_PROCESSES=1,
        WORKER_HANDLER_MODE="consumer",
        # Stands in for `php artisan queue:work sqs --max-jobs=...`: works a while, exits 0.
        WORKER_HANDLER="""sh -c 'echo "{\\"event\\": \\"consumer\\", \\"pid\\": $$}"; sleep 1.2'""",
    )
    fleet.wait_for(lambda: len(fleet.events("consumer")) >= 2)
    assert fleet.stop() == 0
    started = fleet.events("worker_started")
    assert started[0]["mode"] == "consumer"
    # The consumer runs under the kit's watcher, and each exit 0 starts a new one.
    consumers = [e["pid"] for e in fleet.events("consumer")]
    assert consumers[:2] == [e["consumer_pid"] for e in started][:2]
    assert len(set(consumers)) == len(consumers)
    assert {e["reason"] for e in fleet.events("worker_stopped")} >= {"exited"}


def test_eight_processes_never_log_a_secret(
    make_fleet: MakeFleet, make_queue_pair: Callable[..., Any], sqs_client: Any
) -> None:
    """Secrets stay out of the logs through the whole fleet (docs/security.md): 8 command-mode
    workers under supervisord, as the task runs them with `worker.secrets`, print the secret on
    stdout and stderr and in a URL; the fleet's merged output (what the awslogs driver reads)
    never holds it, and every print is there with the mask."""
    secret = "s3cr3t-Pa55word"
    pair = make_queue_pair()
    jobs = 24
    for _ in range(jobs):
        sqs_client.send_message(QueueUrl=pair.url, MessageBody="{}")
    fleet = make_fleet(
        QUEUE_URL=pair.url,
        DEAD_LETTER_QUEUE_URL=pair.dlq_url,
        WORKER_PROCESSES=PROD_PROCESSES,
        WORKER_HANDLER_MODE="command",
        WORKER_HANDLER='echo "pw=$DB_PASSWORD"; echo "db://app:$DB_PASSWORD@db/x" >&2; sleep 0.2',
        **{contract.SECRET_NAMES_VARIABLE: "DB_PASSWORD", "DB_PASSWORD": secret},
    )
    fleet.wait_for(lambda: len(fleet.jobs("done")) == jobs)
    assert fleet.stop() == 0
    assert secret not in fleet.log_path.read_text()
    printed = "\n".join(e[contract.OUTPUT_TEXT] for e in fleet.events(contract.JOB_OUTPUT_EVENT))
    assert printed.count(f"pw={MASK}") == jobs
    assert printed.count(f"db://app:{MASK}@db/x") == jobs
    assert len({e["process"] for e in fleet.jobs()}) >= 2
    assert queue_depth(sqs_client, pair.url) == 0
