<?php

namespace Illuminate\Queue;

use Illuminate\Contracts\Queue\Job as JobContract;
use InvalidArgumentException;
use Throwable;

// laravel/framework src/Illuminate/Queue/InteractsWithQueue.php (without the fakes and the
// DateTimeInterface delay of release()).
trait InteractsWithQueue
{
    public $job;

    public function attempts()
    {
        return $this->job ? $this->job->attempts() : 1;
    }

    public function delete()
    {
        if ($this->job) {
            return $this->job->delete();
        }
    }

    public function fail($exception = null)
    {
        if (is_string($exception)) {
            $exception = new ManuallyFailedException($exception);
        }

        if ($exception instanceof Throwable || is_null($exception)) {
            if ($this->job) {
                return $this->job->fail($exception);
            }
        } else {
            throw new InvalidArgumentException('The fail method requires a string or an instance of Throwable.');
        }
    }

    public function release($delay = 0)
    {
        if ($this->job) {
            return $this->job->release($delay);
        }
    }

    public function setJob(JobContract $job)
    {
        $this->job = $job;

        return $this;
    }
}
