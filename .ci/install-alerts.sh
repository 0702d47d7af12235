#!/usr/bin/env bash
# Installs what the alerts tests (tests/it/alerts.rs) need: a real Prometheus Alertmanager
# (Debian package prometheus-alertmanager, binary /usr/bin/prometheus-alertmanager).
# Called by .ci/run; safe to run again.
set -euo pipefail

if [ -x /usr/bin/prometheus-alertmanager ]; then
    /usr/bin/prometheus-alertmanager --version 2>&1 | head -1
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The package's service is not needed: the tests start their own Alertmanager on a free port.
$SUDO apt-get install -y --no-install-recommends prometheus-alertmanager
# On hosts with systemd the package starts a service on :9093/:9094; the tests do not use it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true
fi
/usr/bin/prometheus-alertmanager --version 2>&1 | head -1
