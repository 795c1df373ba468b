<?php

namespace App\Message;

// Its handler throws: kind "unrecoverable", "recoverable", "rate-limited" or anything else (a RuntimeException).
final class Explode
{
    public function __construct(public readonly string $kind)
    {
    }
}
