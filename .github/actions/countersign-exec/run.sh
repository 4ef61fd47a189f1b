#!/usr/bin/env bash
# The script step of the countersign-exec action: fetches the job's OIDC
# token (GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN, present when
# the job has `permissions: id-token: write`) for the audience the gateway's
# [[workload_identity]] expects, and runs the command through
# `countersign exec` with that token as the agent's identity. The token goes
# to countersign in its environment (never on a command line) and is masked
# in the log. Exits with countersign's exit code (3 denied, 4 expired/
# revoked/cancelled; otherwise the command's own).
#
# Inputs (environment): CS_SERVER, CS_RESOURCE, CS_COMMAND (run by bash -eo pipefail -c),
# CS_KIND (default shell.exec), CS_JUSTIFICATION, CS_AUDIENCE (default countersign),
# CS_BIN (default countersign on PATH).
set -euo pipefail

: "${ACTIONS_ID_TOKEN_REQUEST_URL:?no OIDC token source: give the job 'permissions: id-token: write'}"
: "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:?no OIDC token source: give the job 'permissions: id-token: write'}"
: "${CS_SERVER:?the input 'server' is required}"
: "${CS_RESOURCE:?the input 'resource' is required}"
: "${CS_COMMAND:?the input 'command' is required}"
audience=${CS_AUDIENCE:-countersign}
case "$audience" in *[!A-Za-z0-9._:/-]*) echo "countersign-exec: audience '$audience' has characters that need escaping" >&2; exit 2 ;; esac

sep='?'
case "$ACTIONS_ID_TOKEN_REQUEST_URL" in *\?*) sep='&' ;; esac
response=$(curl -sSf --max-time 30 -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
    "${ACTIONS_ID_TOKEN_REQUEST_URL}${sep}audience=${audience}") || {
    echo "countersign-exec: could not get the job's OIDC token; nothing was run" >&2
    exit 1
}
token=$(printf '%s' "$response" | python3 -c 'import json, sys; print(json.load(sys.stdin)["value"])') || {
    echo "countersign-exec: the OIDC token answer had no 'value'; nothing was run" >&2
    exit 1
}
[ -n "$token" ] || { echo "countersign-exec: empty OIDC token; nothing was run" >&2; exit 1; }
echo "::add-mask::$token"

args=(exec --server "$CS_SERVER" --resource "$CS_RESOURCE" --kind "${CS_KIND:-shell.exec}")
if [ -n "${CS_JUSTIFICATION:-}" ]; then args+=(--justification "$CS_JUSTIFICATION"); fi
COUNTERSIGN_TOKEN=$token exec "${CS_BIN:-countersign}" "${args[@]}" -- bash -eo pipefail -c "$CS_COMMAND"
