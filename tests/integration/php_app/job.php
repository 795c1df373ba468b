<?php
// A tiny PHP job for the kit's command mode: the body (JSON) on stdin, the exit code decides.
// Prints "started <message id>" first.
// {"action": "ok", "seconds": s}         sleeps, prints "processed <message id>", exit 0
// {"action": "throw"}                    throws; the reason goes to WORKER_RESULT_FILE; exit 1,
//                                        or 65 (to the DLQ) from receive JOB_MAX_TRIES on
// {"action": "leak_on_first", "mib": n}  on receive 1 keeps allocating (a leak); else ok
// {"action": "sleep", "seconds": s}      a long job (for SIGTERM)

set_exception_handler(function (Throwable $e): void {
    $reason = get_class($e) . ': ' . $e->getMessage();
    file_put_contents(getenv('WORKER_RESULT_FILE'), json_encode(['reason' => $reason]));
    fwrite(STDERR, "job failed: $reason\n");
    $last = (int) getenv('WORKER_RECEIVE_COUNT') >= (int) (getenv('JOB_MAX_TRIES') ?: 3);
    exit($last ? 65 : 1);
});

$job = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$id = getenv('WORKER_MESSAGE_ID');
echo "started $id\n";
switch ($job['action']) {
    case 'throw':
        throw new RuntimeException('payment API said no');
    case 'leak_on_first':
        if ((int) getenv('WORKER_RECEIVE_COUNT') === 1) {
            $kept = [];
            while (true) {
                $kept[] = str_repeat('x', $job['mib'] * 1024 * 1024);
                usleep(200000);
            }
        }
        break;
    case 'sleep':
    case 'ok':
        usleep((int) (($job['seconds'] ?? 0) * 1e6));
        break;
}
echo "processed $id\n";
