<?php

namespace Illuminate\Contracts\Events;

interface Dispatcher
{
    public function listen($events, $listener = null);

    public function dispatch($event, $payload = [], $halt = false);
}
