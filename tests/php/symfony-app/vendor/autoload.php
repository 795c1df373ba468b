<?php

// The test project's "Composer" autoloader. Composer's registry cannot be reached here, so the
// real Symfony comes from Debian's archive (php-symfony-*, /usr/share/php): each package ships
// an autoload.php that requires those of its dependencies. App\ is src/ (PSR-4).

$debian = '/usr/share/php';
foreach ([
    'Symfony/Bundle/FrameworkBundle',               // the kernel, DI, config, console, cache...
    'Symfony/Component/Messenger',
    'Symfony/Component/Messenger/Bridge/AmazonSqs',  // the Amazon SQS transport (async-aws/sqs)
    'Symfony/Component/Serializer',                  // Messenger's JSON serializer
    'Symfony/Component/PropertyAccess',
    'Symfony/Component/Console',                     // bin/console
    'Symfony/Component/Dotenv',                      // .env, loaded by the runner as by bin/console
] as $package) {
    require_once "$debian/$package/autoload.php";
}
// Composer's runtime API (Composer\InstalledVersions), which a Composer-built vendor/ always
// has: FrameworkBundle and the container builder ask it which packages are installed.
require_once "$debian/Composer/InstalledVersions.php";

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'App\\')) {
        $file = dirname(__DIR__).'/src/'.str_replace('\\', '/', substr($class, 4)).'.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
