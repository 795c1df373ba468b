<?php

// Prints the SQS message body Laravel's SqsQueue::push() sends for `new $argv[1](...$rest)`:
// Queue::createPayload() of laravel/framework 13 (createObjectPayload, then 'delay').
// Usage: php make-payload.php 'App\Jobs\RecordJob' [constructor arguments...]

require __DIR__.'/vendor/autoload.php';

[$class, $arguments] = [$argv[1], array_slice($argv, 2)];
$job = new $class(...$arguments);

$backoff = $job->backoff ?? null;
$payload = [
    'uuid' => sprintf('%04x%04x-%04x-4%03x-a%03x-%04x%04x%04x', ...array_map(fn ($n) => random_int(0, $n), [65535, 65535, 65535, 4095, 4095, 65535, 65535, 65535])),
    'displayName' => $class,
    'job' => 'Illuminate\Queue\CallQueuedHandler@call',
    'maxTries' => $job->tries ?? null,
    'maxExceptions' => $job->maxExceptions ?? null,
    'failOnTimeout' => $job->failOnTimeout ?? false,
    'backoff' => $backoff === null ? null : implode(',', (array) $backoff),
    'timeout' => $job->timeout ?? null,
    'retryUntil' => null,
    'deleteWhenMissingModels' => false,
    'data' => [
        'commandName' => $class,
        'command' => serialize(clone $job),
        'batchId' => null,
    ],
    'createdAt' => time(),
    'delay' => null,
];

echo json_encode($payload, JSON_UNESCAPED_UNICODE);
