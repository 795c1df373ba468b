<?php

namespace Illuminate\Queue\Events;

class JobExceptionOccurred
{
    public function __construct(public $connectionName, public $job, public $exception)
    {
    }
}
