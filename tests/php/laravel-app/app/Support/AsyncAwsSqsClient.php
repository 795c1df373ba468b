<?php

namespace App\Support;

use AsyncAws\Sqs\SqsClient;
use AsyncAws\Sqs\ValueObject\Message;
use AsyncAws\Sqs\ValueObject\MessageAttributeValue;
use BadMethodCallException;

/**
 * Stands in for aws-sdk-php's Aws\Sqs\SqsClient (not packaged by Debian) over async-aws's
 * SqsClient (php-async-aws-sqs), for the calls Laravel 8 to 10 make on it: SqsQueue's size(),
 * push()/later() (sendMessage), pop() (receiveMessage), clear() (purgeQueue) and SqsJob's
 * delete() and release() (deleteMessage, changeMessageVisibility). Arguments are the AWS SDK's
 * arrays; results are AwsResult arrays of the SDK's shape.
 *
 * AppServiceProvider names this class Aws\Sqs\SqsClient when aws-sdk-php is not installed, so
 * Laravel's own SqsConnector constructs it with the sqs connection's configuration ('region',
 * 'credentials' from key/secret, and 'endpoint', else AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL).
 */
class AsyncAwsSqsClient
{
    private SqsClient $sqs;

    public function __construct(array $args = [])
    {
        $credentials = $args['credentials'] ?? [];
        $endpoint = $args['endpoint'] ?? (getenv('AWS_ENDPOINT_URL_SQS') ?: getenv('AWS_ENDPOINT_URL'));
        $this->sqs = new SqsClient(array_filter([
            'region' => $args['region'] ?? null,
            'endpoint' => $endpoint ?: null,
            'accessKeyId' => $credentials['key'] ?? null,
            'accessKeySecret' => $credentials['secret'] ?? null,
            'sessionToken' => $credentials['token'] ?? null,
        ], fn ($value) => $value !== null && $value !== ''));
    }

    public function sendMessage(array $args): AwsResult
    {
        $result = $this->sqs->sendMessage($args);

        return new AwsResult([
            'MessageId' => $result->getMessageId(),
            'MD5OfMessageBody' => $result->getMd5OfMessageBody(),
        ]);
    }

    public function receiveMessage(array $args): AwsResult
    {
        $messages = array_map(fn (Message $message) => [
            'MessageId' => $message->getMessageId(),
            'ReceiptHandle' => $message->getReceiptHandle(),
            'MD5OfBody' => $message->getMd5OfBody(),
            'Body' => $message->getBody(),
            'Attributes' => $message->getAttributes(),
            'MessageAttributes' => array_map(fn (MessageAttributeValue $value) => array_filter([
                'DataType' => $value->getDataType(),
                'StringValue' => $value->getStringValue(),
                'BinaryValue' => $value->getBinaryValue(),
            ], fn ($field) => $field !== null), $message->getMessageAttributes()),
        ], $this->sqs->receiveMessage($args)->getMessages());

        // The SDK leaves "Messages" out when nothing was received; SqsQueue::pop() checks null.
        return new AwsResult($messages ? ['Messages' => $messages] : []);
    }

    public function deleteMessage(array $args): AwsResult
    {
        $this->sqs->deleteMessage($args)->resolve();

        return new AwsResult([]);
    }

    public function changeMessageVisibility(array $args): AwsResult
    {
        $this->sqs->changeMessageVisibility($args)->resolve();

        return new AwsResult([]);
    }

    public function getQueueAttributes(array $args): AwsResult
    {
        return new AwsResult(['Attributes' => $this->sqs->getQueueAttributes($args)->getAttributes()]);
    }

    public function purgeQueue(array $args): AwsResult
    {
        $this->sqs->purgeQueue($args)->resolve();

        return new AwsResult([]);
    }

    public function __call(string $method, array $arguments): mixed
    {
        throw new BadMethodCallException(static::class." does not implement SqsClient::$method()");
    }
}
