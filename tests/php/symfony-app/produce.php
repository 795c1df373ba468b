<?php

// Messenger's own producer: dispatches messages on the default bus, which routes them to the
// `async` transport (Amazon SQS, async-aws) at MESSENGER_TRANSPORT_DSN, encoded by the
// transport's serializer: the native PHP serializer in prod, the JSON one with APP_ENV=json.
// Reads a JSON list from stdin: [{"message": "Ping", "argument": "hello", "delay_ms": 0,
// "trace": "t-1", "retry_count": 1, "bus": "events", "group": "g-1", "deduplication_id": "d-1"},
// ...]; all but message and argument are optional (retry_count: a RedeliveryStamp, as
// Messenger's retry re-sends a failed message; bus: the events bus instead of the default one;
// group and deduplication_id: an AmazonSqsFifoStamp, the ids a FIFO queue's message is sent
// with; without it the transport sends its own defaults). Prints the count sent.

use App\Kernel;
use App\Stamp\TraceStamp;
use Symfony\Component\Dotenv\Dotenv;
use Symfony\Component\Messenger\Bridge\AmazonSqs\Transport\AmazonSqsFifoStamp;
use Symfony\Component\Messenger\Stamp\DelayStamp;
use Symfony\Component\Messenger\Stamp\RedeliveryStamp;
use Symfony\Component\Messenger\Stamp\SentStamp;

require __DIR__.'/vendor/autoload.php';

(new Dotenv())->bootEnv(__DIR__.'/.env', 'prod');
$kernel = new Kernel($_SERVER['APP_ENV'], (bool) $_SERVER['APP_DEBUG']);
$kernel->boot();
$buses = ['default' => 'messenger.default_bus', 'events' => 'app.events_bus'];

$sent = 0;
foreach (json_decode((string) stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR) as $spec) {
    $class = 'App\\Message\\'.$spec['message'];
    $stamps = [];
    if (isset($spec['delay_ms'])) {
        $stamps[] = new DelayStamp($spec['delay_ms']);
    }
    if (isset($spec['trace'])) {
        $stamps[] = new TraceStamp($spec['trace']);
    }
    if (isset($spec['retry_count'])) {
        $stamps[] = new RedeliveryStamp($spec['retry_count']);
    }
    if (isset($spec['group']) || isset($spec['deduplication_id'])) {
        $stamps[] = new AmazonSqsFifoStamp($spec['group'] ?? null, $spec['deduplication_id'] ?? null);
    }
    $bus = $kernel->getContainer()->get($buses[$spec['bus'] ?? 'default']);
    $envelope = $bus->dispatch(new $class($spec['argument']), $stamps);
    if (null === $envelope->last(SentStamp::class)) {
        fwrite(STDERR, "$class was not sent to a transport\n");
        exit(1);
    }
    ++$sent;
}
echo $sent, PHP_EOL;
