#!/usr/bin/env bash
# SIEM sink test peers (crates/siem/tests): Debian rsyslog with rsyslog-gnutls,
# run unprivileged by the tests with their own config (imtcp on a loopback
# port, TLS through the gtls driver, omfile into a temp dir). The PyPI peers
# (opentelemetry-proto, ocsf-json-schema, jsonschema) are pinned in
# tests/peers/requirements.txt and installed into .venv-peers by mcp.sh.
# Idempotent.
set -euo pipefail

if [ ! -x /usr/sbin/rsyslogd ] || [ ! -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] && ! ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1; then
    apt_install rsyslog rsyslog-gnutls
fi
/usr/sbin/rsyslogd -v >/dev/null
ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null
