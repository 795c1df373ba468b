<?php

namespace Illuminate\Foundation;

use Illuminate\Container\Container;

class Application extends Container
{
    public function __construct(public readonly string $basePath)
    {
        $this->alias(self::class, Container::class);
        $this->offsetSet(self::class, $this);
    }

    private array $terminatingCallbacks = [];

    public function terminating(callable $callback)
    {
        $this->terminatingCallbacks[] = $callback;

        return $this;
    }

    public function terminate()
    {
        foreach ($this->terminatingCallbacks as $callback) {
            $callback();
        }
    }
}
