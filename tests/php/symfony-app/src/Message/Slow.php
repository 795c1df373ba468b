<?php

namespace App\Message;

// Its handler works for a while: "NOTE:SECONDS". For consumer mode.
final class Slow
{
    public function __construct(public readonly string $spec)
    {
    }
}
