//! The PostgreSQL endpoint against a real PostgreSQL 15 (a throwaway
//! cluster) and real clients: tokio-postgres, `psql`, and raw protocol
//! messages where a client library would not send what an attacker does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clients;
mod raw;
mod support;
