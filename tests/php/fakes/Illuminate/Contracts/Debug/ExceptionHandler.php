<?php

namespace Illuminate\Contracts\Debug;

use Throwable;

interface ExceptionHandler
{
    public function report(Throwable $e);
}
