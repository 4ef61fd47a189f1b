#!/usr/bin/env bash
# Test peers of the Python SDK (sdk/python, run by crates/cli/tests/sdk_python.rs):
# PyPI httpx, pytest and the agent frameworks its adapters are tested with —
# openai-agents, langchain + langgraph, pydantic-ai-slim — into
# .venv-sdk-python, as sdk/python/requirements-test.txt pins them; `build`,
# `hatchling` (the pyproject's backend) and `mypy` for the wheel and type
# checks; and, in .venv-sdk-python/wheelhouse, the wheels of the package's
# own dependencies, so that the test installs the built wheel into a fresh
# venv offline.
# Idempotent: skipped when the requirements have not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv

stamp() { sha256sum "$1" | cut -d' ' -f1; }

venv=.venv-sdk-python
requirements=sdk/python/requirements-test.txt
py_stamp="$venv/.countersign-installed"
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$(stamp "$requirements")" ] \
    || [ ! -x "$venv/bin/python" ]; then
    echo "==> pip install (Python SDK test peers) into $venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    # httpx as pinned, with everything it needs, as wheels.
    "$venv/bin/pip" download --quiet --disable-pip-version-check --only-binary=:all: \
        -d "$venv/wheelhouse" "$(grep '^httpx==' "$requirements")"
    stamp "$requirements" > "$py_stamp"
fi
# Fail here, not in the middle of the tests, if something is still missing.
"$venv/bin/python" -c 'import pytest, httpx, agents, langchain, langgraph, pydantic_ai, build, hatchling, mypy'
ls "$venv"/wheelhouse/httpx-*.whl >/dev/null
