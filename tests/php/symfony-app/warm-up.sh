# The application's build-time warm-up, run as root by tests/integration/php_app/Dockerfile as a
# team's Dockerfile runs it: the prod container cache, here under /tmp (APP_CACHE_DIR, read by
# MicroKernelTrait), as teams with a read-only root filesystem do. Root owns what it writes;
# the kit's install.sh, run after it, opens it to the task's user.
set -eu
APP_ENV=prod APP_DEBUG=0 APP_CACHE_DIR=/tmp/symfony-cache php bin/console cache:warmup
