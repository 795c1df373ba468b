<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;

// Records the values config() has for the keys it was given (where run-time settings land).
class ConfigJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public array $keys;

    public function __construct(string ...$keys)
    {
        $this->keys = $keys;
    }

    public function handle(): void
    {
        Recorder::write('config', ['values' => array_combine($this->keys, array_map(fn ($key) => config($key), $this->keys))]);
    }
}
