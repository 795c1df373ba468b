<?php

/*
 * Laravel's SQS queue, able to dispatch to a FIFO queue, for Laravel 8 to 11 (producer side).
 *
 * SQS refuses a message to a FIFO queue (`*.fifo`) without a MessageGroupId, and Laravel's
 * SqsQueue sends none before Laravel 12. This queue sends the ids Laravel 12 sends, from the
 * same places on the job, so that a job written for 12 runs the same here:
 *
 *   MessageGroupId          the job's `messageGroup` property, else its messageGroup() method
 *                           (12's ->onGroup() sets the property); a raw push (pushRaw) goes to
 *                           a group named after the queue, as 12 does. A job object with no group
 *                           is refused with an InvalidArgumentException naming its class (12
 *                           leaves that to SQS's "MessageGroupId is required" error).
 *   MessageDeduplicationId  the job's `deduplicator` callable, else its deduplicationId($payload,
 *                           $queue) method, else the payload's `uuid` (unique per dispatch, as
 *                           12's fresh uuid is): SQS drops a second message of one id within
 *                           5 minutes.
 *   DelaySeconds            not sent to a FIFO queue (SQS takes no per-message delay there; 12
 *                           drops it too): a FIFO queue's delay is the queue's own.
 *
 * Standard queues are sent to exactly as by Laravel's SqsQueue. Jobs are received and run by
 * the kit's run-job.php (or queue:work) as any other: the kit keeps each group's order.
 *
 * Use (worker_image/recipes/README.md, "FIFO queues"): copy this file into your application
 * (for example app/Queue/KitSqsFifoQueue.php, with composer.json's "autoload": {"classmap":
 * ["app/Queue/KitSqsFifoQueue.php"]}) and, in a service provider's boot():
 *
 *     Queue::extend('sqs', \QueueWorkerKit\Laravel\KitSqsFifoQueue::connector());
 *
 * which makes every `sqs` connection this queue (its configuration unchanged). Not needed from
 * Laravel 12 on, whose SqsQueue does this itself.
 */

declare(strict_types=1);

namespace QueueWorkerKit\Laravel;

use Closure;
use Illuminate\Queue\Connectors\SqsConnector;
use Illuminate\Queue\SqsQueue;
use Illuminate\Support\Str;
use InvalidArgumentException;

class KitSqsFifoQueue extends SqsQueue
{
    /** The connector to register for the `sqs` driver: Laravel's own, building this queue. */
    public static function connector(): Closure
    {
        return static fn () => new class() extends SqsConnector {
            public function connect(array $config)
            {
                $config += ['prefix' => '', 'suffix' => '', 'after_commit' => null];

                return new KitSqsFifoQueue(
                    parent::connect($config)->getSqs(),
                    $config['queue'],
                    $config['prefix'],
                    $config['suffix'],
                    $config['after_commit']
                );
            }
        };
    }

    public function push($job, $data = '', $queue = null)
    {
        return $this->enqueueUsing(
            $job,
            $this->createPayload($job, $queue ?: $this->default, $data),
            $queue,
            null,
            fn ($payload, $queue) => $this->send($job, $payload, $queue, null)
        );
    }

    public function later($delay, $job, $data = '', $queue = null)
    {
        return $this->enqueueUsing(
            $job,
            $this->createPayload($job, $queue ?: $this->default, $data),
            $queue,
            $delay,
            fn ($payload, $queue, $delay) => $this->send($job, $payload, $queue, $delay)
        );
    }

    public function pushRaw($payload, $queue = null, array $options = [])
    {
        return $this->send(null, $payload, $queue, null);
    }

    /** Sends one payload; `$job` is the dispatched job (an object or a class name) or null. */
    private function send($job, string $payload, ?string $queue, $delay): ?string
    {
        $url = $this->getQueue($queue);
        $message = ['QueueUrl' => $url, 'MessageBody' => $payload];
        if (!str_ends_with($url, '.fifo')) {
            if ($delay !== null) {
                $message['DelaySeconds'] = $this->secondsUntil($delay);
            }

            return $this->sqs->sendMessage($message)->get('MessageId');
        }
        $message['MessageGroupId'] = is_object($job) ? self::groupOf($job, $url) : basename($url);
        $message['MessageDeduplicationId'] = self::deduplicationIdOf($job, $payload, $queue ?: $this->default);

        return $this->sqs->sendMessage($message)->get('MessageId');
    }

    private static function groupOf(object $job, string $url): string
    {
        $group = $job->messageGroup ?? (method_exists($job, 'messageGroup') ? $job->messageGroup() : null);
        if ($group instanceof \UnitEnum) {
            $group = $group instanceof \BackedEnum ? $group->value : $group->name;
        }
        if ($group === null || (string) $group === '') {
            throw new InvalidArgumentException(sprintf(
                '%s has no message group, and the FIFO queue %s needs one: set its public'
                .' $messageGroup property (or a messageGroup() method)',
                get_class($job),
                basename($url)
            ));
        }

        return (string) $group;
    }

    private static function deduplicationIdOf($job, string $payload, string $queue): string
    {
        if (is_object($job) && isset($job->deduplicator) && is_callable($job->deduplicator)) {
            return (string) call_user_func($job->deduplicator, $payload, $queue);
        }
        if (is_object($job) && method_exists($job, 'deduplicationId')) {
            return (string) $job->deduplicationId($payload, $queue);
        }

        return (string) (json_decode($payload, true)['uuid'] ?? Str::uuid());
    }
}
