<?php

/*
 * Runs ONE Laravel queue message for the queue-worker kit (command mode), the way
 * `php artisan queue:work sqs` would: through Illuminate\Queue\Worker::process(), so job
 * middleware, events, $tries/maxTries, $backoff, retryUntil, fail(), failed() and the
 * failed_jobs table behave as they do under queue:work. The kit receives, heartbeats, deletes
 * or retries the SQS message; this script only says how the job ended:
 *
 *   0   done (Laravel deleted the job)                      -> the kit deletes the message
 *   65  failed (fail(), maxTries/retryUntil exceeded, ...)  -> the kit dead-letters it at once
 *   75  released (release(), or after an exception)         -> the kit retries it
 *
 * with {"reason": ..., "retry_after_seconds": ...} written to WORKER_RESULT_FILE.
 *
 * Input (set by the kit): the SQS body on stdin, WORKER_MESSAGE_ID, WORKER_RECEIVE_COUNT,
 * WORKER_QUEUE_URL, WORKER_RESULT_FILE, WORKER_MAX_RECEIVE_COUNT. Settings (all optional):
 *   LARAVEL_BASE_PATH         the application's directory (default: the working directory)
 *   LARAVEL_QUEUE_CONNECTION  the connection name jobs and events see (default: sqs)
 *   LARAVEL_TRIES             queue:work --tries: attempts when the job sets no $tries
 *                             (default: WORKER_MAX_RECEIVE_COUNT, the queue's max_receive_count,
 *                             so the last receive's failure runs failed(), writes a failed_jobs
 *                             row and dead-letters with its reason; 0: no limit of Laravel's,
 *                             SQS's redrive moves the message without either). Unlike
 *                             queue:work's 1: every redelivery counts, also a job the kit
 *                             stopped and handed back.
 *   LARAVEL_BACKOFF           queue:work --backoff: seconds before retrying after an exception
 *                             when the job sets no $backoff (default: unset = the kit's backoff)
 *   APP_CONFIG_CACHE          Laravel's: where the cached config is. Unset, the runner ignores
 *                             a config cached at build time (it holds the build's environment,
 *                             not the task's secrets); set it to bootstrap/cache/config.php's
 *                             path to use the cache anyway (config cached at container start).
 *
 * Copy this file and KitJob.php side by side (see worker_image/recipes/README.md).
 */

declare(strict_types=1);

namespace QueueWorkerKit\Laravel;

use Illuminate\Cache\ArrayStore;
use Illuminate\Cache\NullStore;
use Illuminate\Contracts\Cache\Repository as Cache;
use Illuminate\Contracts\Console\Kernel as ConsoleKernel;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Failed\DatabaseUuidFailedJobProvider;
use Illuminate\Queue\Worker;
use Illuminate\Queue\WorkerOptions;
use Throwable;

const EXIT_DONE = 0;
const EXIT_FAILED = 65; // EX_DATAERR: the kit dead-letters the message at once
const EXIT_RETRY = 75; // EX_TEMPFAIL: the kit retries the message
const REASON_MAX_CHARS = 2000;

try {
    exit(main());
} catch (Throwable $error) { // the application failed to boot: not the message's fault
    exit(finish(EXIT_RETRY, ['reason' => describe($error)]));
}

function main(): int
{
    $body = (string) stream_get_contents(STDIN);
    $payload = json_decode($body, true);
    if (!is_array($payload) || !is_string($payload['job'] ?? null)) {
        $what = is_array($payload) && isset($payload['@pointer'])
            ? 'a pointer to a payload in overflow storage, which this runner does not read'
            : 'not JSON with a "job" key';
        return finish(EXIT_FAILED, ['reason' => "Not a Laravel queue payload: the body is $what"]);
    }

    $basePath = rtrim(getenv('LARAVEL_BASE_PATH') ?: (string) getcwd(), '/');
    if (!is_file("$basePath/vendor/autoload.php") || !is_file("$basePath/bootstrap/app.php")) {
        return finish(EXIT_RETRY, ['reason' => "LARAVEL_BASE_PATH=$basePath: no vendor/autoload.php"
            .' or bootstrap/app.php there (set LARAVEL_BASE_PATH to the application directory)']);
    }
    ignoreBuildTimeConfigCache();
    require "$basePath/vendor/autoload.php";
    require __DIR__.'/KitJob.php';
    $app = require "$basePath/bootstrap/app.php";
    $app->make(ConsoleKernel::class)->bootstrap();

    $connection = getenv('LARAVEL_QUEUE_CONNECTION') ?: 'sqs';
    $job = new KitJob(
        $app,
        $body,
        (string) getenv('WORKER_MESSAGE_ID'),
        max(1, (int) getenv('WORKER_RECEIVE_COUNT')),
        $connection,
        (string) getenv('WORKER_QUEUE_URL'),
    );

    // queue:work records failed jobs from a JobFailed listener (WorkCommand::logFailedJob).
    $app['events']->listen(JobFailed::class, function (JobFailed $event) use ($app): void {
        $failer = $app['queue.failer'];
        // A message redriven from the DLQ is the same payload: its uuid, which the
        // database-uuids failer keeps UNIQUE, may have a row of an earlier failure. Forget that
        // row first, as queue:retry does, so the new failure is recorded.
        $uuid = $event->job->uuid();
        if ($uuid !== null && $failer instanceof DatabaseUuidFailedJobProvider) {
            $failer->forget($uuid);
        }
        $failer->log(
            $event->connectionName, $event->job->getQueue(), $event->job->getRawBody(), $event->exception
        );
    });

    $options = new WorkerOptions();
    $tries = getenv('LARAVEL_TRIES');
    $options->maxTries = (int) ($tries !== false && $tries !== '' ? $tries : getenv('WORKER_MAX_RECEIVE_COUNT'));
    $backoff = (string) getenv('LARAVEL_BACKOFF');
    $options->backoff = $backoff === '' ? 0 : $backoff;

    // As queue:work does: Worker counts a job's exceptions for $maxExceptions in the default
    // cache store. One process per message: only a store the processes share counts them.
    $worker = $app->make('queue.worker');
    $worker->setCache($cache = $app->make(Cache::class));
    $store = method_exists($cache, 'getStore') ? $cache->getStore() : null;
    if ($job->maxExceptions() !== null && ($store instanceof ArrayStore || $store instanceof NullStore)) {
        fwrite(STDERR, "\$maxExceptions of {$job->resolveName()} is not counted: the default cache store"
            .' ('.$store::class.') does not outlive this process. Use one the processes share:'
            .' database, redis, memcached or dynamodb (file: the processes of one task only).'.PHP_EOL);
    }

    $error = null;
    try {
        $worker->process($connection, $job, $options);
    } catch (Throwable $error) {
        // Worker::runJob reports what process() rethrows; process() has settled the job.
        if (!isset(Worker::$reportJobExceptions) || Worker::$reportJobExceptions) {
            $app->make(ExceptionHandler::class)->report($error);
        }
    }

    $code = settle($job, $error, kitBacksOff: $backoff === '');
    try {
        $app->terminate(); // as artisan ends: terminating callbacks, deferred functions
    } catch (Throwable $error) { // the job's outcome stands
        fwrite(STDERR, 'After the job: '.describe($error).PHP_EOL);
    }

    return $code;
}

/**
 * A config cached at build time (`php artisan config:cache` in the image) holds the build's
 * environment, and with it Laravel reads neither the environment nor .env: the task's secrets
 * (DB_PASSWORD, ...) and settings would not reach config(). Unless the team sets
 * APP_CONFIG_CACHE itself, point it at a file that does not exist, so config/*.php is read at
 * every boot (Application::getCachedConfigPath() honours APP_CONFIG_CACHE in Laravel 8 to 13).
 * Route, event and view caches are not affected.
 */
function ignoreBuildTimeConfigCache(): void
{
    $name = 'APP_CONFIG_CACHE';
    if (getenv($name) !== false || isset($_SERVER[$name]) || isset($_ENV[$name])) {
        return;
    }
    $path = sys_get_temp_dir().'/queue-worker-kit-no-config-cache/config.php';
    putenv("$name=$path");
    $_SERVER[$name] = $_ENV[$name] = $path;
}

/** The exit code and result for how Laravel left the job. */
function settle(KitJob $job, ?Throwable $error, bool $kitBacksOff): int
{
    if ($job->hasFailed()) {
        return finish(EXIT_FAILED, ['reason' => describe($job->failedWith ?? $error)]);
    }
    if ($job->isDeleted()) {
        return finish(EXIT_DONE, []);
    }
    if ($job->isReleased()) {
        $result = ['reason' => $error ? describe($error) : "Released by the job ({$job->resolveName()})"];
        // After an exception Laravel releases with the job's $backoff, else queue:work's
        // --backoff (0 by default): without either, the kit's exponential backoff applies.
        if ($job->releasedByJob || !$kitBacksOff || $job->backoff() !== null) {
            $result['retry_after_seconds'] = $job->releaseDelay;
        }

        return finish(EXIT_RETRY, $result);
    }

    return finish(EXIT_RETRY, ['reason' => $error
        ? describe($error)
        : "The job ({$job->resolveName()}) was neither deleted nor released"]);
}

function describe(?Throwable $error): string
{
    if ($error === null) {
        return 'Failed without an exception';
    }
    $message = trim($error->getMessage());

    return $error::class.($message === '' ? '' : ": $message");
}

/** Writes the result for the kit (and the reason to stderr, for the job's log) and returns $code. */
function finish(int $code, array $result): int
{
    if (isset($result['reason'])) {
        if (strlen($result['reason']) > REASON_MAX_CHARS) {
            $result['reason'] = substr($result['reason'], 0, REASON_MAX_CHARS).'...';
        }
        fwrite(STDERR, $result['reason'].PHP_EOL);
    }
    $file = getenv('WORKER_RESULT_FILE');
    if ($result && $file) {
        file_put_contents($file, json_encode(
            $result, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE
        ));
    }

    return $code;
}
