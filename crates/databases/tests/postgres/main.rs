//! The PostgreSQL endpoint against a real PostgreSQL 15 (a throwaway
//! cluster) and real clients: tokio-postgres, `psql`, psycopg 3, asyncpg
//! and node-postgres (from `tests/pg-peers`), over cleartext on loopback
//! and over TLS, and raw protocol messages where a client library would
//! not send what an attacker does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod asyncpg;
mod clients;
mod failures;
mod node_pg;
mod peers;
mod psql_scripts;
mod psycopg;
mod raw;
mod scenarios;
mod smuggling;
mod support;
mod tls;
