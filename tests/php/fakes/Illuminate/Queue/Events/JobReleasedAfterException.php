<?php

namespace Illuminate\Queue\Events;

class JobReleasedAfterException
{
    public function __construct(public $connectionName, public $job, public $backoff = null, public $exception = null)
    {
    }
}
