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
    # Without systemd, the package would start its own cluster on port 5432 through
    # invoke-rc.d; policy-rc.d answering 101 forbids that during the install.
    policy_added=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    $SUDO apt-get install -y --no-install-recommends postgresql
    if [ -n "$policy_added" ]; then
        $SUDO rm -f /usr/sbin/policy-rc.d
    fi
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi
fi
# The tests run the server as this user when they run as root (initdb refuses root).
id postgres >/dev/null
dpkg-query -W -f='postgresql ${Version}\n' postgresql 2>/dev/null || ls -d /usr/lib/postgresql/*/bin
