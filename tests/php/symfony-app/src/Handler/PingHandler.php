<?php

namespace App\Handler;

use App\Message\Ping;
use App\Recorder;

final class PingHandler
{
    public function __invoke(Ping $ping): void
    {
        // On a FIFO queue, the group the kit ran it in (WORKER_MESSAGE_GROUP_ID) too.
        $group = getenv('WORKER_MESSAGE_GROUP_ID');
        Recorder::record('handled', ['text' => $ping->text] + ($group ? ['group' => $group] : []));
    }
}
