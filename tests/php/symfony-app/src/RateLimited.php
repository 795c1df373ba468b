<?php

namespace App;

use Symfony\Component\Messenger\Exception\RecoverableMessageHandlingException;

// Messenger 7.2 gave RecoverableMessageHandlingException a retry delay (getRetryDelay(), in
// ms); the copied 7.1 class has none, so this one adds it as 7.2 does.
final class RateLimited extends RecoverableMessageHandlingException
{
    public function getRetryDelay(): ?int
    {
        return 12_500;
    }
}
