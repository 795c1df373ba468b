<?php

namespace Illuminate\Queue\Events;

class JobReleased
{
    public function __construct(public $connectionName, public $job)
    {
    }
}
