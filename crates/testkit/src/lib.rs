//! The crates' shared test kit (dev-only, never published): a gateway on
//! a temporary store with a cast of users and agents, driven in-process or
//! served on loopback, and the fixtures and small helpers their tests
//! would otherwise each write again.
//!
//! - [`cast`]: users, agents and groups, enrolled with their tokens;
//! - [`gateway`]: a gateway on a temporary data directory (and SQLite
//!   store, or a given one), called through its router;
//! - [`serve`]: serving it on loopback, and an HTTP client for it;
//! - [`audit`]: the audit log read back;
//! - [`fixtures`]: the standard policy and cast, the starter policy,
//!   actions and pending requests;
//! - [`process`]: the `countersign` binary as a child process;
//! - [`tls`]: a CA and a `localhost` certificate it issued (or as PEM text, for files);
//! - [`wait`]: polling until something holds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test kit: a step that fails fails the test"
)]

pub mod audit;
pub mod cast;
pub mod fixtures;
pub mod gateway;
pub mod process;
pub mod serve;
pub mod tls;
pub mod wait;

pub use cast::{Cast, Tokens};
pub use countersign_core::clock::ManualClock;
pub use fixtures::{shell, sql, POLICY};
pub use gateway::{gateway, gateway_configured, gateway_with, Builder, Gateway, Prepared};
pub use serve::{client, install_crypto_provider, Loopback, Served};
