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
//! - [`simulate`] replays the actions an audit log recorded against a
//!   candidate set and reports what would change;
//! - [`STARTER_POLICY`] is the commented policy a fresh install starts from.
//!
//! The crate does no network I/O; [`PolicyEngine::load_dir`] is its only
//! file access.
//!
//! ```
//! use std::time::Duration;
//! use countersign_policy::{Defaults, PolicyEngine, PolicySource, Verdict, STARTER_POLICY};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = PolicyEngine::from_sources(
//!     vec![PolicySource { file: "starter.cedar".into(), text: STARTER_POLICY.into() }],
//!     None,
//!     Defaults { timeout: Duration::from_secs(1800), valid_for: Duration::from_secs(600) },
//! )?;
//! let principal = serde_json::from_value(serde_json::json!(
//!     {"kind": "agent", "name": "deploy-bot", "owner": "alice", "groups": ["deployers"]}))?;
//! let action = serde_json::from_value(serde_json::json!(
//!     {"kind": "shell.exec", "resource": "prod-web", "payload": {"command": "systemctl restart web"}}))?;
//! let decision = engine.decide(&principal, &action);
//! assert!(matches!(decision.verdict, Verdict::RequireApproval(_)));
//! assert_eq!(decision.reason, "needs approval: `prod-needs-sre` (1 of sre)");
//! assert_eq!(decision.policy_hash, engine.hash());
//! # Ok(())
//! # }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod annotations;
pub mod cases;
mod decision;
mod engine;
mod error;
mod load;
pub mod request;
pub mod simulate;
mod slice;
mod source;

pub use decision::{Decision, Verdict};
pub use engine::{Defaults, HttpApis, PolicyEngine, PolicySource, SCHEMA_FILE};
pub use error::{Location, PolicyLoadError};

/// The commented starter policy that the gateway writes into a fresh data
/// directory (as `starter.cedar`).
pub const STARTER_POLICY: &str = include_str!("../starter/starter.cedar");

/// The test cases that exercise [`STARTER_POLICY`], in the JSON form
/// [`cases::parse_cases`] reads.
pub const STARTER_CASES: &str = include_str!("../starter/cases.json");
