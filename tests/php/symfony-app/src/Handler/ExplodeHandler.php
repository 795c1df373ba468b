<?php

namespace App\Handler;

use App\Message\Explode;
use Symfony\Component\Messenger\Exception\RecoverableMessageHandlingException;
use Symfony\Component\Messenger\Exception\UnrecoverableMessageHandlingException;

final class ExplodeHandler
{
    public function __invoke(Explode $explode): void
    {
        throw match ($explode->kind) {
            'unrecoverable' => new UnrecoverableMessageHandlingException('invoice 42 has no customer'),
            'recoverable' => new RecoverableMessageHandlingException('the API said 503'),
            'rate-limited' => self::rateLimited(),
            default => new \RuntimeException('database went away'),
        };
    }

    /** Messenger 7.2+ takes a retry delay (ms) as the 4th argument; older versions have none. */
    private static function rateLimited(): RecoverableMessageHandlingException
    {
        return method_exists(RecoverableMessageHandlingException::class, 'getRetryDelay')
            ? new RecoverableMessageHandlingException('the API said 429', 0, null, 12_500)
            : new RecoverableMessageHandlingException('the API said 429');
    }
}
