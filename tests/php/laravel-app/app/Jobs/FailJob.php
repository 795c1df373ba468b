<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Throwable;

// Decides the input is bad and fails itself.
class FailJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public function handle(): void
    {
        $this->fail('invoice 42 has no customer');
    }

    public function failed(?Throwable $e): void
    {
        Recorder::write('failed_called', ['exception' => $e ? $e::class : null]);
    }
}
