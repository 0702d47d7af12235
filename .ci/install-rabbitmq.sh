#!/usr/bin/env bash
# Installs what the runner plugin's tests (tests/it/runner.rs) need: a real RabbitMQ broker
# (Debian package rabbitmq-server, 3.10) with its management plugin enabled offline.
# The tests start their own node (own RABBITMQ_NODENAME, RABBITMQ_MNESIA_BASE and ports on
# loopback) and stop it by pid; the package's system service is not used.
# Called by .ci/run; safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

if [ ! -x /usr/sbin/rabbitmq-server ]; then
    $SUDO apt-get update -qq
    # policy-rc.d keeps the package from starting its own broker (and epmd) where the init
    # system would; the tests start theirs.
    $SUDO apt-get install -y --no-install-recommends rabbitmq-server
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
    fi
fi
# Enabled in /etc/rabbitmq/enabled_plugins, read by every node started on this machine.
$SUDO rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
dpkg-query -W -f='rabbitmq-server ${Version}\n' rabbitmq-server
