<?php

// The application, as a Laravel 8 to 10 skeleton creates it: the container, the console kernel
// and the exception handler (no HTTP kernel: this application only runs queue jobs).

$app = new Illuminate\Foundation\Application(
    $_ENV['APP_BASE_PATH'] ?? dirname(__DIR__)
);

$app->singleton(Illuminate\Contracts\Console\Kernel::class, App\Console\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
