# The application's build-time warm-up, run as root by tests/integration/php_app/Dockerfile as a
# team's Dockerfile runs it: Laravel's config cache, which bakes the build's environment (the
# kit's runner ignores it so that the task's variables and secrets reach config()).
set -eu
php artisan config:cache
