#!/usr/bin/env bash
# Test peers of the web console's end-to-end tests (crates/console/tests):
# - Debian chromium (+ chromium-driver), driven headless;
# - npm oidc-provider (a real OpenID provider) and playwright-core (the
#   browser driver, using /usr/bin/chromium; it downloads no browser),
#   into tests/console-peers/node_modules exactly as package-lock.json pins them.
# Idempotent: npm runs only when the lock file changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || apt_install chromium chromium-driver
command -v npm >/dev/null 2>&1 || apt_install nodejs npm

peers=tests/console-peers
stamp_file="$peers/node_modules/.countersign-installed"
stamp=$(sha256sum "$peers/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$stamp" ]; then
    echo "==> console: npm ci (oidc-provider, playwright-core) in $peers"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error
    echo "$stamp" > "$stamp_file"
fi

# Fail here, not in the middle of the tests, if something is still missing.
(cd "$peers" && node -e 'import("oidc-provider").then(() => import("playwright-core"))')
test -x /usr/bin/chromium
