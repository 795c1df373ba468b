<?php

// PSR-4 for the fakes: the class Foo\Bar\Baz lives in fakes/Foo/Bar/Baz.php.
spl_autoload_register(static function (string $class): void {
    $file = __DIR__.'/'.str_replace('\\', '/', $class).'.php';
    if (is_file($file)) {
        require $file;
    }
});
