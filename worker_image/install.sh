#!/bin/sh
# Installs the queue-worker kit's runtime (the SQS worker loop, supervisord and its config) into
# the image being built: a team's own application image. Run as root in a build stage, from the
# kit's worker_image/ directory (the build context `queue-worker-kit`; docs/frameworks.md):
#
#   FROM app AS worker
#   COPY --from=queue-worker-kit . /tmp/queue-worker-kit/
#   RUN sh /tmp/queue-worker-kit/install.sh
#   VOLUME ["/tmp"]
#   USER www-data
#   ENTRYPOINT ["/opt/queue-worker-kit/bin/queue-worker"]
#
# What it does (idempotent: a second run rebuilds the same result):
#   - python3 (>= 3.11) with venv: used when present; else installed with apt-get on Debian or
#     Ubuntu (the official php:*-cli images are Debian). Other distributions: install python3
#     (>= 3.11) with its venv module before this step; Alpine is not supported yet.
#   - /opt/queue-worker-kit/venv: a venv with the pinned requirements.txt (pip then removed)
#   - /opt/queue-worker-kit/app: the runtime (worker/) and supervisord.conf
#   - /opt/queue-worker-kit/bin/queue-worker: the entrypoint (supervisord and its workers)
#   - /tmp: what earlier build steps left there (a warm-up run as root) is made writable by every
#     user, because `VOLUME ["/tmp"]` copies it into the task's /tmp, where the task's user (not
#     root) must write it; /tmp itself is 1777. Each such path is named in the build log.
#   - apt lists removed; nothing else of the image is changed.
set -eu

KIT_SOURCE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/queue-worker-kit

say() { printf 'queue-worker-kit install: %s\n' "$*" >&2; }
fail() {
    say "$*"
    exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root (put USER root before this RUN, your USER after it)"
if [ ! -f "$KIT_SOURCE/requirements.txt" ] || [ ! -d "$KIT_SOURCE/worker" ]; then
    fail "$KIT_SOURCE is not the kit's worker_image/ directory (mount or copy it there)"
fi

python_fits() {
    command -v python3 >/dev/null 2>&1 \
        && python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1
}

if ! python_fits; then
    if command -v apt-get >/dev/null 2>&1; then
        say "installing python3 and python3-venv with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3 python3-venv ca-certificates >/dev/null
        rm -rf /var/lib/apt/lists/*
    fi
    python_fits || fail "needs python3 >= 3.11 with its venv module, and found none that fits;
  no apt-get here (Debian/Ubuntu images get it installed automatically). Install python3
  (>= 3.11) and its venv module in an earlier step of your Dockerfile (Alpine is not supported
  yet: its musl Python is untested with the kit)."
fi
say "using $(python3 --version 2>&1) at $(command -v python3)"

rm -rf "$PREFIX"
mkdir -p "$PREFIX/bin" "$PREFIX/app"
python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
    --requirement "$KIT_SOURCE/requirements.txt"
# The venv only runs the kit: no installer is left in the image.
"$PREFIX/venv/bin/python" -m pip uninstall --yes --quiet pip setuptools 2>/dev/null \
    || "$PREFIX/venv/bin/python" -m pip uninstall --yes --quiet pip

cp -R "$KIT_SOURCE/worker" "$PREFIX/app/worker"
cp "$KIT_SOURCE/supervisord.conf" "$PREFIX/app/supervisord.conf"
find "$PREFIX/app" -name '__pycache__' -prune -exec rm -rf {} +
# The venv's python finds the runtime wherever the image's WORKDIR is.
site=$("$PREFIX/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo "$PREFIX/app" >"$site/queue_worker_kit.pth"
"$PREFIX/venv/bin/python" -m compileall -q "$PREFIX/app" >/dev/null

cat >"$PREFIX/bin/queue-worker" <<'EOF'
#!/bin/sh
# The queue-worker kit's entrypoint: supervisord running WORKER_PROCESSES workers (PID 1 forwards
# signals and exits 1 when a worker cannot stay up). Commands and consumers run in the image's
# WORKDIR (WORKER_WORKDIR), not in the kit's directory.
export WORKER_WORKDIR="${WORKER_WORKDIR:-$PWD}"
export PYTHONUNBUFFERED=1
exec /opt/queue-worker-kit/venv/bin/python -m worker.supervise "$@"
EOF
# Earlier steps' leftovers in /tmp (a cache warmed as root) reach the task through the /tmp
# volume; the task's user is not root and must be able to write them.
chmod 1777 /tmp
find /tmp -mindepth 1 -maxdepth 1 ! -path "$KIT_SOURCE" | while read -r left; do
    say "$left: left in /tmp by an earlier step; made writable for the task's user"
    chmod -R a+rwX "$left"
done
chmod -R a+rX,go-w "$PREFIX"
chmod 755 "$PREFIX/bin/queue-worker"
"$PREFIX/venv/bin/python" -c 'import boto3, supervisor, worker.app' \
    || fail "the installed runtime does not import"
say "installed in $PREFIX; ENTRYPOINT [\"$PREFIX/bin/queue-worker\"]"
