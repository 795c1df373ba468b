<?php

namespace App\Stamp;

use Symfony\Component\Messenger\Stamp\StampInterface;

// An application's own stamp, sent with the message (as a header by the JSON serializer).
final class TraceStamp implements StampInterface
{
    public function __construct(public readonly string $traceId)
    {
    }
}
