<?php

namespace App\Jobs;

use Illuminate\Queue\InteractsWithQueue;
use RuntimeException;

// Always throws and sets no $tries: queue:work's --tries (LARAVEL_TRIES) decides.
class UntriedThrowJob
{
    use InteractsWithQueue;

    public function handle(): void
    {
        throw new RuntimeException('still broken');
    }
}
