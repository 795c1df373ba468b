<?php

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use RuntimeException;

// Always throws; asks for 10 s then 45 s between tries.
class BackoffThrowJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public $tries = 5;

    public $backoff = [10, 45];

    public function handle(): void
    {
        throw new RuntimeException('rate limited');
    }
}
