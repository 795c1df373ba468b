<?php

return [
    // A store every process of the fleet shares: the runner runs one PHP process per message,
    // so Worker's $maxExceptions count (job-exceptions:<uuid>) must outlive the process. The
    // database store on the application's database does; 'array' does not. ('file' with a
    // path under /tmp is shared only by the processes of one task.)
    'default' => env('CACHE_DRIVER', 'database'),

    'stores' => [
        'database' => [
            'driver' => 'database',
            'table' => 'cache',
            'connection' => null,
            'lock_connection' => null,
        ],
        'file' => [
            'driver' => 'file',
            'path' => env('CACHE_FILE_PATH', sys_get_temp_dir().'/laravel-cache'),
        ],
        'array' => [
            'driver' => 'array',
            'serialize' => false,
        ],
    ],

    'prefix' => 'kit_test_cache_',
];
