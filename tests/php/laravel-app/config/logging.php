<?php

use Monolog\Handler\StreamHandler;

return [
    // Containers log to stderr: the kit keeps a command's stderr in the job's log.
    'default' => env('LOG_CHANNEL', 'stderr'),

    'channels' => [
        'stderr' => [
            'driver' => 'monolog',
            'level' => env('LOG_LEVEL', 'debug'),
            'handler' => StreamHandler::class,
            'with' => ['stream' => 'php://stderr'],
        ],
    ],
];
