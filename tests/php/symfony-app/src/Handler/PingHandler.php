<?php

namespace App\Handler;

use App\Message\Ping;
use App\Recorder;

final class PingHandler
{
    public function __invoke(Ping $ping): void
    {
        Recorder::record('handled', ['text' => $ping->text]);
    }
}
