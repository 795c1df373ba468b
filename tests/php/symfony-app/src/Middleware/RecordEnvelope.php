<?php

namespace App\Middleware;

use App\Recorder;
use App\Stamp\TraceStamp;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Middleware\MiddlewareInterface;
use Symfony\Component\Messenger\Middleware\StackInterface;
use Symfony\Component\Messenger\Stamp\BusNameStamp;
use Symfony\Component\Messenger\Stamp\DelayStamp;
use Symfony\Component\Messenger\Stamp\ReceivedStamp;
use Symfony\Component\Messenger\Stamp\RedeliveryStamp;
use Symfony\Component\Messenger\Stamp\TransportMessageIdStamp;

/** A bus's own middleware (before sending and handling): records each received envelope. */
final class RecordEnvelope implements MiddlewareInterface
{
    public function __construct(private readonly string $bus)
    {
    }

    public function handle(Envelope $envelope, StackInterface $stack): Envelope
    {
        if (null !== $envelope->last(ReceivedStamp::class)) {
            $stamps = [];
            foreach ($envelope->all() as $class => $list) {
                $stamps[substr(strrchr($class, '\\'), 1)] = \count($list);
            }
            ksort($stamps);
            Recorder::record('dispatched', [
                'message' => $envelope->getMessage()::class,
                'on_bus' => $this->bus, // the bus that handles it
                'stamps' => $stamps,
                'transport' => $envelope->last(ReceivedStamp::class)->getTransportName(),
                'retry_count' => RedeliveryStamp::getRetryCountFromEnvelope($envelope),
                'message_id' => $envelope->last(TransportMessageIdStamp::class)?->getId(),
                'bus' => $envelope->last(BusNameStamp::class)?->getBusName(),
                'delay_ms' => $envelope->last(DelayStamp::class)?->getDelay(),
                'trace' => $envelope->last(TraceStamp::class)?->traceId,
            ]);
        }

        return $stack->next()->handle($envelope, $stack);
    }
}
