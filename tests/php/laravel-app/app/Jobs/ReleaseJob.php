<?php

namespace App\Jobs;

use Illuminate\Queue\InteractsWithQueue;

// Not ready yet: asks to be tried again in 30 s.
class ReleaseJob
{
    use InteractsWithQueue;

    public function handle(): void
    {
        $this->release(30);
    }
}
