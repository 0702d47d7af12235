#!/usr/bin/env bash
# Installs what the daskhub tests (tests/it/daskhub.rs) need: a real JupyterHub (PyPI
# `jupyterhub`) with its proxy (npm `configurable-http-proxy`), and a real Dask Gateway (PyPI
# `dask-gateway-server` with its local backend, and the `dask-gateway` client the tests use to
# create clusters). No `helm` binary installs from the reachable registries, so the tests use
# a stand-in `helm` script (see tests/it/support/daskhub.rs).
# Called by .ci/run; safe to run again.
set -euo pipefail

JUPYTERHUB=6.1.1
CHP=5.3.0
GATEWAY=2026.3.0

have_py() {
    python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" 2>/dev/null
}

if ! have_py jupyterhub "$JUPYTERHUB" || ! have_py dask-gateway-server "$GATEWAY" \
    || ! have_py dask-gateway "$GATEWAY"; then
    python3 -m pip install --quiet "jupyterhub==$JUPYTERHUB" \
        "dask-gateway-server[local]==$GATEWAY" "dask-gateway==$GATEWAY"
fi

if ! command -v configurable-http-proxy >/dev/null 2>&1 \
    || [ "$(configurable-http-proxy --version 2>/dev/null)" != "$CHP" ]; then
    npm install --global --silent "configurable-http-proxy@$CHP"
fi

command -v jupyterhub >/dev/null
command -v dask-gateway-server >/dev/null
echo "jupyterhub $(python3 -c 'import importlib.metadata as m; print(m.version("jupyterhub"))')," \
    "configurable-http-proxy $(configurable-http-proxy --version)," \
    "dask-gateway-server $(python3 -c 'import importlib.metadata as m; print(m.version("dask-gateway-server"))')"
