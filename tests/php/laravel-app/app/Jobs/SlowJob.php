<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;

// Works for SECONDS (a loop of short sleeps: a signal does not cut it short), recording its
// start and its end with the note and the attempt (SQS's receive count). For consumer mode.
class SlowJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public function __construct(public string $note, public string $seconds)
    {
    }

    public function handle(): void
    {
        $fields = ['job' => static::class, 'note' => $this->note, 'attempts' => $this->attempts(), 'pid' => getmypid()];
        Recorder::write('started', $fields);
        $end = microtime(true) + (float) $this->seconds;
        while (microtime(true) < $end) {
            usleep(100_000);
        }
        Recorder::write('handled', $fields);
    }
}
