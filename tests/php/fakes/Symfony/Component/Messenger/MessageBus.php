<?php

namespace Symfony\Component\Messenger;

use Symfony\Component\Messenger\Exception\HandlerFailedException;
use Symfony\Component\Messenger\Exception\LogicException;
use Symfony\Component\Messenger\Exception\NoHandlerForMessageException;
use Symfony\Component\Messenger\Stamp\BusNameStamp;
use Symfony\Component\Messenger\Stamp\HandledStamp;
use Symfony\Component\Messenger\Stamp\ReceivedStamp;

// A bus with the default middleware reduced to what a received message meets:
// AddBusNameStampMiddleware; SendMessageMiddleware, which would send a routed message to its
// transport again unless it carries a ReceivedStamp (here: an error, the message is routed);
// HandleMessageMiddleware: every handler of the class, HandledStamp per handler, their
// exceptions wrapped in one HandlerFailedException, NoHandlerForMessageException when none.
class MessageBus implements MessageBusInterface
{
    /** @param array<class-string, callable[]> $handlers */
    public function __construct(private array $handlers, private string $busName = 'messenger.bus.default', private $onDispatch = null)
    {
    }

    public function dispatch(object $message, array $stamps = []): Envelope
    {
        $envelope = Envelope::wrap($message, $stamps);
        if (null === $envelope->last(BusNameStamp::class)) {
            $envelope = $envelope->with(new BusNameStamp($this->busName));
        }
        if ($this->onDispatch) {
            ($this->onDispatch)($envelope);
        }
        if (null === $envelope->last(ReceivedStamp::class)) {
            throw new LogicException(sprintf('"%s" is routed to a transport: dispatching it would send it again.', $envelope->getMessage()::class));
        }

        $handlers = $this->handlers[$envelope->getMessage()::class] ?? [];
        if (!$handlers) {
            throw new NoHandlerForMessageException(sprintf('No handler for message "%s".', $envelope->getMessage()::class));
        }
        $exceptions = [];
        foreach ($handlers as $name => $handler) {
            try {
                $envelope = $envelope->with(new HandledStamp($handler($envelope->getMessage()), (string) $name));
            } catch (\Throwable $e) {
                $exceptions[] = $e;
            }
        }
        if ($exceptions) {
            throw new HandlerFailedException($envelope, $exceptions);
        }

        return $envelope;
    }
}
