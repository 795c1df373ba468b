<?php

namespace App\Providers;

use App\Support\AsyncAwsSqsClient;
use App\Support\Recorder;
use Illuminate\Queue\Events\JobExceptionOccurred;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Events\JobProcessed;
use Illuminate\Queue\Events\JobProcessing;
use Illuminate\Support\Facades\Queue;
use Illuminate\Support\ServiceProvider;
use QueueWorkerKit\Laravel\KitSqsFifoQueue;

class AppServiceProvider extends ServiceProvider
{
    public function register()
    {
        // Laravel's SqsConnector, SqsQueue and SqsJob want aws-sdk-php's client, which Debian
        // does not package: the adapter over async-aws takes its name.
        if (! class_exists('Aws\Sqs\SqsClient')) {
            class_alias(AsyncAwsSqsClient::class, 'Aws\Sqs\SqsClient');
        }
    }

    public function boot()
    {
        Recorder::write('booted', ['laravel' => $this->app->version(), 'base_path' => $this->app->basePath()]);

        // The queue events jobs run under, as Laravel's own dispatcher sends them.
        $events = [JobProcessing::class, JobProcessed::class, JobExceptionOccurred::class, JobFailed::class];
        if (class_exists('Illuminate\Queue\Events\JobReleasedAfterException')) { // Laravel 9.21+
            $events[] = 'Illuminate\Queue\Events\JobReleasedAfterException';
        }
        $this->app['events']->listen($events, function ($event) {
            Recorder::write('event', ['event' => class_basename($event), 'queue' => $event->job->getQueue()]);
        });

        // Dispatches to FIFO queues, as worker_image/recipes/README.md "FIFO queues" says (the
        // recipe is there wherever the kit's image stage or source is).
        if (class_exists(KitSqsFifoQueue::class)) {
            Queue::extend('sqs', KitSqsFifoQueue::connector());
        }

        $this->app->terminating(fn () => Recorder::write('terminated'));
    }
}
