<?php

// A producer: dispatch() of COUNT jobs of CLASS (default App\Jobs\RecordJob, whose notes are
// "produced-1", "produced-2", ...; another class gets ARGUMENTS) on the sqs connection, through
// Laravel's bus and SqsQueue to the queue SQS_QUEUE names, at AWS_ENDPOINT_URL when set. With
// MESSAGE_GROUP set, each job's messageGroup is that group (a FIFO queue's group, through the
// kit's KitSqsFifoQueue) and RecordJob's notes are "GROUP-1", "GROUP-2", ...; with
// DELAY_SECONDS, each is dispatched with that delay.
// Usage: php produce.php COUNT [CLASS [ARGUMENTS...]]

require __DIR__.'/vendor/autoload.php';

$app = require __DIR__.'/bootstrap/app.php';
$app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();

[$count, $class] = [(int) ($argv[1] ?? 1), $argv[2] ?? App\Jobs\RecordJob::class];
$group = getenv('MESSAGE_GROUP') ?: null;
for ($n = 1; $n <= $count; $n++) {
    $note = ($group ?? 'produced')."-$n";
    $job = new $class(...($class === App\Jobs\RecordJob::class ? [$note] : array_slice($argv, 3)));
    if ($group !== null) {
        $job->messageGroup = $group;
    }
    $pending = dispatch($job);
    if (getenv('DELAY_SECONDS')) {
        $pending->delay((int) getenv('DELAY_SECONDS'));
    }
}
