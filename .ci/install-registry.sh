#!/usr/bin/env bash
# Installs what the registry tests (tests/it/cloud_registry.rs) need: a real OCI distribution
# registry (Debian package docker-registry, binary /usr/bin/docker-registry). The tests start
# their own instance on a free loopback port; the package's service is not used.
# Called by .ci/run (which sets SUDO); safe to run again.
set -euo pipefail

if [ -x /usr/bin/docker-registry ]; then
    /usr/bin/docker-registry --version
    exit 0
fi

SUDO="${SUDO-}"
if [ -z "$SUDO" ] && [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends docker-registry
# On hosts with systemd the package starts a service on :5000; the tests do not use it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
/usr/bin/docker-registry --version
