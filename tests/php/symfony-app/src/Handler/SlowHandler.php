<?php

namespace App\Handler;

use App\Message\Slow;
use App\Recorder;

/** Works for SECONDS (short sleeps: a signal does not cut it short); records start and end. */
final class SlowHandler
{
    public function __invoke(Slow $slow): void
    {
        [$note, $seconds] = explode(':', $slow->spec);
        Recorder::record('started', ['note' => $note, 'pid' => getmypid()]);
        $end = microtime(true) + (float) $seconds;
        while (microtime(true) < $end) {
            usleep(100_000);
        }
        Recorder::record('handled', ['note' => $note, 'pid' => getmypid()]);
    }
}
