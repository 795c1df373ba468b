<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Queue\InteractsWithQueue;

// Succeeds: records its note and the attempt number Laravel gives it.
class RecordJob
{
    use InteractsWithQueue;

    public function __construct(public string $note)
    {
    }

    public function handle(): void
    {
        Recorder::write('handled', ['job' => static::class, 'note' => $this->note, 'attempts' => $this->attempts()]);
    }
}
