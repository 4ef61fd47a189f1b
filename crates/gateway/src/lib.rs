//! The countersign gateway's application logic, free of HTTP: every entry
//! point (the REST API in `countersign-server`, the MCP proxy, chat
//! channels, the web console) goes through [`AppState`], so that the same
//! rules and the same audit apply everywhere.
//!
//! The path an action takes, one module a step:
//!
//! - [`identify`]: who is calling (the [`identify::Authenticator`] trait,
//!   local tokens);
//! - [`decide`]: describe the action and decide it under the policy set
//!   in force ([`policies`] loads it, [`replication`] keeps replicas on
//!   one set);
//! - [`hold`]: a pending request waits in the store, and its requester may
//!   wait on it; [`changes`] wakes whoever waits, [`deadlines`] expires
//!   it; [`visibility`] says who may see it;
//! - [`review`]: people approve, deny and comment;
//! - [`gate`]: the loop as an entry point that runs actions itself walks it
//!   (submit, wait, take the approval, record the outcome);
//! - [`reuse`]: an action asked again is answered with the caller's own open
//!   request for it;
//! - [`release`]: the requester takes its approval (once), or cancels, and
//!   records how the action went;
//! - record: every move is audited in the same transaction; [`refusals`]
//!   accounts for refused calls, [`metrics`] counts; [`checkpoints`]
//!   signs the log's Merkle tree and proves events in it.
//!
//! Integrations get narrow services instead of the store: the
//! [`directory`] of people and agents, the [`kv`] key-value area and its
//! leases, the [`changes`] feed, and read access to requests and the audit
//! log. Operations return [`error::GatewayError`], which says what went
//! wrong without HTTP; the data services return the store's own error.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod changes;
pub mod checkpoints;
pub mod config;
pub mod deadlines;
pub mod decide;
pub mod directory;
pub mod error;
pub mod evidence;
pub mod gate;
pub mod hold;
pub mod identify;
pub mod kv;
pub mod metrics;
pub mod policies;
pub mod record;
pub mod refusals;
pub mod release;
pub mod replication;
pub mod reuse;
pub mod review;
mod state;
pub mod visibility;

pub use error::{Blame, GatewayError, RateLimited};
pub use state::{AppState, LoadedPolicy, StartError};
