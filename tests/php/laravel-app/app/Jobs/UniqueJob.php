<?php

namespace App\Jobs;

// A RecordJob whose FIFO deduplication id is its note (Laravel 12's deduplicationId() hook, which
// KitSqsFifoQueue reads too): dispatched twice within 5 minutes, it is queued once.
class UniqueJob extends RecordJob
{
    public function deduplicationId(string $payload, string $queue): string
    {
        return $this->note;
    }
}
