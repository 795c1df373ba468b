<?php

namespace Illuminate\Queue;

use RuntimeException;

// laravel/framework src/Illuminate/Queue/MaxAttemptsExceededException.php (tap() inlined).
class MaxAttemptsExceededException extends RuntimeException
{
    public $job;

    public static function forJob($job)
    {
        $e = new static($job->resolveName().' has been attempted too many times.');
        $e->job = $job;

        return $e;
    }
}
