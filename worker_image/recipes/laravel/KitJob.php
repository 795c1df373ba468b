<?php

/*
 * The queue-worker kit's Laravel job: one SQS message handed over by the kit, seen by Laravel's
 * queue machinery as a job of the SQS connection. Part of run-job.php; copy both files together.
 */

declare(strict_types=1);

namespace QueueWorkerKit\Laravel;

use Illuminate\Container\Container;
use Illuminate\Contracts\Queue\Job as JobContract;
use Illuminate\Queue\Jobs\Job;
use Illuminate\Queue\ManuallyFailedException;
use Throwable;

/**
 * Like Laravel's SqsJob, except that the kit owns the message: delete() and release() only
 * record what Laravel decided (run-job.php turns that into the exit code), and attempts() is
 * SQS's ApproximateReceiveCount as the kit received it.
 */
final class KitJob extends Job implements JobContract
{
    /** The delay of the last release(), in seconds; null while not released. */
    public ?int $releaseDelay = null;

    /** True when the job itself released (in handle() or a middleware), false after an exception. */
    public bool $releasedByJob = false;

    /** What fail() was called with (ManuallyFailedException for fail() without one). */
    public ?Throwable $failedWith = null;

    private bool $firing = false;

    public function __construct(
        Container $container,
        private readonly string $body,
        private readonly string $messageId,
        private readonly int $receiveCount,
        string $connectionName,
        string $queue,
    ) {
        $this->container = $container;
        $this->connectionName = $connectionName;
        $this->queue = $queue;
    }

    public function fire()
    {
        $this->firing = true;
        try {
            parent::fire();
        } finally {
            $this->firing = false;
        }
    }

    public function release($delay = 0)
    {
        parent::release($delay);
        $this->releaseDelay = max(0, (int) $delay);
        $this->releasedByJob = $this->firing;
    }

    public function fail($e = null)
    {
        // Laravel 9.48+ turns fail('message') into a ManuallyFailedException before it gets
        // here; older InteractsWithQueue (Laravel 8) hands the string on: make it the same
        // exception, so failed(), JobFailed and failed_jobs get a Throwable on every version.
        if (is_string($e)) {
            $e = new ManuallyFailedException($e);
        }
        $this->failedWith = $e ?? new ManuallyFailedException('The job called fail().');
        parent::fail($e);
    }

    public function attempts()
    {
        return $this->receiveCount;
    }

    public function getJobId()
    {
        return $this->messageId;
    }

    public function getRawBody()
    {
        return $this->body;
    }
}
