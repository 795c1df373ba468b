<?php

namespace Illuminate\Queue;

use Illuminate\Container\Container;
use Illuminate\Contracts\Queue\Job;
use RuntimeException;

// What laravel/framework's CallQueuedHandler does for a plain job: unserialize data.command,
// give it the job (InteractsWithQueue), call handle(), delete unless deleted or released;
// failed() calls the command's failed(). No middleware, chains, batches or unique locks.
class CallQueuedHandler
{
    public function __construct(protected Container $container)
    {
    }

    public function call(Job $job, array $data)
    {
        $command = $this->setJobInstanceIfNecessary($job, $this->getCommand($data));

        $command->handle();

        if (! $job->isDeletedOrReleased()) {
            $job->delete();
        }
    }

    protected function getCommand(array $data)
    {
        if (str_starts_with($data['command'], 'O:')) {
            return unserialize($data['command']);
        }

        throw new RuntimeException('Unable to extract job payload.');
    }

    protected function setJobInstanceIfNecessary(Job $job, $instance)
    {
        if (in_array(InteractsWithQueue::class, class_uses($instance), true)) {
            $instance->setJob($job);
        }

        return $instance;
    }

    public function failed(array $data, $e, string $uuid, ?Job $job = null)
    {
        $command = $this->getCommand($data);

        if (! is_null($job)) {
            $command = $this->setJobInstanceIfNecessary($job, $command);
        }

        if (method_exists($command, 'failed')) {
            $command->failed($e);
        }
    }
}
