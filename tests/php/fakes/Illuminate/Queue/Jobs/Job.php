<?php

namespace Illuminate\Queue\Jobs;

use Illuminate\Contracts\Events\Dispatcher;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\ManuallyFailedException;

// laravel/framework src/Illuminate/Queue/Jobs/Job.php, without the batch and database
// rollbacks of fail() (TimeoutExceededException only) and the unused accessors.
abstract class Job
{
    protected $instance;

    protected $container;

    protected $deleted = false;

    protected $released = false;

    protected $failed = false;

    protected $connectionName;

    protected $queue;

    abstract public function getJobId();

    abstract public function getRawBody();

    public function uuid()
    {
        return $this->payload()['uuid'] ?? null;
    }

    public function fire()
    {
        $payload = $this->payload();

        [$class, $method] = JobName::parse($payload['job']);

        ($this->instance = $this->resolve($class))->{$method}($this, $payload['data']);
    }

    public function delete()
    {
        $this->deleted = true;
    }

    public function isDeleted()
    {
        return $this->deleted;
    }

    public function release($delay = 0)
    {
        $this->released = true;
    }

    public function isReleased()
    {
        return $this->released;
    }

    public function isDeletedOrReleased()
    {
        return $this->isDeleted() || $this->isReleased();
    }

    public function hasFailed()
    {
        return $this->failed;
    }

    public function markAsFailed()
    {
        $this->failed = true;
    }

    public function fail($e = null)
    {
        $this->markAsFailed();

        if ($this->isDeleted()) {
            return;
        }

        try {
            $this->delete();

            $this->failed($e);
        } finally {
            $this->resolve(Dispatcher::class)->dispatch(new JobFailed(
                $this->connectionName, $this, $e ?: new ManuallyFailedException
            ));
        }
    }

    protected function failed($e)
    {
        $payload = $this->payload();

        [$class] = JobName::parse($payload['job']);

        if (method_exists($this->instance = $this->resolve($class), 'failed')) {
            $this->instance->failed($payload['data'], $e, $payload['uuid'] ?? '', $this);
        }
    }

    protected function resolve($class)
    {
        return $this->container->make($class);
    }

    public function payload()
    {
        return json_decode($this->getRawBody(), true);
    }

    public function maxTries()
    {
        return $this->payload()['maxTries'] ?? null;
    }

    public function maxExceptions()
    {
        return $this->payload()['maxExceptions'] ?? null;
    }

    public function shouldFailOnTimeout()
    {
        return $this->payload()['failOnTimeout'] ?? false;
    }

    public function backoff()
    {
        return $this->payload()['backoff'] ?? $this->payload()['delay'] ?? null;
    }

    public function timeout()
    {
        return $this->payload()['timeout'] ?? null;
    }

    public function retryUntil()
    {
        return $this->payload()['retryUntil'] ?? null;
    }

    public function getName()
    {
        return $this->payload()['job'];
    }

    public function resolveName()
    {
        return JobName::resolve($this->getName(), $this->payload());
    }

    public function resolveQueuedJobClass()
    {
        return $this->payload()['data']['commandName'] ?? $this->getName();
    }

    public function getConnectionName()
    {
        return $this->connectionName;
    }

    public function getQueue()
    {
        return $this->queue;
    }
}
