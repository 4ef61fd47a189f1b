#!/usr/bin/env bash
# Real PostgreSQL clients for the PostgreSQL endpoint's tests
# (crates/databases/tests/postgres), in tests/pg-peers:
# - PyPI psycopg 3 (with its binary libpq) and asyncpg, into
#   tests/pg-peers/.venv, as tests/pg-peers/requirements.txt pins them;
# - npm pg (node-postgres) with the machine's node, as
#   tests/pg-peers/package-lock.json pins it;
# - Debian pgbouncer, for the benchmarks' comparison in session mode
#   (installed only; the benchmarks start their own on a port of theirs).
# psql comes with the PostgreSQL server programs (postgres.sh).
# Idempotent: each part is skipped when its lock file has not changed
# since it was last installed.
set -euo pipefail
cd "$(dirname "$0")/../../tests/pg-peers"

command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer

stamp() { sha256sum "$1" | cut -d' ' -f1; }

py_stamp=.venv/.countersign-installed
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$(stamp requirements.txt)" ] || [ ! -x .venv/bin/python ]; then
    echo "==> pg-clients: psycopg, asyncpg into tests/pg-peers/.venv"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
    stamp requirements.txt > "$py_stamp"
fi

npm_stamp=node_modules/.countersign-installed
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$(stamp package-lock.json)" ]; then
    echo "==> pg-clients: npm ci (pg) in tests/pg-peers"
    npm ci --no-audit --no-fund --loglevel=error
    stamp package-lock.json > "$npm_stamp"
fi

# Fail here, not in the middle of the tests, if something is still missing.
.venv/bin/python -c 'import psycopg, asyncpg; psycopg.pq.version()'
node -e 'require("pg")'
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]
