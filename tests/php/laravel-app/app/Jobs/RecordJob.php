<?php

namespace App\Jobs;

use App\Support\Recorder;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;

// Succeeds: records its note, the attempt number Laravel gives it and its FIFO group.
class RecordJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    /** The FIFO message group (KitSqsFifoQueue; Laravel 12's Queueable declares it alike). */
    public $messageGroup;

    public function __construct(public string $note)
    {
    }

    public function handle(): void
    {
        $group = getenv('WORKER_MESSAGE_GROUP_ID'); // on a FIFO queue, the group the kit ran it in
        Recorder::write('handled', ['job' => static::class, 'note' => $this->note, 'attempts' => $this->attempts()]
            + ($group ? ['group' => $group] : []));
    }
}
