#!/usr/bin/env bash
# HTTP proxy test peers (crates/http/tests): from PyPI into .venv-http, as
# tests/peers/http/requirements.txt pins them: FastAPI and uvicorn (the
# upstream API, with its OpenAPI document), sse-starlette (an SSE stream),
# httpx and requests (clients), websockets (the WebSocket client, and what
# uvicorn serves the upstream's WebSocket endpoint with); curl (Debian) as a
# client too; wrk (Debian) for scripts/bench-http. Node's built-in fetch is
# the Node client (the MCP peers install Node 22).
# Idempotent: skipped when the requirements have not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v curl >/dev/null 2>&1 || apt_install curl
command -v wrk >/dev/null 2>&1 || apt_install wrk

requirements=tests/peers/http/requirements.txt
venv=.venv-http
stamp() { sha256sum "$1" | cut -d' ' -f1; }
py_stamp="$venv/.countersign-installed"
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$(stamp "$requirements")" ] \
    || [ ! -x "$venv/bin/python" ]; then
    echo "==> pip install (HTTP peers) into $venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    stamp "$requirements" > "$py_stamp"
fi
"$venv/bin/python" -c 'import fastapi, uvicorn, sse_starlette, httpx, requests, websockets'
