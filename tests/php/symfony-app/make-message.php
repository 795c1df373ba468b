<?php

// Prints {"body": ..., "attributes": ...}: the SQS message the Amazon SQS transport sends for
// a message dispatched on the default bus (so with its BusNameStamp), as the kit hands it over
// (attributes in SQS's shape, as in WORKER_MESSAGE_ATTRIBUTES).
// Usage: php make-message.php php|json 'App\Message\Ping' ARG [--retry-count N] [--no-stamps]

use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Stamp\BusNameStamp;
use Symfony\Component\Messenger\Stamp\RedeliveryStamp;
use Symfony\Component\Messenger\Transport\Serialization\PhpSerializer;
use Symfony\Component\Messenger\Transport\Serialization\Serializer;

require __DIR__.'/vendor/autoload.php';

$options = getopt('', ['retry-count:', 'no-stamps'], $rest);
[$format, $class, $argument] = array_slice($argv, $rest);
$stamps = isset($options['no-stamps']) ? [] : [new BusNameStamp('messenger.bus.default')];
if (isset($options['retry-count'])) {
    $stamps[] = new RedeliveryStamp((int) $options['retry-count']);
}
$envelope = new Envelope(new $class($argument), $stamps);
$encoded = 'php' === $format
    ? (new PhpSerializer())->encode($envelope)
    : (new Serializer(new Symfony\Component\Serializer\Serializer()))->encode($envelope);

// symfony/amazon-sqs-messenger Transport/Connection::send(): headers SQS accepts as message
// attribute names become String attributes; the others travel as JSON in X-Symfony-Messenger.
$attributes = [];
$specialHeaders = [];
foreach ($encoded['headers'] ?? [] as $name => $value) {
    if ('.' === $name[0] || 'X-Symfony-Messenger' === $name || \strlen($name) > 256 || str_ends_with($name, '.') || str_starts_with($name, 'AWS.') || str_starts_with($name, 'Amazon.') || preg_match('/([^a-zA-Z0-9_\.-]+|\.\.)/', $name)) {
        $specialHeaders[$name] = $value;

        continue;
    }
    $attributes[$name] = ['DataType' => 'String', 'StringValue' => $value];
}
if ($specialHeaders) {
    $attributes['X-Symfony-Messenger'] = ['DataType' => 'String', 'StringValue' => json_encode($specialHeaders)];
}

echo json_encode(['body' => $encoded['body'], 'attributes' => (object) $attributes]);
