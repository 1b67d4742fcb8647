#!/usr/bin/env bash
# Installs the official Kubernetes Python client into a cached virtualenv,
# for the README's "create JobRuns from code" example and its e2e test.
# Prints the virtualenv's python as the last line of stdout.
set -euo pipefail

VERSION=37.0.2
CACHE_DIR="${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}"
VENV="$CACHE_DIR/python-kubernetes-$VERSION"

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import kubernetes" 2>/dev/null; then
  echo "[install-python-client] installing kubernetes==$VERSION into $VENV" >&2
  if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
    [[ $(id -u) -eq 0 ]] || { echo "[install-python-client] ERROR: python3 lacks venv; install python3-venv" >&2; exit 1; }
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } >&2
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes==$VERSION" >&2 \
    || { echo "[install-python-client] ERROR: pip install kubernetes==$VERSION failed" >&2; exit 1; }
fi
echo "$VENV/bin/python"
