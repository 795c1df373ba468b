<?php

namespace App\Exceptions;

use App\Support\Recorder;
use Illuminate\Foundation\Exceptions\Handler as ExceptionHandler;
use Throwable;

// Laravel's exception handler: reported exceptions are logged (config/logging.php: stderr) and
// recorded for the tests.
class Handler extends ExceptionHandler
{
    public function register()
    {
        $this->reportable(function (Throwable $e) {
            Recorder::write('reported', ['exception' => $e::class, 'message' => $e->getMessage()]);
        });
    }
}
