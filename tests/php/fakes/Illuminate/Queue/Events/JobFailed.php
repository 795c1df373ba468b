<?php

namespace Illuminate\Queue\Events;

class JobFailed
{
    public function __construct(public $connectionName, public $job, public $exception)
    {
    }
}
