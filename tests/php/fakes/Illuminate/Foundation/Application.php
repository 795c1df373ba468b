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
}
