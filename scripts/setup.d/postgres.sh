#!/usr/bin/env bash
# PostgreSQL 15's server programs (initdb, pg_ctl) for the PostgreSQL store's
# tests, which start throwaway clusters of their own. Nothing is started or
# enabled here. Debian bookworm ships 15 as `postgresql`; elsewhere the
# tests use the newest /usr/lib/postgresql/*/bin (or $TEST_PG_BIN).
set -euo pipefail

have_pg() {
    [ -n "${TEST_PG_BIN:-}" ] && [ -x "$TEST_PG_BIN/initdb" ] && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if ! have_pg; then
    if apt-cache show postgresql-15 >/dev/null 2>&1; then
        apt_install postgresql-15
    else
        apt_install postgresql
    fi
fi
# The tests run PostgreSQL as `nobody` when they run as root (initdb
# refuses root) through runuser, which util-linux provides.
command -v runuser >/dev/null 2>&1 || apt_install util-linux
have_pg || { echo "error: PostgreSQL's initdb is still missing" >&2; exit 1; }
