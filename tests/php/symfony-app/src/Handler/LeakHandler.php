<?php

namespace App\Handler;

use App\Message\Leak;
use App\Recorder;

/**
 * The first run of a note (no $TEST_OUTPUT_DIR/leaked-NOTE yet) keeps MIB more MiB every
 * 0.1 s, 64 times: a leak while the message is handled. Later runs do not. Records start and end.
 */
final class LeakHandler
{
    public function __invoke(Leak $leak): void
    {
        [$note, $mib] = explode(':', $leak->spec);
        $first = false !== @fopen(getenv('TEST_OUTPUT_DIR')."/leaked-$note", 'x');
        Recorder::record('started', ['note' => $note, 'first' => $first, 'pid' => getmypid()]);
        $kept = [];
        for ($step = 0; $first && $step < 64; ++$step) {
            $kept[] = str_repeat('x', ((int) $mib) << 20);
            usleep(100_000);
        }
        Recorder::record('handled', ['note' => $note, 'first' => $first, 'kept_mib' => \count($kept) * (int) $mib]);
    }
}
