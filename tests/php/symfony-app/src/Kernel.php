<?php

namespace App;

use App\Message\Explode;
use App\Message\Ping;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Exception\RecoverableMessageHandlingException;
use Symfony\Component\Messenger\Exception\UnrecoverableMessageHandlingException;
use Symfony\Component\Messenger\MessageBus;
use Symfony\Component\Messenger\Transport\Serialization\PhpSerializer;
use Symfony\Component\Messenger\Transport\Serialization\Serializer;

// A Symfony kernel reduced to a compiled container's public services: the default bus (its
// handlers record what they got to $TEST_OUTPUT_DIR/record.jsonl) and, as a team would add in
// config/services.yaml, public aliases of the transport serializers. Messenger's own
// messenger.transport.native_php_serializer is private, as in a real container.
class Kernel
{
    private ?object $container = null;

    public function __construct(private string $environment, private bool $debug)
    {
    }

    public function boot(): void
    {
        self::record('booted', ['env' => $this->environment, 'debug' => $this->debug]);
        $bus = new MessageBus([
            Ping::class => ['App\PingHandler' => fn (Ping $ping) => self::record('handled', ['text' => $ping->text])],
            Explode::class => ['App\ExplodeHandler' => fn (Explode $explode) => throw match ($explode->kind) {
                'unrecoverable' => new UnrecoverableMessageHandlingException('invoice 42 has no customer'),
                'recoverable' => new RecoverableMessageHandlingException('the API said 503'),
                'rate-limited' => new RateLimited('the API said 429'),
                default => new \RuntimeException('database went away'),
            }],
        ], onDispatch: fn (Envelope $envelope) => self::record('dispatched', self::describe($envelope)));
        $services = [
            'messenger.default_bus' => $bus,
            'app.json_serializer' => new Serializer(new \Symfony\Component\Serializer\Serializer()),
            'app.php_serializer' => new PhpSerializer(),
        ];
        $this->container = new class($services) {
            public function __construct(private array $services)
            {
            }

            public function has(string $id): bool
            {
                return isset($this->services[$id]);
            }

            public function get(string $id): object
            {
                return $this->services[$id] ?? throw new \LogicException("The \"$id\" service or alias has been removed or inlined when the container was compiled.");
            }
        };
    }

    public function getContainer(): object
    {
        return $this->container;
    }

    public static function record(string $kind, array $fields): void
    {
        $line = json_encode(['kind' => $kind] + $fields, JSON_UNESCAPED_SLASHES).PHP_EOL;
        file_put_contents(getenv('TEST_OUTPUT_DIR').'/record.jsonl', $line, FILE_APPEND);
    }

    /** The stamps of an envelope by short class name, with what the tests check. */
    private static function describe(Envelope $envelope): array
    {
        $stamps = [];
        foreach ($envelope->all() as $class => $list) {
            $stamps[substr(strrchr($class, '\\'), 1)] = count($list);
        }

        return [
            'message' => $envelope->getMessage()::class,
            'stamps' => $stamps,
            'transport' => $envelope->last(\Symfony\Component\Messenger\Stamp\ReceivedStamp::class)?->getTransportName(),
            'retry_count' => \Symfony\Component\Messenger\Stamp\RedeliveryStamp::getRetryCountFromEnvelope($envelope),
            'message_id' => $envelope->last(\Symfony\Component\Messenger\Stamp\TransportMessageIdStamp::class)?->getId(),
            'bus' => $envelope->last(\Symfony\Component\Messenger\Stamp\BusNameStamp::class)?->getBusName(),
        ];
    }
}
