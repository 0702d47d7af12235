#!/usr/bin/env bash
# Installs what the minio tests (tests/it/minio.rs) need: a real S3-compatible server, moto's
# server mode (PyPI `moto[server]`, command `moto_server`). No MinIO server is installable here
# (the `minio` packages on PyPI and npm are clients only), so the S3 API is tested against moto.
# Called by .ci/run; safe to run again.
set -euo pipefail

VERSION=5.2.5

if command -v moto_server >/dev/null 2>&1 \
    && python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$VERSION')" 2>/dev/null \
    && python3 -c "import flask, flask_cors" 2>/dev/null; then
    echo "moto $VERSION"
    exit 0
fi

python3 -m pip install --quiet "moto[server]==$VERSION"
command -v moto_server >/dev/null
echo "moto $(python3 -c 'import importlib.metadata as m; print(m.version("moto"))')"
