//! countersign's Cedar policy engine: loading, sliced evaluation, and the
//! approval requirements that policy annotations impose.
//!
//! - [`PolicyEngine`] loads a directory of `*.cedar` files (and an optional
//!   `schema.cedarschema`), checks them, and decides actions;
//! - [`Decision`] / [`Verdict`] is what a decision says: allow, require
//!   approval (with [`countersign_core::Requirement`]s), or deny;
//! - [`request`] documents how an action becomes a Cedar request;
//! - [`annotations`] documents the approval annotations;
//! - [`cases`] runs policy test cases for policy authors' CI;
//! - [`STARTER_POLICY`] is the commented policy a fresh install starts from.
//!
//! The crate does no network I/O; [`PolicyEngine::load_dir`] is its only
//! file access.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod annotations;
pub mod cases;
mod decision;
mod engine;
mod error;
pub mod request;
mod slice;
mod source;

pub use decision::{Decision, Verdict};
pub use engine::{Defaults, PolicyEngine, PolicySource, SCHEMA_FILE};
pub use error::{Location, PolicyLoadError};

/// The commented starter policy that the gateway writes into a fresh data
/// directory (as `starter.cedar`).
pub const STARTER_POLICY: &str = include_str!("../starter/starter.cedar");

/// The test cases that exercise [`STARTER_POLICY`], in the JSON form
/// [`cases::parse_cases`] reads.
pub const STARTER_CASES: &str = include_str!("../starter/cases.json");
