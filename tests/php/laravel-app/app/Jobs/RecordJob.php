<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;

// Succeeds: records its note and the attempt number Laravel gives it.
class RecordJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public function __construct(public string $note)
    {
    }

    public function handle(): void
    {
        Recorder::write('handled', ['job' => static::class, 'note' => $this->note, 'attempts' => $this->attempts()]);
    }
}
