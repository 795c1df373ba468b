<?php

/*
 * Runs ONE Symfony Messenger message for the queue-worker kit (command mode), the way
 * `bin/console messenger:consume async` would with the Amazon SQS transport: the body and
 * headers are decoded by the transport's serializer exactly as AmazonSqsReceiver does (headers
 * from the SQS message attributes, including the X-Symfony-Messenger attribute), and the
 * envelope is dispatched on the bus with the stamps a received message carries. The kit
 * receives, heartbeats, deletes or retries the SQS message; this script says how it ended:
 *
 *   0   handled                                                    -> the kit deletes it
 *   65  undecodable, or an UnrecoverableExceptionInterface (also   -> the kit dead-letters it
 *       when every exception wrapped in HandlerFailedException is)
 *   75  the application cannot boot (no vendor/, a cache it        -> the kit retries it
 *       cannot build, a service that is not public)
 *   75  a RecoverableExceptionInterface or any other exception     -> the kit retries it
 *
 * with {"reason": ..., "retry_after_seconds": ...} written to WORKER_RESULT_FILE. Retries and
 * the dead-letter queue are the kit's (its backoff, the queue's max_receive_count), not
 * Messenger's retry_strategy and failure_transport.
 *
 * Input (set by the kit): the SQS body on stdin, WORKER_MESSAGE_ID, WORKER_RECEIVE_COUNT,
 * WORKER_MESSAGE_ATTRIBUTES_FILE (the attributes as JSON in a file, whatever their size; a kit
 * before it: WORKER_MESSAGE_ATTRIBUTES, which the kit now sets only up to 64 KiB),
 * WORKER_RESULT_FILE. Settings (all optional):
 *   SYMFONY_PROJECT_DIR         the project directory (default: the working directory)
 *   SYMFONY_KERNEL_CLASS        the kernel class (default: App\Kernel)
 *   APP_ENV, APP_DEBUG          as for bin/console (defaults: prod, and debug off in prod);
 *                               .env files are loaded with symfony/dotenv when installed
 *   SYMFONY_TRANSPORT           the transport name in ReceivedStamp (default: on a worker of
 *                               several queues, WORKER_QUEUES, the message's queue name,
 *                               WORKER_QUEUE_NAME; else async)
 *   SYMFONY_SERIALIZER_SERVICE  a PUBLIC service id of the transport's serializer (default:
 *                               messenger.transport.native_php_serializer, Messenger's
 *                               default, built here when it is not public)
 *   SYMFONY_BUS                 a PUBLIC service id of the bus (default: messenger.default_bus)
 *
 * The image's kit stage copies it to /app/bin/queue-worker/run-message.php (the handler is
 * `php /app/bin/queue-worker/run-message.php`); warm the prod cache at build time
 * (`bin/console cache:warmup`), as the container runs it read-only (worker_image/recipes/README.md).
 * Tested against Symfony 5.4; written for 5.4 and 6.4 (and 7.2's retry delay): where they
 * differ, it checks what exists.
 */

declare(strict_types=1);

namespace QueueWorkerKit\Symfony;

use Symfony\Component\Dotenv\Dotenv;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Exception\HandlerFailedException;
use Symfony\Component\Messenger\Exception\MessageDecodingFailedException;
use Symfony\Component\Messenger\Exception\RecoverableExceptionInterface;
use Symfony\Component\Messenger\Exception\UnrecoverableExceptionInterface;
use Symfony\Component\Messenger\Stamp\ConsumedByWorkerStamp;
use Symfony\Component\Messenger\Stamp\ReceivedStamp;
use Symfony\Component\Messenger\Stamp\RedeliveryStamp;
use Symfony\Component\Messenger\Stamp\TransportMessageIdStamp;
use Symfony\Component\Messenger\Transport\Serialization\PhpSerializer;
use Symfony\Component\Messenger\Transport\Serialization\SerializerInterface;
use LogicException;
use Throwable;
use TypeError;

const EXIT_DONE = 0;
const EXIT_FAILED = 65; // EX_DATAERR: the kit dead-letters the message at once
const EXIT_RETRY = 75; // EX_TEMPFAIL: the kit retries the message
const REASON_MAX_CHARS = 2000;
// The SQS message attribute that carries the headers SQS cannot (Amazon SQS transport's Connection).
const HEADERS_ATTRIBUTE = 'X-Symfony-Messenger';
const NATIVE_PHP_SERIALIZER = 'messenger.transport.native_php_serializer';

try {
    exit(main());
} catch (Throwable $error) { // the kernel or the container failed: not the message's fault
    exit(finish(EXIT_RETRY, ['reason' => describe($error)]));
}

function main(): int
{
    $body = (string) stream_get_contents(STDIN);
    $projectDir = rtrim(getenv('SYMFONY_PROJECT_DIR') ?: (string) getcwd(), '/');
    if (!is_file("$projectDir/vendor/autoload.php")) {
        return finish(EXIT_RETRY, ['reason' => "SYMFONY_PROJECT_DIR=$projectDir: no vendor/autoload.php"
            .' there (set SYMFONY_PROJECT_DIR to the project directory)']);
    }
    require "$projectDir/vendor/autoload.php";
    $container = bootKernel($projectDir);

    try {
        $serializer = transportSerializer($container);
        $bus = $container->get(getenv('SYMFONY_BUS') ?: 'messenger.default_bus');
        $attributes = json_decode(messageAttributes(), true, 512, JSON_THROW_ON_ERROR);
    } catch (Throwable $error) {
        return finish(EXIT_RETRY, ['reason' => describe($error)]);
    }

    try {
        $envelope = $serializer->decode(['body' => $body, 'headers' => headersFrom($attributes)]);
    } catch (MessageDecodingFailedException|TypeError $error) {
        // TypeError: Messenger 5.4's PhpSerializer::decode() of a body that unserializes to no
        // Envelope (6.4 throws MessageDecodingFailedException). Other exceptions of a custom
        // serializer (a payload store that is down) are retried, below.
        return finish(EXIT_FAILED, ['reason' => describe($error)]);
    } catch (Throwable $error) {
        return finish(EXIT_RETRY, ['reason' => describe($error)]);
    }

    try {
        $bus->dispatch(received($envelope));
    } catch (Throwable $error) {
        $result = ['reason' => describe($error)];
        if (!shouldRetry($error)) {
            return finish(EXIT_FAILED, $result);
        }
        $delayMs = retryDelayMs($error);
        if ($delayMs !== null) {
            $result['retry_after_seconds'] = (int) ceil($delayMs / 1000);
        }

        return finish(EXIT_RETRY, $result);
    }

    return finish(EXIT_DONE, []);
}

/**
 * The message attributes' JSON (SQS's shape): from the file the kit names in
 * WORKER_MESSAGE_ATTRIBUTES_FILE (any size), else from WORKER_MESSAGE_ATTRIBUTES (a kit before
 * the file; the kit sets it only while it is at most 64 KiB), else none.
 */
function messageAttributes(): string
{
    $file = getenv('WORKER_MESSAGE_ATTRIBUTES_FILE');
    if ($file === false || $file === '') {
        return getenv('WORKER_MESSAGE_ATTRIBUTES') ?: '{}';
    }
    $json = file_get_contents($file);
    if ($json === false) {
        throw new LogicException("WORKER_MESSAGE_ATTRIBUTES_FILE=$file: cannot be read");
    }

    return $json;
}

/** Boots the kernel as bin/console does and returns its container. */
function bootKernel(string $projectDir): object
{
    if (class_exists(Dotenv::class) && (is_file("$projectDir/.env") || is_file("$projectDir/.env.local.php"))) {
        (new Dotenv())->bootEnv("$projectDir/.env", 'prod');
    }
    $env = $_SERVER['APP_ENV'] ?? $_ENV['APP_ENV'] ?? (getenv('APP_ENV') ?: 'prod');
    $debug = $_SERVER['APP_DEBUG'] ?? $_ENV['APP_DEBUG'] ?? getenv('APP_DEBUG');
    $debug = $debug === false || $debug === '' ? $env !== 'prod' : filter_var($debug, FILTER_VALIDATE_BOOL);
    $kernelClass = getenv('SYMFONY_KERNEL_CLASS') ?: 'App\Kernel';
    $kernel = new $kernelClass($env, $debug);
    $kernel->boot();

    return $kernel->getContainer();
}

/** The transport's serializer: a public service, or Messenger's PhpSerializer (no dependencies). */
function transportSerializer(object $container): SerializerInterface
{
    $id = getenv('SYMFONY_SERIALIZER_SERVICE') ?: NATIVE_PHP_SERIALIZER;
    if ($container->has($id)) {
        return $container->get($id);
    }
    if ($id === NATIVE_PHP_SERIALIZER) {
        return new PhpSerializer();
    }
    throw new LogicException("SYMFONY_SERIALIZER_SERVICE=$id: the container has no public service of that"
        .' id; add a public alias to it in config/services.yaml (worker_image/recipes/README.md)');
}

/**
 * The headers AmazonSqsReceiver hands to the serializer: the JSON object in X-Symfony-Messenger,
 * then every other attribute of DataType String (Number and Binary ones are skipped, as there).
 */
function headersFrom(array $attributes): array
{
    $headers = [];
    $special = $attributes[HEADERS_ATTRIBUTE] ?? null;
    if (($special['DataType'] ?? null) === 'String') {
        $headers = json_decode($special['StringValue'] ?? '', true);
        if (!is_array($headers)) {
            throw new MessageDecodingFailedException('The '.HEADERS_ATTRIBUTE.' message attribute is not a JSON object.');
        }
        unset($attributes[HEADERS_ATTRIBUTE]);
    }
    foreach ($attributes as $name => $attribute) {
        if (($attribute['DataType'] ?? null) === 'String') {
            $headers[$name] = $attribute['StringValue'] ?? '';
        }
    }

    return $headers;
}

/**
 * The transport the message counts as received from: SYMFONY_TRANSPORT; else, on a worker of
 * several queues (WORKER_QUEUES), the message's queue (WORKER_QUEUE_NAME), so that queues named
 * like the app's transports reach the handlers bound to theirs (from_transport), as
 * `messenger:consume high default` does; else async.
 */
function transportName(): string
{
    $queue = (string) getenv('WORKER_QUEUE_NAME');
    $perQueue = (string) getenv('WORKER_QUEUES') !== '' && $queue !== '';
    return getenv('SYMFONY_TRANSPORT') ?: ($perQueue ? $queue : 'async');
}

/**
 * The envelope as the Worker dispatches a received message: ReceivedStamp (so it is handled,
 * not sent again), ConsumedByWorkerStamp, the SQS message id, and a RedeliveryStamp on a
 * redelivery: its retry count is Messenger's meaning, the retries before this run (SQS
 * redeliveries add to any count the message was sent with by Messenger's own retry).
 */
function received(Envelope $envelope): Envelope
{
    $stamps = [
        new ReceivedStamp(transportName()),
        new ConsumedByWorkerStamp(),
        new TransportMessageIdStamp((string) getenv('WORKER_MESSAGE_ID')),
    ];
    $receiveCount = max(1, (int) getenv('WORKER_RECEIVE_COUNT'));
    if ($receiveCount > 1) {
        $stamps[] = new RedeliveryStamp(RedeliveryStamp::getRetryCountFromEnvelope($envelope) + $receiveCount - 1);
    }

    return $envelope->with(...$stamps);
}

/** Messenger's own rule (SendFailedMessageForRetryListener::shouldRetry), minus max_retries. */
function shouldRetry(Throwable $error): bool
{
    if ($error instanceof RecoverableExceptionInterface) {
        return true;
    }
    if ($error instanceof HandlerFailedException) {
        foreach (wrapped($error) as $nested) {
            if ($nested instanceof RecoverableExceptionInterface || !$nested instanceof UnrecoverableExceptionInterface) {
                return true;
            }
        }

        return false;
    }

    return !$error instanceof UnrecoverableExceptionInterface;
}

/** The delay a RecoverableMessageHandlingException asks for (Messenger >= 7.2), in ms. */
function retryDelayMs(Throwable $error): ?int
{
    foreach ($error instanceof HandlerFailedException ? wrapped($error) : [$error] as $cause) {
        if ($cause instanceof RecoverableExceptionInterface && method_exists($cause, 'getRetryDelay')) {
            return $cause->getRetryDelay();
        }
    }

    return null;
}

/** @return Throwable[] the handlers' exceptions (getNestedExceptions before Messenger 6.4) */
function wrapped(HandlerFailedException $error): array
{
    return method_exists($error, 'getWrappedExceptions') ? $error->getWrappedExceptions() : $error->getNestedExceptions();
}

function describe(Throwable $error): string
{
    $causes = $error instanceof HandlerFailedException ? wrapped($error) : [$error];

    return implode('; ', array_map(static function (Throwable $cause): string {
        $message = trim($cause->getMessage());

        return $cause::class.($message === '' ? '' : ": $message");
    }, array_values($causes)));
}

/** Writes the result for the kit (and the reason to stderr, for the job's log) and returns $code. */
function finish(int $code, array $result): int
{
    if (isset($result['reason'])) {
        if (strlen($result['reason']) > REASON_MAX_CHARS) {
            $result['reason'] = substr($result['reason'], 0, REASON_MAX_CHARS).'...';
        }
        fwrite(STDERR, $result['reason'].PHP_EOL);
    }
    $file = getenv('WORKER_RESULT_FILE');
    if ($result && $file) {
        file_put_contents($file, json_encode(
            $result, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE
        ));
    }

    return $code;
}
