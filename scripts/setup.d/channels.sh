#!/usr/bin/env bash
# Vendor SDKs for the Slack / Teams / webhook tests in crates/channels:
# PyPI slack-sdk (signature verification, Block Kit models) and slack-bolt
# (a Bolt app that must accept and parse every interactivity request the
# tests send) in a venv, and npm adaptivecards, botbuilder (TeamsActivityHandler
# reads every invoke; ConnectorClient drives the proactive-DM endpoints) and
# botframework-connector (token validation) from
# tests/channels-peers/package-lock.json. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../../tests/channels-peers"

command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
command -v node >/dev/null 2>&1 || apt_install nodejs npm

# The stamp holds the requirements that were installed, so a changed pin reinstalls.
if ! cmp -s requirements.txt .venv/installed-requirements.txt; then
    echo "==> channels: slack-sdk, slack-bolt into tests/channels-peers/.venv"
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
    cp requirements.txt .venv/installed-requirements.txt
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "==> channels: npm ci (adaptivecards, botbuilder, botframework-connector)"
    npm ci --no-audit --no-fund --loglevel=error
fi

# Fail here, not in the middle of the tests, if something is still missing.
.venv/bin/python -c 'import slack_sdk.models.blocks, slack_sdk.signature, slack_bolt'
node -e 'require("adaptivecards/dist/adaptivecards.js"); require("botframework-connector"); require("botbuilder")'
