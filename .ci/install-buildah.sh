#!/usr/bin/env bash
# Installs what the image test (tests/it/image.rs) needs: buildah (builds the runtime image
# FROM scratch, no base image to pull). Debian packages.
# Called by .ci/run (which sets SUDO); safe to run again.
set -euo pipefail

if command -v buildah >/dev/null 2>&1; then
    buildah --version
    exit 0
fi
SUDO="${SUDO-}"
if [ -z "$SUDO" ] && [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends buildah
buildah --version
