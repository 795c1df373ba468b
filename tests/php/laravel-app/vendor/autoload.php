<?php

// The test application's "Composer" autoloader. Composer's registry is unreachable where the
// kit is built, so the framework comes from Debian's archive (php-laravel-framework,
// php-async-aws-sqs): their autoload.php files, found on PHP's include_path (/usr/share/php),
// register the real Illuminate\, AsyncAws\ and dependency classes and load Laravel's helpers.
// App\ is PSR-4 in app/, as composer.json's "autoload" of a Laravel skeleton says.

foreach (['Illuminate/autoload.php', 'AsyncAws/Sqs/autoload.php'] as $autoloader) {
    if (stream_resolve_include_path($autoloader) === false) {
        fwrite(STDERR, "No $autoloader on the include_path: install php-laravel-framework and php-async-aws-sqs".PHP_EOL);
        exit(1);
    }
    require_once $autoloader;
}

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'App\\')) {
        $file = dirname(__DIR__).'/app/'.str_replace('\\', '/', substr($class, 4)).'.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

// The kit's FIFO queue for Laravel before 12 (worker_image/recipes/laravel/KitSqsFifoQueue.php),
// as a team's composer.json "classmap" entry loads its copy: from bin/queue-worker/, where the
// kit's image stage puts the recipes, else from the kit's source beside these tests.
spl_autoload_register(static function (string $class): void {
    if ($class === 'QueueWorkerKit\\Laravel\\KitSqsFifoQueue') {
        foreach ([dirname(__DIR__).'/bin/queue-worker', dirname(__DIR__, 4).'/worker_image/recipes/laravel'] as $dir) {
            if (is_file("$dir/KitSqsFifoQueue.php")) {
                require "$dir/KitSqsFifoQueue.php";

                return;
            }
        }
    }
});
