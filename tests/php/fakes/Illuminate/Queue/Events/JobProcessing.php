<?php

namespace Illuminate\Queue\Events;

class JobProcessing
{
    public function __construct(public $connectionName, public $job)
    {
    }
}
