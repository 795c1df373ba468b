<?php

namespace Illuminate\Queue\Jobs;

// laravel/framework src/Illuminate/Queue/Jobs/JobName.php (Str::parseCallback inlined).
class JobName
{
    public static function parse($job)
    {
        return str_contains($job, '@') ? explode('@', $job, 2) : [$job, 'fire'];
    }

    public static function resolve($name, $payload)
    {
        if (! empty($payload['displayName'])) {
            return $payload['displayName'];
        }

        return $name;
    }
}
