<?php

namespace App\Message;

// Its handler leaks on its first run: "NOTE:MIB". For consumer mode.
final class Leak
{
    public function __construct(public readonly string $spec)
    {
    }
}
