<?php

// A producer: dispatch() of COUNT jobs of CLASS (default App\Jobs\RecordJob, whose notes are
// "produced-1", "produced-2", ...; another class gets ARGUMENTS) on the sqs connection, through
// Laravel's bus and SqsQueue to the queue SQS_QUEUE names, at AWS_ENDPOINT_URL when set.
// Usage: php produce.php COUNT [CLASS [ARGUMENTS...]]

require __DIR__.'/vendor/autoload.php';

$app = require __DIR__.'/bootstrap/app.php';
$app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();

[$count, $class] = [(int) ($argv[1] ?? 1), $argv[2] ?? App\Jobs\RecordJob::class];
for ($n = 1; $n <= $count; $n++) {
    dispatch(new $class(...($class === App\Jobs\RecordJob::class ? ["produced-$n"] : array_slice($argv, 3))));
}
