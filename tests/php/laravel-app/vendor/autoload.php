<?php

// The test application's "Composer" autoloader: the framework fakes, then App\ in app/.
require dirname(__DIR__, 2).'/fakes/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'App\\')) {
        $file = dirname(__DIR__).'/app/'.str_replace('\\', '/', substr($class, 4)).'.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
