#!/usr/bin/env bash
# Installs what the PostgreSQL state tests (issue 19) need: a PostgreSQL server (Debian package
# postgresql, 15). The tests start their own server (tests/postgres-server: initdb in a temp
# dir, loopback, a free port) and stop it by pid; the package's own cluster is not used.
# Called by .ci/run; safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y --no-install-recommends postgresql
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi
fi
# The tests run the server as this user when they run as root (initdb refuses root).
id postgres >/dev/null
dpkg-query -W -f='postgresql ${Version}\n' postgresql 2>/dev/null || ls -d /usr/lib/postgresql/*/bin
