<?php

namespace Illuminate\Queue;

// laravel/framework src/Illuminate/Queue/WorkerOptions.php (the queue:work defaults).
class WorkerOptions
{
    public function __construct(
        public $name = 'default',
        public $backoff = 0,
        public $memory = 128,
        public $timeout = 60,
        public $sleep = 3,
        public $maxTries = 1,
        public $force = false,
        public $stopWhenEmpty = false,
        public $maxJobs = 0,
        public $maxTime = 0,
        public $rest = 0,
        public $stopWhenEmptyFor = 0,
    ) {
    }
}
