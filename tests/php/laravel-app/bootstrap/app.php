<?php

// A Laravel application reduced to the services run-job.php and Worker::process() use. What
// it records (events, failed_jobs rows, reported exceptions, handled jobs) goes to files in
// $TEST_OUTPUT_DIR as JSON lines, for the tests to read.

use App\Support\ArrayCache;
use App\Support\Recorder;
use Illuminate\Contracts\Cache\Repository as Cache;
use Illuminate\Contracts\Console\Kernel as ConsoleKernel;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Contracts\Events\Dispatcher;
use Illuminate\Foundation\Application;
use Illuminate\Queue\Worker;

$app = new Application(dirname(__DIR__));

$app->singleton(ConsoleKernel::class, fn () => new class implements ConsoleKernel {
    public function bootstrap()
    {
        Recorder::write('booted', ['base_path' => getcwd()]);
    }
});
$app->terminating(fn () => Recorder::write('terminated'));
$app->singleton('events', fn () => new App\Support\Events());
$app->alias('events', Dispatcher::class);
$app->singleton(Cache::class, fn () => new ArrayCache());
$app->singleton(ExceptionHandler::class, fn () => new class implements ExceptionHandler {
    public function report(Throwable $e)
    {
        Recorder::write('reported', ['exception' => $e::class, 'message' => $e->getMessage()]);
    }
});
// Like DatabaseUuidFailedJobProvider::log(): one failed_jobs row per failed job.
$app->singleton('queue.failer', fn () => new class {
    public function log($connection, $queue, $payload, $exception)
    {
        Recorder::write('failed_jobs', [
            'uuid' => json_decode($payload, true)['uuid'] ?? null,
            'connection' => $connection,
            'queue' => $queue,
            'exception' => $exception::class.': '.$exception->getMessage(),
        ]);
    }
});
$app->singleton('queue.worker', fn ($app) => new Worker(
    null, $app['events'], $app[ExceptionHandler::class], fn () => false
));

return $app;
