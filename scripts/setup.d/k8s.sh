#!/usr/bin/env bash
# Kubernetes proxy test peers (crates/k8s/tests): Debian kubernetes-client
# (kubectl), and PyPI kubernetes (the Python client) into
# tests/peers/k8s/.venv, as tests/peers/k8s/requirements.txt pins it. The
# stand-in API server (tests/peers/k8s/apiserver.py) needs only python3.
# Idempotent: skipped when the requirements have not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/../../tests/peers/k8s"

command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client

stamp() { sha256sum "$1" | cut -d' ' -f1; }
py_stamp=.venv/.countersign-installed
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$(stamp requirements.txt)" ] || [ ! -x .venv/bin/python ]; then
    echo "==> k8s: the Python kubernetes client into tests/peers/k8s/.venv"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
    stamp requirements.txt > "$py_stamp"
fi
.venv/bin/python -c 'import kubernetes'
kubectl version --client >/dev/null
