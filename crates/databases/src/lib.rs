//! Databases through the gateway. Agents connect to countersign as if it
//! were the database, log in with their countersign credential, and no
//! statement reaches the database without a decision; the gateway alone
//! holds the database's credential.
//!
//! - [`gate`]: a statement through the approval loop, for any database;
//! - [`postgres`]: the PostgreSQL wire protocol endpoint.
//!
//! A MySQL endpoint would sit beside [`postgres`], with its own wire
//! protocol and config section, deciding through [`gate`] as well.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod gate;
pub mod postgres;
