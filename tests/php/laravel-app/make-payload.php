<?php

// Prints the SQS message body Laravel's SqsQueue sends for `new $argv[1](...$rest)`, made by
// Laravel's own producer code: Queue::push() (createPayload, the payload hooks of the booted
// application) with the one step that leaves the process, pushRaw(), printing instead.
// Usage: php make-payload.php 'App\Jobs\RecordJob' [constructor arguments...]

require __DIR__.'/vendor/autoload.php';

$app = require __DIR__.'/bootstrap/app.php';
$app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();

[$class, $arguments] = [$argv[1], array_slice($argv, 2)];

$queue = new class(new Aws\Sqs\SqsClient(), 'jobs') extends Illuminate\Queue\SqsQueue {
    public function pushRaw($payload, $queue = null, array $options = [])
    {
        echo $payload;

        return null;
    }
};
$queue->setContainer($app);
$queue->setConnectionName('sqs');
$queue->push(new $class(...$arguments));
