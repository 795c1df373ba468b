<?php

namespace App\Support;

use Illuminate\Contracts\Events\Dispatcher;

// Laravel's event dispatcher for class-named events: listeners by class, every event recorded.
final class Events implements Dispatcher
{
    private array $listeners = [];

    public function listen($events, $listener = null)
    {
        $this->listeners[$events][] = $listener;
    }

    public function dispatch($event, $payload = [], $halt = false)
    {
        Recorder::write('event', ['event' => (new \ReflectionClass($event))->getShortName()]);
        foreach ($this->listeners[$event::class] ?? [] as $listener) {
            $listener($event);
        }
    }
}
