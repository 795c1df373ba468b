<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use RuntimeException;
use Throwable;

// Throws every time; may be tried 10 times but fails after 2 exceptions ($maxExceptions).
class MaxExceptionsJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public $tries = 10;

    public $maxExceptions = 2;

    public function handle(): void
    {
        Recorder::write('handled', ['job' => static::class, 'attempts' => $this->attempts()]);

        throw new RuntimeException('attempt '.$this->attempts().' failed');
    }

    public function failed(?Throwable $e): void
    {
        Recorder::write('failed_called', ['exception' => $e ? $e::class : null]);
    }
}
