<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;

// On its first attempt keeps MIB more MiB every 0.1 s, 64 times (a leak while the job runs);
// later attempts do not. Records its start and end. For consumer mode.
class LeakJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public function __construct(public string $note, public string $mib = '16')
    {
    }

    public function handle(): void
    {
        $fields = ['job' => static::class, 'note' => $this->note, 'attempts' => $this->attempts(), 'pid' => getmypid()];
        Recorder::write('started', $fields);
        $kept = [];
        for ($step = 0; $this->attempts() === 1 && $step < 64; $step++) {
            $kept[] = str_repeat('x', ((int) $this->mib) << 20);
            usleep(100_000);
        }
        Recorder::write('handled', $fields + ['kept_mib' => count($kept) * (int) $this->mib]);
    }
}
