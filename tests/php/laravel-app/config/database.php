<?php

return [
    'default' => env('DB_CONNECTION', 'sqlite'),

    'connections' => [
        // One SQLite file shared by every process (failed_jobs, cache, cache_locks): the tests
        // give its path in DB_DATABASE ('php artisan migrate' creates the tables).
        'sqlite' => [
            'driver' => 'sqlite',
            'database' => env('DB_DATABASE', database_path('database.sqlite')),
            'password' => env('DB_PASSWORD', ''),
            'prefix' => '',
            'foreign_key_constraints' => true,
        ],
    ],

    'migrations' => 'migrations',
];
