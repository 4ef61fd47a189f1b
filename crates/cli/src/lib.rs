//! The `countersign` binary's library part: the whole configuration,
//! composed from the sections each crate owns ([`config`]), for the
//! binary and for the test kit that starts gateways the way it does.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
