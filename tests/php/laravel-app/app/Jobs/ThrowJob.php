<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use RuntimeException;
use Throwable;

// Always throws; allowed 3 tries; failed() records the failure.
class ThrowJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public $tries = 3;

    public function handle(): void
    {
        Recorder::write('handled', ['job' => static::class, 'attempts' => $this->attempts()]);

        throw new RuntimeException('upstream API timed out');
    }

    public function failed(?Throwable $e): void
    {
        Recorder::write('failed_called', ['exception' => $e ? $e::class : null]);
    }
}
